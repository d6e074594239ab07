/**
 * Signed JSON (docs/erp.md "Signatures"): ECDSA P-256 with SHA-256, DER signature, base64url, in the
 * `boxcert-signature` header, over the exact body bytes; public keys travel as SPKI DER in base64.
 * node:crypto does all of it; what is here is the encoding both sides must agree on.
 */
import { createPublicKey, sign, verify, type KeyObject } from "node:crypto";

/** A base64url DER signature is at most 72 bytes (96 characters); anything longer is not one. */
const MAX_SIGNATURE_LENGTH = 200;

export function publicKeyBase64(privateKey: KeyObject): string {
  return createPublicKey(privateKey).export({ type: "spki", format: "der" }).toString("base64");
}

export function signBody(privateKey: KeyObject, body: Buffer): string {
  return sign("sha256", body, { key: privateKey, dsaEncoding: "der" }).toString("base64url");
}

/** The key from its SPKI base64, or null when it is not an ECDSA P-256 public key. */
export function p256PublicKey(spkiBase64: string): KeyObject | null {
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(spkiBase64)) return null;
  try {
    const key = createPublicKey({ key: Buffer.from(spkiBase64, "base64"), format: "der", type: "spki" });
    return key.asymmetricKeyType === "ec" && key.asymmetricKeyDetails?.namedCurve === "prime256v1" ? key : null;
  } catch {
    return null;
  }
}

/** Whether `signature` signs exactly `body` with `key`. */
export function verifyBody(body: Buffer, signature: string | undefined, key: KeyObject): boolean {
  if (!signature || signature.length > MAX_SIGNATURE_LENGTH || !/^[A-Za-z0-9_-]+$/.test(signature)) return false;
  try {
    return verify("sha256", body, { key, dsaEncoding: "der" }, Buffer.from(signature, "base64url"));
  } catch {
    return false;
  }
}
