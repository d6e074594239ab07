/**
 * Box identity: every request body is signed with the box's long-lived identity key (wire.ts). Parsed
 * public keys are cached: a fleet re-uses the same few keys and parsing one costs more than verifying.
 */
import { createPublicKey, verify, type KeyObject } from "node:crypto";

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

/** Whether `signature` (base64url DER ECDSA-SHA256) signs exactly `body` with the identity key. */
export function verifyBodySignature(body: Buffer, signature: string | undefined, key: KeyObject): boolean {
  if (!signature || signature.length > 200 || !/^[A-Za-z0-9_-]+$/.test(signature)) return false;
  try {
    return verify("sha256", body, { key, dsaEncoding: "der" }, Buffer.from(signature, "base64url"));
  } catch {
    return false;
  }
}
