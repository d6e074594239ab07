/**
 * What a request of the issuer's API ends in: an answer, a refusal (a reason from the catalogue) or an
 * error code. Decisions return these; only the HTTP layer (app.ts) turns them into statuses.
 */
import { REFUSALS, type IssuerErrorCode, type RefusalReason } from "@boxcert/shared";

export type Refused = { kind: "refused"; reason: RefusalReason; message: string };
export type Failed = { kind: "error"; code: IssuerErrorCode; message: string; retryAfterSeconds?: number };
export type Outcome<T> = { kind: "ok"; body: T } | Refused | Failed;

export function refused(reason: RefusalReason, message: string = REFUSALS[reason].message): Refused {
  return { kind: "refused", reason, message };
}

export function failed(code: IssuerErrorCode, message: string, retryAfterSeconds?: number): Failed {
  return { kind: "error", code, message, ...(retryAfterSeconds !== undefined ? { retryAfterSeconds } : {}) };
}
