/**
 * The certificate signing request: PKCS#10, signed with the pending TLS key, SAN = the names the issuer
 * said the box is owed, CN = the first of them. Only the CSR leaves the box, never the key.
 */
import { webcrypto } from "node:crypto";
import type * as X509 from "@peculiar/x509";
import type { TlsKey } from "./tls-key.ts";

type CreateParams = Parameters<typeof X509.Pkcs10CertificateRequestGenerator.create>[0];

const ECDSA_P256 = { name: "ECDSA", namedCurve: "P-256" } as const;

let x509Loaded: Promise<typeof X509> | null = null;

/**
 * @peculiar/x509 (with reflect-metadata and its ASN.1 stack: about 200 modules, 4.5 MiB of resident
 * memory on an idle box) is loaded when the first CSR is made, at enrolment or renewal: a box spends most
 * of its life serving a certificate it already has, and reads certificates with node's own X509Certificate.
 */
function x509(): Promise<typeof X509> {
  x509Loaded ??= (async () => {
    await import("reflect-metadata");
    const module = await import("@peculiar/x509");
    module.cryptoProvider.set(webcrypto as unknown as Parameters<typeof module.cryptoProvider.set>[0]);
    return module;
  })();
  return x509Loaded;
}

export async function createCsr(key: TlsKey, names: readonly string[]): Promise<string> {
  const [first] = names;
  if (first === undefined) throw new Error("a CSR needs at least one name");
  const subtle = webcrypto.subtle;
  const pkcs8 = key.privateKey.export({ type: "pkcs8", format: "der" });
  const privateKey = await subtle.importKey("pkcs8", pkcs8, ECDSA_P256, false, ["sign"]);
  const publicKey = await subtle.importKey("spki", key.spki, ECDSA_P256, true, ["verify"]);
  const { Pkcs10CertificateRequestGenerator, SubjectAlternativeNameExtension } = await x509();
  const csr = await Pkcs10CertificateRequestGenerator.create({
    name: [{ CN: [first] }],
    keys: { privateKey, publicKey } as unknown as CreateParams["keys"],
    signingAlgorithm: { name: "ECDSA", hash: "SHA-256" },
    extensions: [new SubjectAlternativeNameExtension(names.map((value) => ({ type: "dns" as const, value })))],
  });
  return csr.toString("pem");
}
