/**
 * A box registers with the database (docs/erp.md "The box registers with the database"): the steps in
 * order, each refusal with its code (wire.ts REGISTRATION_ERRORS):
 *
 *   fields         beyond the JSON schema: an IP address, an https:// origin, a date   400 bad_request
 *   authenticate   timestamp within 10 minutes, a P-256 key, a signature of the body   400 / 401
 *   decide         in one store transaction: a known identifier must carry its key;    403
 *                  an unknown one must carry an open pairing secret, which it consumes
 *
 * A refusal writes nothing.
 */
import { isIP } from "node:net";
import { BOX_IDENTIFIER_PATTERN, REQUEST_MAX_SKEW_MS } from "@boxcert/shared";
import type { BoxRegistration, RegistrationErrorCode } from "./wire.ts";
import { p256PublicKey, verifyBody } from "./signing.ts";
import { isPairingSecret, pairingHash, pairingOpen } from "./pairing.ts";
import type { BoxRecord, Change, JsonStore, StoreData } from "./store.ts";

/** The JSON schema of the body (fastify validates it before the route runs; types, never coerced). */
export const registrationSchema = {
  type: "object",
  required: ["identifier", "identityKey", "name", "ip", "httpsUrl", "certificateExpiry", "version", "timestamp"],
  properties: {
    identifier: { type: "string", pattern: BOX_IDENTIFIER_PATTERN },
    identityKey: { type: "string", minLength: 1, maxLength: 1024 },
    name: { type: "string", minLength: 1, maxLength: 200 },
    ip: { type: "string", minLength: 1, maxLength: 64 },
    httpsUrl: { type: ["string", "null"], maxLength: 512 },
    certificateExpiry: { type: ["string", "null"], maxLength: 64 },
    version: { type: "string", minLength: 1, maxLength: 64 },
    httpPort: { type: "integer", minimum: 1, maximum: 65535 },
    timestamp: { type: "string", minLength: 1, maxLength: 64 },
    pairing: { type: "string", maxLength: 128 },
  },
} as const;

export type RegistrationOutcome =
  | { kind: "registered"; first: boolean; box: BoxRecord }
  | { kind: "refused"; code: RegistrationErrorCode; message: string };

function refused(code: RegistrationErrorCode, message: string): RegistrationOutcome & { kind: "refused" } {
  return { kind: "refused", code, message };
}

/** The box's HTTPS address as the pages use it: an https:// origin (links and fetches append paths). */
function httpsUrlProblem(value: string): string | null {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return "httpsUrl is not a URL";
  }
  if (url.protocol !== "https:") return "httpsUrl must start with https://";
  if (url.username || url.password || url.search || url.hash || url.pathname !== "/") return "httpsUrl must be an origin ending in / (no path, query, fragment or user)";
  return null;
}

/** What the schema cannot say about the fields, or null. */
export function fieldProblem(body: BoxRegistration): string | null {
  if (/[\u0000-\u001f\u007f]/.test(body.name)) return "name contains a control character";
  if (!/^[\x21-\x7e]+$/.test(body.version)) return "version must be printable characters without spaces";
  if (isIP(body.ip) === 0) return "ip is not an IP address";
  if (body.httpsUrl !== null) {
    const problem = httpsUrlProblem(body.httpsUrl);
    if (problem) return problem;
  }
  if (body.certificateExpiry !== null && Number.isNaN(Date.parse(body.certificateExpiry))) return "certificateExpiry is not an ISO 8601 date";
  return null;
}

export interface SignedRegistration {
  /** The exact body bytes the signature covers. */
  raw: Buffer;
  signature: string | undefined;
  body: BoxRegistration;
}

/** The request is fresh and signed by the key it carries; the key in its canonical encoding, or a refusal. */
function authenticate(input: SignedRegistration, now: number): { identityKey: string } | RegistrationOutcome {
  const at = Date.parse(input.body.timestamp);
  if (Number.isNaN(at)) return refused("bad_request", "timestamp is not an ISO 8601 date");
  if (Math.abs(now - at) > REQUEST_MAX_SKEW_MS) {
    return refused("stale_request", `the timestamp ${input.body.timestamp} is more than ${REQUEST_MAX_SKEW_MS / 60_000} minutes from the database's clock ${new Date(now).toISOString()}; check the box's clock`);
  }
  const key = p256PublicKey(input.body.identityKey);
  if (!key) return refused("bad_identity_key", "identityKey is not an ECDSA P-256 public key (SPKI DER, base64)");
  if (!verifyBody(input.raw, input.signature, key)) return refused("bad_signature", "the boxcert-signature header does not sign this body with identityKey");
  return { identityKey: key.export({ type: "spki", format: "der" }).toString("base64") };
}

function boxRecord(body: BoxRegistration, identityKey: string, pairedAt: string, now: number): BoxRecord {
  return {
    identifier: body.identifier,
    identityKey,
    name: body.name,
    ip: body.ip,
    httpsUrl: body.httpsUrl,
    certificateExpiry: body.certificateExpiry === null ? null : new Date(body.certificateExpiry).toISOString(),
    version: body.version,
    // Absent from an older box's registration: the record then has none, and the POS page no IP path.
    ...(body.httpPort !== undefined ? { httpPort: body.httpPort } : {}),
    pairedAt,
    lastSeen: new Date(now).toISOString(),
  };
}

/** The store's side, on a draft: a known box by its key, a new one by an open pairing secret. */
export function decide(draft: StoreData, body: BoxRegistration, identityKey: string, now: number): Change<RegistrationOutcome> {
  const index = draft.boxes.findIndex((box) => box.identifier === body.identifier);
  const known = draft.boxes[index];
  if (known) {
    // The pairing field, if any, is ignored: the key authenticates a known box (a retried first registration).
    if (known.identityKey !== identityKey) return { result: refused("identity_mismatch", "this box identifier is registered with another identity key"), write: false };
    const box = boxRecord(body, identityKey, known.pairedAt, now);
    draft.boxes[index] = box;
    return { result: { kind: "registered", first: false, box }, write: true };
  }
  if (body.pairing === undefined) return { result: refused("unknown_box", "no box with this identifier has paired with this database: pair it with a connection token"), write: false };
  const hash = isPairingSecret(body.pairing) ? pairingHash(body.pairing) : null;
  const pairing = draft.pairings.find((p) => p.hash === hash);
  if (!pairing || !pairingOpen(pairing, now)) {
    return { result: refused("pairing_invalid", "the pairing secret is unknown, already used or expired: make a new connection token on the IoT page"), write: false };
  }
  draft.pairings = draft.pairings.filter((p) => p !== pairing && pairingOpen(p, now));
  const box = boxRecord(body, identityKey, new Date(now).toISOString(), now);
  draft.boxes.push(box);
  return { result: { kind: "registered", first: true, box }, write: true };
}

/** The whole registration: checks, then the store transaction. */
export async function register(store: JsonStore, input: SignedRegistration, now: () => number): Promise<RegistrationOutcome> {
  const problem = fieldProblem(input.body);
  if (problem) return refused("bad_request", problem);
  const authenticated = authenticate(input, now());
  if ("kind" in authenticated) return authenticated;
  return store.change((draft) => decide(draft, input.body, authenticated.identityKey, now()));
}
