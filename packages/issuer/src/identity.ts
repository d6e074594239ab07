/**
 * Signed requests: every box request body is signed with the box's long-lived identity key (wire.ts), and
 * a database's report with the database's own key, the same way. Parsed public keys are cached: a fleet
 * re-uses the same few keys and parsing one costs more than verifying.
 */
import { createPublicKey, verify, type KeyObject } from "node:crypto";
import { REQUEST_MAX_SKEW_MS } from "@boxcert/shared";
import { failed, type Failed } from "./outcome.ts";

const CACHE_LIMIT = 50_000;
const keyCache = new Map<string, KeyObject | null>();

/** The identity key from its SPKI base64, or null when it is not an ECDSA P-256 public key. */
export function identityPublicKey(spkiBase64: string): KeyObject | null {
  const cached = keyCache.get(spkiBase64);
  if (cached !== undefined) return cached;
  let key: KeyObject | null = null;
  try {
    const candidate = createPublicKey({ key: Buffer.from(spkiBase64, "base64"), format: "der", type: "spki" });
    if (candidate.asymmetricKeyType === "ec" && candidate.asymmetricKeyDetails?.namedCurve === "prime256v1") key = candidate;
  } catch {
    key = null;
  }
  if (keyCache.size >= CACHE_LIMIT) keyCache.clear();
  keyCache.set(spkiBase64, key);
  return key;
}

/**
 * Whether `signature` (base64url DER ECDSA-SHA256) signs exactly `body` with the identity key. Verified on
 * libuv's thread pool (crypto.verify with a callback): the event loop goes on answering meanwhile.
 */
export function verifyBodySignature(body: Buffer, signature: string | undefined, key: KeyObject): Promise<boolean> {
  if (!signature || signature.length > 200 || !/^[A-Za-z0-9_-]+$/.test(signature)) return Promise.resolve(false);
  return new Promise((resolve) => {
    try {
      verify("sha256", body, { key, dsaEncoding: "der" }, Buffer.from(signature, "base64url"), (err, valid) => resolve(!err && valid));
    } catch {
      resolve(false);
    }
  });
}

/** The signed bytes of a request, its signature header and the timestamp it carries. */
export interface SignedBody {
  raw: Buffer;
  signature: string | undefined;
  timestamp: string;
}

/** Who signs: the body field that carries the public key, and whose clock a stale request points at. */
export interface Signer {
  keyField: "identityKey" | "databaseKey";
  publicKey: string;
  whose: "box" | "database";
}

/**
 * The authentication step of every signed request: fresh (within REQUEST_MAX_SKEW_MS of `now`, which
 * bounds replays) and signed over its exact bytes by the key it carries. Null when it passes.
 */
export async function authenticateSignedBody(body: SignedBody, signer: Signer, now: number): Promise<Failed | null> {
  const at = Date.parse(body.timestamp);
  if (Number.isNaN(at)) return failed("bad_request", "timestamp is not an ISO 8601 date");
  if (Math.abs(now - at) > REQUEST_MAX_SKEW_MS) {
    return failed("stale_request", `the request timestamp ${body.timestamp} is more than ${REQUEST_MAX_SKEW_MS / 60000} minutes from the issuer's clock ${new Date(now).toISOString()}; check the ${signer.whose}'s clock`);
  }
  const key = identityPublicKey(signer.publicKey);
  if (!key) return failed("bad_identity_key", `${signer.keyField} is not an ECDSA P-256 public key (SPKI DER, base64)`);
  if (!(await verifyBodySignature(body.raw, body.signature, key))) {
    return failed("bad_signature", `the boxcert-signature header does not sign this body with ${signer.keyField}`);
  }
  return null;
}
