/**
 * The TLS key: ECDSA P-256, made on the box, never sent anywhere (only the CSR made from it is).
 *
 * A key made for a request is first saved as https.pending-key.pem and reused by every later attempt until
 * a certificate for it is saved into https.pem. The issuer answers a repeat request for the same public
 * key with the same certificate, so a crash between asking and saving costs nothing: the next attempt
 * gets that certificate back instead of a second one.
 */
import { readFile, unlink } from "node:fs/promises";
import { createPrivateKey, createPublicKey, generateKeyPairSync } from "node:crypto";
import type { KeyObject } from "node:crypto";
import { writeFileAtomic } from "@boxcert/shared";
import type { DataPaths } from "../data-dir.ts";

export interface TlsKey {
  /** PKCS#8 PEM. */
  pem: string;
  privateKey: KeyObject;
  /** The public key, SPKI DER: what a certificate for this key must carry. */
  spki: Buffer;
}

export function tlsKeyFromPem(pem: string): TlsKey {
  const privateKey = createPrivateKey(pem);
  if (privateKey.asymmetricKeyType !== "ec" || privateKey.asymmetricKeyDetails?.namedCurve !== "prime256v1") {
    throw new Error("the TLS key is not an ECDSA P-256 key");
  }
  return { pem, privateKey, spki: createPublicKey(privateKey).export({ type: "spki", format: "der" }) };
}

export function newTlsKey(): TlsKey {
  const { privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  return tlsKeyFromPem(privateKey.export({ type: "pkcs8", format: "pem" }) as string);
}

export interface PendingKey {
  key: TlsKey;
  /** True when the key was made by an earlier attempt (this request repeats it). */
  reused: boolean;
  /** Why an existing pending key was not reused, for the log. */
  discarded?: string;
}

/**
 * The key for the next request: the pending one when there is one, else a new one saved as pending first.
 * `servedSpki` is the key of the certificate already in https.pem: a pending key equal to it is what a crash
 * between saving https.pem and removing the pending file leaves behind, and is not reused (it would get
 * the same, due, certificate back).
 */
export async function pendingTlsKey(paths: DataPaths, servedSpki: Buffer | null): Promise<PendingKey> {
  let discarded: string | undefined;
  try {
    const key = tlsKeyFromPem(await readFile(paths.pendingKey, "utf8"));
    if (servedSpki && key.spki.equals(servedSpki)) discarded = "it is the key of the certificate already saved";
    else return { key, reused: true };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") discarded = `it cannot be read: ${(err as Error).message}`;
  }
  const key = newTlsKey();
  await writeFileAtomic(paths.pendingKey, key.pem, 0o600);
  return discarded === undefined ? { key, reused: false } : { key, reused: false, discarded };
}

export async function removePendingKey(paths: DataPaths): Promise<void> {
  await unlink(paths.pendingKey).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== "ENOENT") throw err;
  });
}
