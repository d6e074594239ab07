/**
 * Micro benchmark of the embedded CA's hot path: CSR verification and leaf building, next to the raw
 * node:crypto operations they are built on and the library paths they replace. Prints medians in us per
 * operation; compare figures only within one run (the machine is shared).
 *
 *   node --import tsx bench/ca-micro.ts [iterations=5000] [runs=5]
 */
import { createPublicKey, generateKeyPairSync, sign, verify, webcrypto } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as x509 from "@peculiar/x509";
import { AsnConvert, OctetString } from "@peculiar/asn1-schema";
import { CertificationRequest } from "@peculiar/asn1-csr";
import {
  AlgorithmIdentifier,
  Certificate,
  Extension,
  Extensions,
  GeneralName,
  Name,
  SubjectAlternativeName,
  SubjectPublicKeyInfo,
  TBSCertificate,
  Validity,
  Version,
  id_ce_subjectAltName,
} from "@peculiar/asn1-x509";
import { verifyCsr } from "../packages/issuer/src/csr.ts";
import { LeafBuilder, randomSerial, subjectKeyIdentifier } from "../packages/issuer/src/leaf-builder.ts";
import { EmbeddedCa } from "../packages/issuer/src/embedded-ca.ts";

const iterations = Number(process.argv[2] ?? 5000);
const runs = Number(process.argv[3] ?? 5);
const names = ["*.abcdefghijklmnop.boxcert.test", "abcdefghijklmnop.boxcert.test"];

async function makeCsr(algorithm: webcrypto.EcKeyGenParams | webcrypto.RsaHashedKeyGenParams, hash: string): Promise<Buffer> {
  const keys = (await webcrypto.subtle.generateKey(algorithm, true, ["sign", "verify"])) as webcrypto.CryptoKeyPair;
  const csr = await x509.Pkcs10CertificateRequestGenerator.create(
    {
      name: `CN=${names[0]}`,
      keys,
      signingAlgorithm: { ...algorithm, hash },
      extensions: [new x509.SubjectAlternativeNameExtension(names.map((value) => ({ type: "dns" as const, value })))],
    },
    webcrypto,
  );
  return Buffer.from(csr.rawData);
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

async function measure(label: string, fn: () => unknown, count = iterations): Promise<void> {
  for (let i = 0; i < Math.min(200, count); i++) await fn(); // warm-up
  const perRun: number[] = [];
  for (let run = 0; run < runs; run++) {
    const start = process.hrtime.bigint();
    for (let i = 0; i < count; i++) {
      const result = fn();
      if (result instanceof Promise) await result;
    }
    perRun.push(Number(process.hrtime.bigint() - start) / count / 1000);
  }
  console.log(`${label.padEnd(46)} ${median(perRun).toFixed(1).padStart(8)} us  (runs: ${perRun.map((v) => v.toFixed(1)).join(" ")})`);
}

const p256 = await makeCsr({ name: "ECDSA", namedCurve: "P-256" }, "SHA-256");
const p384 = await makeCsr({ name: "ECDSA", namedCurve: "P-384" }, "SHA-384");
const rsa2048 = await makeCsr(
  { name: "RSASSA-PKCS1-v1_5", modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: "SHA-256" },
  "SHA-256",
);

const keysDir = await mkdtemp(join(tmpdir(), "boxcert-bench-"));
const ca = await EmbeddedCa.loadOrCreate(keysDir);
const intermediateDer = Buffer.from(new x509.X509Certificate(ca.intermediatePem()).rawData);
const { readFile } = await import("node:fs/promises");
const { createPrivateKey } = await import("node:crypto");
const intermediateKey = createPrivateKey(await readFile(join(keysDir, "embedded-ca", "intermediate.key"), "utf8"));
const builder = new LeafBuilder({ certificateDer: intermediateDer, privateKey: intermediateKey });
const csrP256 = verifyCsr(p256);
const csrRsa = verifyCsr(rsa2048);

// The schema alternative to leaf-builder: the same leaf through @peculiar/asn1-x509 objects and
// AsnConvert.serialize, with everything constant prepared once.
const intermediate = AsnConvert.parse(intermediateDer, Certificate);
const signatureAlgorithm = new AlgorithmIdentifier({ algorithm: "1.2.840.10045.4.3.2" });
const leafDer = builder.build({ ...csrP256, publicKeySpkiDer: csrP256.publicKeySpkiDer, names, now: new Date(), lifetimeMs: 90 * 86400e3 }).der;
const fixedExtensions = AsnConvert.parse(leafDer, Certificate).tbsCertificate.extensions!.filter((e) => e.extnID !== id_ce_subjectAltName && e.extnID !== "2.5.29.14");
function schemaLeaf(): Buffer {
  const now = Date.now();
  const san = new SubjectAlternativeName(names.map((dNSName) => new GeneralName({ dNSName })));
  const tbs = new TBSCertificate({
    version: Version.v3,
    serialNumber: new Uint8Array(randomSerial()).buffer,
    signature: signatureAlgorithm,
    issuer: intermediate.tbsCertificate.subject,
    validity: new Validity({ notBefore: new Date(now - 60_000), notAfter: new Date(now + 90 * 86400e3) }),
    subject: AsnConvert.parse(Buffer.from(`3029312730250603550403131e${Buffer.from(names[0]!).toString("hex")}`, "hex"), Name),
    subjectPublicKeyInfo: AsnConvert.parse(csrP256.publicKeySpkiDer, SubjectPublicKeyInfo),
    extensions: new Extensions([
      ...fixedExtensions,
      new Extension({ extnID: "2.5.29.14", extnValue: new OctetString(AsnConvert.serialize(new OctetString(subjectKeyIdentifier(csrP256.publicKeySpkiDer)))) }),
      new Extension({ extnID: id_ce_subjectAltName, extnValue: new OctetString(AsnConvert.serialize(san)) }),
    ]),
  });
  const tbsDer = Buffer.from(AsnConvert.serialize(tbs));
  const signature = sign("sha256", tbsDer, { key: intermediateKey, dsaEncoding: "der" });
  return Buffer.from(AsnConvert.serialize(new Certificate({ tbsCertificate: tbs, signatureAlgorithm, signatureValue: new Uint8Array([...signature]).buffer })));
}
schemaLeaf();

const raw = generateKeyPairSync("ec", { namedCurve: "P-256" });
const rawData = Buffer.alloc(400, 7);
const rawSignature = sign("sha256", rawData, { key: raw.privateKey, dsaEncoding: "der" });
const rawSpki = raw.publicKey.export({ type: "spki", format: "der" });
const rawJwk = raw.publicKey.export({ format: "jwk" });

console.log(`node ${process.version}, OpenSSL ${process.versions.openssl}; ${iterations} iterations x ${runs} runs, median per operation`);
await measure("raw crypto.sign ECDSA P-256", () => sign("sha256", rawData, { key: raw.privateKey, dsaEncoding: "der" }));
await measure("raw crypto.verify ECDSA P-256 (key reused)", () => verify("sha256", rawData, { key: raw.publicKey, dsaEncoding: "der" }, rawSignature));
await measure("raw createPublicKey(SPKI DER) P-256", () => createPublicKey({ key: rawSpki, format: "der", type: "spki" }));
await measure("raw createPublicKey(JWK) P-256", () => createPublicKey({ key: rawJwk, format: "jwk" }));
await measure("raw JWK import + verify (fresh key) P-256", () =>
  verify("sha256", rawData, { key: createPublicKey({ key: rawJwk, format: "jwk" }), dsaEncoding: "der" }, rawSignature),
);
await measure("AsnConvert.parse(CertificationRequest) P-256", () => AsnConvert.parse(p256, CertificationRequest));
await measure("verifyCsr P-256", () => verifyCsr(p256));
await measure("verifyCsr P-384", () => verifyCsr(p384), Math.ceil(iterations / 5));
await measure("verifyCsr RSA-2048", () => verifyCsr(rsa2048));
const now = new Date();
const lifetimeMs = 90 * 86400e3;
await measure("LeafBuilder.build P-256 key (incl. sign)", () => builder.build({ ...csrP256, names, now, lifetimeMs }));
await measure("LeafBuilder.build RSA key (incl. sign)", () => builder.build({ ...csrRsa, names, now, lifetimeMs }));
await measure("asn1-x509 schema leaf (incl. sign)", schemaLeaf);
await measure("EmbeddedCa.issue P-256 (leaf + PEM chain)", () => ca.issue({ label: "x", zone: "boxcert.test", names, csr: csrP256, lifetimeMs, now }));
const x509Keys = (await webcrypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, true, ["sign", "verify"])) as webcrypto.CryptoKeyPair;
await measure(
  "@peculiar/x509 X509CertificateGenerator.create",
  () =>
    x509.X509CertificateGenerator.create(
      { subject: `CN=${names[0]}`, issuer: "CN=bench", publicKey: x509Keys.publicKey, signingKey: x509Keys.privateKey, signingAlgorithm: { name: "ECDSA", hash: "SHA-256" } },
      webcrypto,
    ),
  Math.ceil(iterations / 10),
);
await rm(keysDir, { recursive: true, force: true });
