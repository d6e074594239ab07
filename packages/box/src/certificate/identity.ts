/**
 * The box identity key (docs/architecture.md, how the box proves who it is): ECDSA P-256, made once, kept in
 * identity.key (PKCS#8 PEM, 0600), separate from the TLS key. Only its public SPKI leaves the box; every
 * request body to the issuer is signed with it (wire.ts).
 */
import { readFile } from "node:fs/promises";
import { createPrivateKey, createPublicKey, generateKeyPairSync, sign } from "node:crypto";
import type { KeyObject } from "node:crypto";
import { writeFileAtomic } from "@boxcert/shared";
import type { DataPaths } from "../data-dir.ts";
import { ConfigError } from "../config.ts";

export interface BoxIdentity {
  /** SPKI DER, base64: the `identityKey` field of every request. */
  readonly publicKey: string;
  /** ECDSA-P256-SHA256 DER signature of these exact bytes, base64url: the `boxcert-signature` header. */
  sign(body: Buffer): string;
}

export function identityFromKey(privateKey: KeyObject): BoxIdentity {
  const publicKey = createPublicKey(privateKey).export({ type: "spki", format: "der" }).toString("base64");
  return {
    publicKey,
    sign: (body) => sign("sha256", body, { key: privateKey, dsaEncoding: "der" }).toString("base64url"),
  };
}

function parseIdentityKey(path: string, pem: string): KeyObject {
  let key: KeyObject;
  try {
    key = createPrivateKey(pem);
  } catch (err) {
    throw new ConfigError(`${path}: the box identity key cannot be parsed (${(err as Error).message}); it is never replaced automatically`, {
      cause: err,
    });
  }
  if (key.asymmetricKeyType !== "ec" || key.asymmetricKeyDetails?.namedCurve !== "prime256v1") {
    throw new ConfigError(`${path}: the box identity key is not an ECDSA P-256 key`);
  }
  return key;
}

/** Loads identity.key, making it the first time. A key that is there but unreadable is an error, never replaced. */
export async function loadOrCreateIdentity(paths: DataPaths): Promise<BoxIdentity> {
  let pem: string | null = null;
  try {
    pem = await readFile(paths.identityKey, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") {
      throw new ConfigError(`${paths.identityKey}: cannot be read: ${(err as Error).message}`, { cause: err });
    }
  }
  if (pem !== null) return identityFromKey(parseIdentityKey(paths.identityKey, pem));
  const { privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  await writeFileAtomic(paths.identityKey, privateKey.export({ type: "pkcs8", format: "pem" }), 0o600);
  return identityFromKey(privateKey);
}
