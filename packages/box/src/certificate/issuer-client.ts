/**
 * The box's HTTP client for the issuer (wire.ts): signed JSON POSTs through the box's signed client
 * (../signed-client.ts: the signature, one keep-alive agent with one secure context, a hard timeout per
 * request, TLS verification), and every answer classified into what the box shows:
 *
 *   network failure                -> exception (the detail says which: refused, not resolved, timeout, TLS...)
 *   403 {refusal:{reason,message}} -> refusal (a known reason only)
 *   any other non-2xx              -> status (with Retry-After)
 *   2xx with a JSON body           -> ok
 *
 * An https:// issuer is always verified, against the bundled roots plus the optional extra CA. Never disabled.
 * The same roots verify the chains the issuer hands out (chain-trust.ts): required for an https:// issuer
 * or when an extra CA is given; only an http:// issuer without one (the tests' plaintext mode, already a
 * warning) has no anchors to verify against, and box.ts logs that at start.
 */
import { isRefusalReason } from "@boxcert/shared";
import type { RefusalReason } from "@boxcert/shared";
import type { BoxIdentity } from "./identity.ts";
import { chainTrust } from "./chain-trust.ts";
import type { ChainTrust } from "./chain-trust.ts";
import { createSignedClient, describeStatus, SIGNED_REQUEST_TIMEOUT_MS } from "../signed-client.ts";
import type { SignedAnswer } from "../signed-client.ts";

export const ISSUER_TIMEOUT_MS = SIGNED_REQUEST_TIMEOUT_MS;

export type IssuerAnswer =
  | { kind: "ok"; status: number; body: unknown }
  | { kind: "exception"; detail: string }
  | { kind: "refusal"; status: number; reason: RefusalReason; message: string }
  | { kind: "status"; status: number; detail: string; retryAfter: string | null };

export interface IssuerClient {
  /** The issuer's base URL. */
  readonly url: URL;
  /** True for an http:// issuer (accepted, with a warning in the log). */
  readonly plaintext: boolean;
  /** The roots a certificate chain from this issuer must lead to; null when none is verified (see above). */
  readonly chainTrust: ChainTrust | null;
  post(path: string, body: object): Promise<IssuerAnswer>;
  close(): void;
}

export interface IssuerClientOptions {
  url: string;
  /** Extra trusted CA certificates (PEM), added to the bundled roots. */
  ca?: string;
  identity: BoxIdentity;
  timeoutMs?: number;
}

function classify(answer: SignedAnswer): IssuerAnswer {
  if (answer.kind === "exception") return answer;
  const { status, json, retryAfter } = answer;
  if (answer.tooLarge) return { kind: "status", status, detail: "the issuer's answer is larger than 1 MiB", retryAfter: null };
  if (status >= 200 && status < 300) {
    if (json === undefined) return { kind: "status", status, detail: "the issuer's answer is not JSON", retryAfter };
    return { kind: "ok", status, body: json };
  }
  const record = (typeof json === "object" && json !== null ? json : {}) as Record<string, unknown>;
  const refusal = record.refusal as { reason?: unknown; message?: unknown } | undefined;
  if (status === 403 && refusal && isRefusalReason(refusal.reason)) {
    const message = typeof refusal.message === "string" ? refusal.message : refusal.reason;
    return { kind: "refusal", status, reason: refusal.reason, message };
  }
  return { kind: "status", status, detail: describeStatus("the issuer", answer), retryAfter };
}

export function createIssuerClient(options: IssuerClientOptions): IssuerClient {
  const client = createSignedClient({ ...options, urlName: "issuer URL" });
  const trust = client.plaintext && options.ca === undefined ? null : chainTrust(options.ca);
  return {
    url: client.url,
    plaintext: client.plaintext,
    chainTrust: trust,
    post: async (path, body) => classify(await client.post(path, body)),
    close: () => client.close(),
  };
}
