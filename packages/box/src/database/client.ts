/**
 * The box's client for its database (docs/erp.md "The box registers with the database"): one signed POST
 * to `<server>/api/iot/boxes` through the box's signed client (../signed-client.ts: the same signature,
 * timeout and TLS verification as towards the issuer), and its answer classified:
 *
 *   200 {"registered": true}                    -> registered
 *   403 {"error": {"code", "message"}}          -> refused (pairing_invalid, unknown_box, identity_mismatch...)
 *   no answer, any other status or a 200 that
 *   does not say registered                     -> failed (with Retry-After)
 */
import { BOX_REGISTRATION_PATH, type BoxRegistration } from "@boxcert/shared";
import type { BoxIdentity } from "../certificate/identity.ts";
import { createSignedClient, describeStatus } from "../signed-client.ts";
import type { SignedAnswer } from "../signed-client.ts";

export const REGISTRATION_PATH = BOX_REGISTRATION_PATH;

/** The registration's body (docs/erp.md); this box always sends its HTTP port. */
export type RegistrationBody = BoxRegistration & { httpPort: number };

export type RegistrationAnswer =
  | { kind: "registered" }
  | { kind: "refused"; code: string; message: string }
  | { kind: "failed"; detail: string; retryAfter: string | null };

export interface DatabaseClient {
  readonly url: URL;
  /** True for an http:// database (accepted, with a warning in the log). */
  readonly plaintext: boolean;
  register(body: RegistrationBody): Promise<RegistrationAnswer>;
  close(): void;
}

export interface DatabaseClientOptions {
  /** The server URL the box is connected to. */
  url: string;
  /** Extra trusted CA certificates (PEM) for the database's TLS (`--database-ca`), besides the bundled roots. */
  ca?: string;
  identity: BoxIdentity;
  timeoutMs?: number;
}

/** Whether the answer's body says the box is registered: a 200 from anything else (a login page) is not. */
function saysRegistered(json: unknown): boolean {
  return typeof json === "object" && json !== null && (json as Record<string, unknown>).registered === true;
}

function classify(answer: SignedAnswer): RegistrationAnswer {
  if (answer.kind === "exception") return { kind: "failed", detail: answer.detail, retryAfter: null };
  const { status, retryAfter } = answer;
  if (answer.tooLarge) return { kind: "failed", detail: "the database's answer is larger than 1 MiB", retryAfter: null };
  if (status >= 200 && status < 300) {
    if (saysRegistered(answer.json)) return { kind: "registered" };
    return { kind: "failed", detail: `the database answered HTTP ${status} without {"registered": true}`, retryAfter };
  }
  if (status === 403 && answer.error?.code) return { kind: "refused", code: answer.error.code, message: answer.error.message };
  return { kind: "failed", detail: describeStatus("the database", answer), retryAfter };
}

export function createDatabaseClient(options: DatabaseClientOptions): DatabaseClient {
  const client = createSignedClient({ ...options, urlName: "database URL" });
  return {
    url: client.url,
    plaintext: client.plaintext,
    register: async (body) => classify(await client.post(REGISTRATION_PATH, body)),
    close: () => client.close(),
  };
}
