/**
 * The certificate signing request: PKCS#10, signed with the pending TLS key, SAN = the names the issuer
 * said the box is owed, CN = the first of them. Only the CSR leaves the box, never the key.
 */
import { webcrypto } from "node:crypto";
import { readFile } from "node:fs/promises";
import type * as X509 from "@peculiar/x509";
import { writeFileAtomic } from "@boxcert/shared";
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
    // The package is CommonJS: its module.exports is the namespace's default, both in node (which also
    // lists the names it finds) and in the bundle (scripts/build.ts), whose chunk exports only the default.
    const module = ((await import("@peculiar/x509")) as unknown as { default: typeof X509 }).default;
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

interface SavedCsr {
  publicKey: string;
  names: string[];
  csr: string;
}

async function readSavedCsr(file: string): Promise<SavedCsr | null> {
  try {
    const saved = JSON.parse(await readFile(file, "utf8")) as Partial<SavedCsr> | null;
    if (saved && typeof saved.publicKey === "string" && Array.isArray(saved.names) && typeof saved.csr === "string") return saved as SavedCsr;
  } catch {
    // missing or unreadable: a new one is made and replaces it
  }
  return null;
}

/**
 * The CSR for this key and these names, made once and kept in `file` (https.csr.json) while the key and the
 * names stay the same: every refresh asks with the saved certificate's key (at start and every check
 * interval), every retry with the same pending key. A CSR only proves possession of the key for the names;
 * each request that carries it is signed with the box's identity key and a fresh timestamp, so reusing it
 * opens no replay. What it saves: a box that only refreshes never loads @peculiar/x509 (see x509()).
 */
export async function csrFor(file: string, key: TlsKey, names: readonly string[]): Promise<string> {
  const publicKey = key.spki.toString("base64");
  const saved = await readSavedCsr(file);
  if (saved && saved.publicKey === publicKey && saved.names.join("\n") === names.join("\n")) return saved.csr;
  const csr = await createCsr(key, names);
  await writeFileAtomic(file, `${JSON.stringify({ publicKey, names: [...names], csr } satisfies SavedCsr)}\n`);
  return csr;
}
