/**
 * The certificate signing request: PKCS#10, signed with the pending TLS key, SAN = the names the issuer
 * said the box is owed, CN = the first of them. Only the CSR leaves the box, never the key.
 */
import "reflect-metadata";
import { webcrypto } from "node:crypto";
import * as x509 from "@peculiar/x509";
import type { TlsKey } from "./tls-key.ts";

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

type CreateParams = Parameters<typeof x509.Pkcs10CertificateRequestGenerator.create>[0];

const ECDSA_P256 = { name: "ECDSA", namedCurve: "P-256" } as const;

export async function createCsr(key: TlsKey, names: readonly string[]): Promise<string> {
  const [first] = names;
  if (first === undefined) throw new Error("a CSR needs at least one name");
  const subtle = webcrypto.subtle;
  const pkcs8 = key.privateKey.export({ type: "pkcs8", format: "der" });
  const privateKey = await subtle.importKey("pkcs8", pkcs8, ECDSA_P256, false, ["sign"]);
  const publicKey = await subtle.importKey("spki", key.spki, ECDSA_P256, true, ["verify"]);
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: [{ CN: [first] }],
    keys: { privateKey, publicKey } as unknown as CreateParams["keys"],
    signingAlgorithm: { name: "ECDSA", hash: "SHA-256" },
    extensions: [new x509.SubjectAlternativeNameExtension(names.map((value) => ({ type: "dns" as const, value })))],
  });
  return csr.toString("pem");
}
