import { test, describe, before, after } from "node:test";
import assert from "node:assert/strict";
import { X509Certificate as NodeX509Certificate, createPrivateKey, generateKeyPairSync, webcrypto } from "node:crypto";
import { execFileSync } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as x509 from "@peculiar/x509";
import { AsnConvert } from "@peculiar/asn1-schema";
import { Certificate } from "@peculiar/asn1-x509";
import { verifyCsr } from "../src/csr.ts";
import type { VerifiedCsr } from "../src/csr.ts";
import { EmbeddedCa } from "../src/embedded-ca.ts";
import { LEAF_BACKDATE_MS, LeafBuilder, LeafBuilderError } from "../src/leaf-builder.ts";
import type { BuiltLeaf } from "../src/leaf-builder.ts";

const LABEL = "abcdefghijklmnop";
const ZONE = "boxcert.test";
const NAMES = [`*.${LABEL}.${ZONE}`, `${LABEL}.${ZONE}`];
const DAY_MS = 86_400_000;

type KeyKind = "p256" | "p384" | "rsa2048";
const ALGORITHMS: Record<KeyKind, webcrypto.EcKeyGenParams | webcrypto.RsaHashedKeyGenParams> = {
  p256: { name: "ECDSA", namedCurve: "P-256" },
  p384: { name: "ECDSA", namedCurve: "P-384" },
  rsa2048: { name: "RSASSA-PKCS1-v1_5", modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: "SHA-256" },
};

async function makeCsr(kind: KeyKind, names = NAMES): Promise<VerifiedCsr> {
  const algorithm = ALGORITHMS[kind];
  const keys = (await webcrypto.subtle.generateKey(algorithm, true, ["sign", "verify"])) as webcrypto.CryptoKeyPair;
  const csr = await x509.Pkcs10CertificateRequestGenerator.create(
    {
      name: "CN=box",
      keys,
      signingAlgorithm: { ...algorithm, hash: kind === "p384" ? "SHA-384" : "SHA-256" },
      extensions: [new x509.SubjectAlternativeNameExtension(names.map((value) => ({ type: "dns" as const, value })))],
    },
    webcrypto,
  );
  return verifyCsr(Buffer.from(csr.rawData));
}

interface TestCa {
  folder: string;
  builder: LeafBuilder;
  intermediate: x509.X509Certificate;
  nodeIntermediate: NodeX509Certificate;
}

async function makeCa(now?: Date): Promise<TestCa> {
  const folder = await mkdtemp(join(tmpdir(), "boxcert-leaf-"));
  const ca = await EmbeddedCa.loadOrCreate(folder, now ? { now: () => now } : {});
  await writeFile(join(folder, "root.pem"), ca.rootPem());
  await writeFile(join(folder, "intermediate.pem"), ca.intermediatePem());
  const privateKey = createPrivateKey(await readFile(join(folder, "embedded-ca", "intermediate.key"), "utf8"));
  const intermediate = new x509.X509Certificate(ca.intermediatePem());
  return {
    folder,
    builder: new LeafBuilder({ certificateDer: Buffer.from(intermediate.rawData), privateKey }),
    intermediate,
    nodeIntermediate: new NodeX509Certificate(ca.intermediatePem()),
  };
}

function toPem(der: Buffer): string {
  return new x509.X509Certificate(der).toString("pem") + "\n";
}

/** openssl's own chain verification, strict, for a TLS server; returns its output or throws with it. */
async function opensslVerify(ca: TestCa, leaf: Buffer, extra: string[] = []): Promise<string> {
  const leafPath = join(ca.folder, `leaf-${Math.random().toString(36).slice(2)}.pem`);
  await writeFile(leafPath, toPem(leaf));
  return execFileSync(
    "openssl",
    ["verify", "-x509_strict", "-purpose", "sslserver", "-CAfile", join(ca.folder, "root.pem"), "-untrusted", join(ca.folder, "intermediate.pem"), ...extra, leafPath],
    { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] },
  );
}

async function opensslText(ca: TestCa, leaf: Buffer): Promise<string> {
  const leafPath = join(ca.folder, "text.pem");
  await writeFile(leafPath, toPem(leaf));
  return execFileSync("openssl", ["x509", "-noout", "-text", "-in", leafPath], { encoding: "utf8" });
}

function validityTags(der: Buffer): { notBefore: "utc" | "generalized"; notAfter: "utc" | "generalized" } {
  const { notBefore, notAfter } = AsnConvert.parse(der, Certificate).tbsCertificate.validity;
  return { notBefore: notBefore.utcTime ? "utc" : "generalized", notAfter: notAfter.utcTime ? "utc" : "generalized" };
}

let ca: TestCa;
before(async () => {
  ca = await makeCa();
});
after(async () => {
  await rm(ca.folder, { recursive: true, force: true });
});

describe("LeafBuilder.build", () => {
  for (const kind of ["p256", "p384", "rsa2048"] as const) {
    test(`${kind}: the leaf parses the same with @peculiar/x509, node and openssl`, async () => {
      const csr = await makeCsr(kind);
      const now = new Date();
      const lifetimeMs = 90 * DAY_MS;
      const leaf: BuiltLeaf = ca.builder.build({ publicKeySpkiDer: csr.publicKeySpkiDer, keyType: csr.keyType, names: NAMES, now, lifetimeMs });
      assert.equal(leaf.notBefore.getTime(), Math.floor((now.getTime() - LEAF_BACKDATE_MS) / 1000) * 1000);
      assert.equal(leaf.notAfter.getTime(), Math.floor((now.getTime() + lifetimeMs) / 1000) * 1000);

      const cert = new x509.X509Certificate(leaf.der);
      assert.equal(cert.subject, `CN=${NAMES[0]}`);
      assert.equal(cert.issuer, ca.intermediate.subject);
      assert.equal(cert.serialNumber.toLowerCase(), leaf.serial);
      assert.equal(cert.notBefore.getTime(), leaf.notBefore.getTime());
      assert.equal(cert.notAfter.getTime(), leaf.notAfter.getTime());
      assert.deepEqual(Buffer.from(cert.publicKey.rawData), csr.publicKeySpkiDer);
      assert.deepEqual(cert.signatureAlgorithm, { name: "ECDSA", hash: { name: "SHA-256" } });
      assert.ok(await cert.verify({ publicKey: ca.intermediate.publicKey, signatureOnly: true }, webcrypto));

      const san = cert.getExtension(x509.SubjectAlternativeNameExtension)!;
      assert.deepEqual(san.names.items.map((n) => [n.type, n.value]), NAMES.map((n) => ["dns", n]));
      assert.equal(san.critical, false);
      const basic = cert.getExtension(x509.BasicConstraintsExtension)!;
      assert.equal(basic.ca, false);
      assert.equal(basic.critical, true);
      const keyUsage = cert.getExtension(x509.KeyUsagesExtension)!;
      const expectedUsage = x509.KeyUsageFlags.digitalSignature | (kind === "rsa2048" ? x509.KeyUsageFlags.keyEncipherment : 0);
      assert.equal(keyUsage.usages, expectedUsage);
      assert.equal(keyUsage.critical, true);
      assert.deepEqual(Array.from(cert.getExtension(x509.ExtendedKeyUsageExtension)!.usages), [x509.ExtendedKeyUsage.serverAuth]);
      const ski = cert.getExtension(x509.SubjectKeyIdentifierExtension)!;
      assert.equal(ski.keyId, Buffer.from(await cert.publicKey.getKeyIdentifier(webcrypto)).toString("hex"));
      const aki = cert.getExtension(x509.AuthorityKeyIdentifierExtension)!;
      assert.equal(aki.keyId, ca.intermediate.getExtension(x509.SubjectKeyIdentifierExtension)!.keyId);
      assert.equal(cert.extensions.length, 6);

      const nodeCert = new NodeX509Certificate(leaf.der);
      assert.ok(nodeCert.checkIssued(ca.nodeIntermediate));
      assert.ok(nodeCert.verify(ca.nodeIntermediate.publicKey));
      assert.equal(nodeCert.subjectAltName, NAMES.map((n) => `DNS:${n}`).join(", "));
      assert.equal(nodeCert.ca, false);
      assert.equal(nodeCert.serialNumber.toLowerCase(), leaf.serial);
      assert.deepEqual(nodeCert.publicKey.export({ type: "spki", format: "der" }), csr.publicKeySpkiDer);
      assert.equal(nodeCert.checkHost(`192-168-1-42.${LABEL}.${ZONE}`), NAMES[0]);
      assert.equal(nodeCert.checkHost(`192-168-1-42.other.${ZONE}`), undefined);

      assert.match(await opensslVerify(ca, leaf.der, ["-verify_hostname", `192-168-1-42.${LABEL}.${ZONE}`]), /: OK\n$/);
      const text = await opensslText(ca, leaf.der);
      assert.match(text, new RegExp(`Subject: CN\\s*=\\s*\\*\\.${LABEL}\\.boxcert\\.test\\n`));
      assert.match(text, new RegExp(`DNS:\\*\\.${LABEL}\\.boxcert\\.test, DNS:${LABEL}\\.boxcert\\.test`));
      assert.match(text, /CA:FALSE/);
      assert.match(text, /TLS Web Server Authentication/);
    });
  }

  test("openssl refuses a leaf whose signature was tampered with (the checks above can fail)", async () => {
    const csr = await makeCsr("p256");
    const leaf = ca.builder.build({ ...csr, names: NAMES, now: new Date(), lifetimeMs: DAY_MS });
    const tampered = Buffer.from(leaf.der);
    tampered[tampered.length - 3]! ^= 0x01;
    await assert.rejects(opensslVerify(ca, tampered));
    assert.equal(new NodeX509Certificate(tampered).verify(ca.nodeIntermediate.publicKey), false);
  });

  test("signed off the event loop (the issuer's path): a leaf that verifies, like the one signed on it", async () => {
    const csr = await makeCsr("p256");
    const leaf = await ca.builder.buildOffLoop({ ...csr, names: NAMES, now: new Date(), lifetimeMs: DAY_MS });
    const certificate = new NodeX509Certificate(leaf.der);
    assert.equal(certificate.verify(ca.nodeIntermediate.publicKey), true);
    assert.equal(certificate.serialNumber.toLowerCase().replace(/^0+/, ""), leaf.serial.replace(/^0+/, ""));
    await opensslVerify(ca, leaf.der);
  });

  test("serials are 16 bytes, positive, without a leading zero, and distinct", async () => {
    const csr = await makeCsr("p256");
    const serials = new Set<string>();
    for (let i = 0; i < 500; i++) {
      const { serial } = ca.builder.build({ ...csr, names: NAMES, now: new Date(), lifetimeMs: DAY_MS });
      assert.match(serial, /^[0-7][0-9a-f]{31}$/);
      assert.notEqual(serial.slice(0, 2), "00");
      serials.add(serial);
    }
    assert.equal(serials.size, 500);
  });

  test("a leaf never outlives its intermediate", async () => {
    const csr = await makeCsr("p256");
    const leaf = ca.builder.build({ ...csr, names: NAMES, now: new Date(), lifetimeMs: 20 * 365 * DAY_MS });
    assert.equal(leaf.notAfter.getTime(), ca.intermediate.notAfter.getTime());
    assert.match(await opensslVerify(ca, leaf.der), /: OK\n$/);
  });

  test("a first name longer than a CN may be leaves the subject empty and makes the SAN critical", async () => {
    const long = [`*.${"a".repeat(60)}.${ZONE}`, `${"a".repeat(60)}.${ZONE}`];
    const csr = await makeCsr("p256", long);
    const leaf = ca.builder.build({ ...csr, names: long, now: new Date(), lifetimeMs: DAY_MS });
    const cert = new x509.X509Certificate(leaf.der);
    assert.equal(cert.subject, "");
    assert.equal(cert.getExtension(x509.SubjectAlternativeNameExtension)!.critical, true);
    assert.match(await opensslVerify(ca, leaf.der), /: OK\n$/);
  });

  test("refuses to build without names, and an issuer key that is not ECDSA P-256", async () => {
    const csr = await makeCsr("p256");
    assert.throws(() => ca.builder.build({ ...csr, names: [], now: new Date(), lifetimeMs: DAY_MS }), LeafBuilderError);
    const rsaKey = generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey;
    assert.throws(() => new LeafBuilder({ certificateDer: Buffer.from(ca.intermediate.rawData), privateKey: rsaKey }), /ECDSA P-256/);
  });
});

describe("LeafBuilder dates around 2050 (RFC 5280 4.1.2.5)", () => {
  let late: TestCa;
  before(async () => {
    late = await makeCa(new Date("2049-06-01T00:00:00Z"));
  });
  after(async () => {
    await rm(late.folder, { recursive: true, force: true });
  });

  test("notAfter in 2050 is GeneralizedTime, notBefore in 2049 UTCTime, and openssl accepts them", async () => {
    const csr = await makeCsr("p256");
    const now = new Date("2049-12-01T12:00:00.750Z");
    const leaf = late.builder.build({ ...csr, names: NAMES, now, lifetimeMs: 90 * DAY_MS });
    assert.deepEqual(validityTags(leaf.der), { notBefore: "utc", notAfter: "generalized" });
    assert.equal(leaf.notAfter.toISOString(), "2050-03-01T12:00:00.000Z");
    const nodeCert = new NodeX509Certificate(leaf.der);
    assert.equal(new Date(nodeCert.validTo).toISOString(), "2050-03-01T12:00:00.000Z");
    assert.equal(new Date(nodeCert.validFrom).toISOString(), "2049-12-01T11:59:00.000Z");
    assert.equal(new x509.X509Certificate(leaf.der).notAfter.toISOString(), "2050-03-01T12:00:00.000Z");
    const at = String(Date.parse("2050-01-15T00:00:00Z") / 1000);
    assert.match(await opensslVerify(late, leaf.der, ["-attime", at]), /: OK\n$/);
  });

  test("the last second of 2049 is still UTCTime; both dates in 2050 are GeneralizedTime", async () => {
    const csr = await makeCsr("p256");
    const endOf2049 = late.builder.build({ ...csr, names: NAMES, now: new Date("2049-12-31T23:58:59Z"), lifetimeMs: 60_000 });
    assert.deepEqual(validityTags(endOf2049.der), { notBefore: "utc", notAfter: "utc" });
    assert.equal(endOf2049.notAfter.toISOString(), "2049-12-31T23:59:59.000Z");
    const in2050 = late.builder.build({ ...csr, names: NAMES, now: new Date("2050-03-01T00:00:00Z"), lifetimeMs: DAY_MS });
    assert.deepEqual(validityTags(in2050.der), { notBefore: "generalized", notAfter: "generalized" });
    assert.equal(new x509.X509Certificate(in2050.der).notBefore.toISOString(), "2050-02-28T23:59:00.000Z");
  });
});
