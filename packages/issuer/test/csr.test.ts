import { test, describe, before, after } from "node:test";
import assert from "node:assert/strict";
import { createHash, generateKeyPairSync, webcrypto } from "node:crypto";
import type { KeyObject } from "node:crypto";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import * as x509 from "@peculiar/x509";
import { AsnConvert } from "@peculiar/asn1-schema";
import { CertificationRequest } from "@peculiar/asn1-csr";
import { Extensions, SubjectAlternativeName } from "@peculiar/asn1-x509";
import { CsrError, MAX_CSR_NAMES, verifyCsr, verifyCsrOffLoop } from "../src/csr.ts";

type KeyKind = "p256" | "p384" | "rsa2048" | "rsa1024";
const ALGORITHMS: Record<KeyKind, webcrypto.EcKeyGenParams | webcrypto.RsaHashedKeyGenParams> = {
  p256: { name: "ECDSA", namedCurve: "P-256" },
  p384: { name: "ECDSA", namedCurve: "P-384" },
  rsa2048: { name: "RSASSA-PKCS1-v1_5", modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: "SHA-256" },
  rsa1024: { name: "RSASSA-PKCS1-v1_5", modulusLength: 1024, publicExponent: new Uint8Array([1, 0, 1]), hash: "SHA-256" },
};

interface MadeCsr {
  der: Buffer;
  pem: string;
  spki: Buffer;
}

async function makeCsr(kind: KeyKind, names: string[], hash = kind === "p384" ? "SHA-384" : "SHA-256"): Promise<MadeCsr> {
  const algorithm = ALGORITHMS[kind];
  const keys = (await webcrypto.subtle.generateKey(algorithm, true, ["sign", "verify"])) as webcrypto.CryptoKeyPair;
  const csr = await x509.Pkcs10CertificateRequestGenerator.create(
    {
      name: `CN=${names[0] ?? "box"}`,
      keys,
      signingAlgorithm: { ...algorithm, hash },
      extensions: names.length ? [new x509.SubjectAlternativeNameExtension(names.map((value) => ({ type: "dns" as const, value })))] : [],
    },
    webcrypto,
  );
  return { der: Buffer.from(csr.rawData), pem: csr.toString("pem"), spki: Buffer.from(await webcrypto.subtle.exportKey("spki", keys.publicKey)) };
}

const NAMES = ["*.Abcdefghijklmnop.boxcert.test", "abcdefghijklmnop.boxcert.test"];
const LOWER = NAMES.map((n) => n.toLowerCase());

function assertCsrError(fn: () => unknown, pattern?: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof CsrError, `expected a CsrError, got ${String(err)}`);
    if (pattern) assert.match(err.message, pattern);
    return true;
  });
}

let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), "boxcert-csr-"));
});
after(() => rmSync(dir, { recursive: true, force: true }));

/** A CSR made by the openssl command line, for algorithms WebCrypto will not produce. */
function opensslCsr(key: KeyObject, extraArgs: string[], san = "DNS:box.boxcert.test"): Buffer {
  const keyPath = join(dir, `key-${Math.random().toString(36).slice(2)}.pem`);
  writeFileSync(keyPath, key.export({ type: "pkcs8", format: "pem" }));
  const out = `${keyPath}.csr`;
  execFileSync("openssl", ["req", "-new", "-key", keyPath, "-subj", "/CN=box.boxcert.test", "-addext", `subjectAltName=${san}`, "-outform", "DER", "-out", out, ...extraArgs]);
  return readFileSync(out);
}

describe("verifyCsr accepts", () => {
  for (const [kind, keyType, keyBits] of [
    ["p256", "ec-p256", 256],
    ["p384", "ec-p384", 384],
    ["rsa2048", "rsa", 2048],
  ] as const) {
    test(`${kind}: key type, size, names, CN and public key`, async () => {
      const made = await makeCsr(kind, NAMES);
      for (const input of [made.der, made.pem, Buffer.from(made.pem)]) {
        const csr = verifyCsr(input);
        assert.equal(csr.keyType, keyType);
        assert.equal(csr.keyBits, keyBits);
        assert.deepEqual(csr.names, LOWER);
        assert.equal(csr.commonName, NAMES[0]);
        assert.deepEqual(csr.der, made.der);
        assert.deepEqual(csr.publicKeySpkiDer, made.spki);
        assert.deepEqual(csr.publicKey.export({ type: "spki", format: "der" }), made.spki);
        assert.equal(csr.publicKeySha256, createHash("sha256").update(made.spki).digest("hex"));
      }
    });
  }

  test("ECDSA with SHA-384 and SHA-512 signatures, and RSA with SHA-512", async () => {
    assert.equal(verifyCsr((await makeCsr("p256", NAMES, "SHA-512")).der).keyType, "ec-p256");
    assert.equal(verifyCsr((await makeCsr("p384", NAMES, "SHA-512")).der).keyType, "ec-p384");
    assert.equal(verifyCsr((await makeCsr("rsa2048", NAMES, "SHA-512")).der).keyType, "rsa");
    const { privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
    assert.equal(verifyCsr(opensslCsr(privateKey, ["-sha384"])).names[0], "box.boxcert.test");
  });

  test("a CSR without names, and one without attributes at all (openssl)", async () => {
    const csr = verifyCsr((await makeCsr("p256", [])).der);
    assert.deepEqual(csr.names, []);
    const { privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
    const keyPath = join(dir, "bare.pem");
    writeFileSync(keyPath, privateKey.export({ type: "pkcs8", format: "pem" }));
    const der = execFileSync("openssl", ["req", "-new", "-key", keyPath, "-subj", "/O=shop", "-outform", "DER"]);
    const bare = verifyCsr(der);
    assert.deepEqual(bare.names, []);
    assert.equal(bare.commonName, null);
  });

  test("agrees with @peculiar/asn1-schema's parse on names, CN and public key", async () => {
    for (const kind of ["p256", "p384", "rsa2048"] as const) {
      const made = await makeCsr(kind, [...NAMES, "Third.Example.net"]);
      const ours = verifyCsr(made.der);
      const theirs = AsnConvert.parse(made.der, CertificationRequest);
      const info = theirs.certificationRequestInfo;
      const extensionRequest = info.attributes.find((a) => a.type === "1.2.840.113549.1.9.14")!;
      const san = AsnConvert.parse(AsnConvert.parse(extensionRequest.values[0]!, Extensions).find((e) => e.extnID === "2.5.29.17")!.extnValue, SubjectAlternativeName);
      assert.deepEqual(ours.names, Array.from(san, (n) => n.dNSName!.toLowerCase()));
      assert.equal(ours.commonName, info.subject.flat().find((a) => a.type === "2.5.4.3")!.value.toString());
      assert.deepEqual(ours.publicKeySpkiDer, Buffer.from(AsnConvert.serialize(info.subjectPKInfo)));
    }
  });
});

describe("verifyCsr refuses", () => {
  test("RSA-1024, naming the size", async () => {
    const made = await makeCsr("rsa1024", NAMES);
    assertCsrError(() => verifyCsr(made.der), /1024 bits/);
  });

  test("a CSR whose signature bytes were flipped (no proof of possession)", async () => {
    for (const kind of ["p256", "rsa2048"] as const) {
      const made = await makeCsr(kind, NAMES);
      const tampered = Buffer.from(made.der);
      tampered[tampered.length - 5]! ^= 0x01;
      assertCsrError(() => verifyCsr(tampered), /signature does not verify/);
    }
  });

  test("off the event loop (the issuer's path): the same reading, the same refusals", async () => {
    for (const kind of ["p256", "p384", "rsa2048"] as const) {
      const made = await makeCsr(kind, NAMES);
      const onLoop = verifyCsr(made.der);
      const offLoop = await verifyCsrOffLoop(made.pem);
      assert.deepEqual({ ...offLoop, publicKey: null }, { ...onLoop, publicKey: null });
      const tampered = Buffer.from(made.der);
      tampered[tampered.length - 5]! ^= 0x01;
      await assert.rejects(verifyCsrOffLoop(tampered), (err: unknown) => err instanceof CsrError && /signature does not verify/.test(err.message));
    }
    await assert.rejects(verifyCsrOffLoop("hello"), (err: unknown) => err instanceof CsrError && /neither PEM .* nor DER/.test(err.message));
  });

  test("a CSR whose names were changed after signing", async () => {
    const made = await makeCsr("p256", NAMES);
    const at = made.der.indexOf(Buffer.from("abcdefghijklmnop.boxcert.test"));
    const tampered = Buffer.from(made.der);
    tampered[at] = "x".charCodeAt(0);
    assertCsrError(() => verifyCsr(tampered), /signature does not verify/);
  });

  test("garbage, empty input, truncated DER and trailing data", async () => {
    assertCsrError(() => verifyCsr(Buffer.alloc(0)), /empty/);
    assertCsrError(() => verifyCsr(""), /empty/);
    assertCsrError(() => verifyCsr("hello"), /neither PEM .* nor DER/);
    assertCsrError(() => verifyCsr(Buffer.from("hello world")), /not a CSR/);
    assertCsrError(() => verifyCsr(Buffer.from([0x30])), /truncated/);
    assertCsrError(() => verifyCsr(Buffer.from([0x30, 0x80, 0, 0])), /indefinite length/);
    const made = await makeCsr("p256", NAMES);
    for (let length = 0; length < made.der.length; length++) assertCsrError(() => verifyCsr(made.der.subarray(0, length)));
    assertCsrError(() => verifyCsr(made.der.subarray(0, made.der.length - 10)), /truncated/);
    assertCsrError(() => verifyCsr(Buffer.concat([made.der, Buffer.from([0])])), /1 bytes of trailing data/);
    assertCsrError(() => verifyCsr(made.pem.replace("MI", "M*I")), /malformed|base64/);
    assertCsrError(() => verifyCsr(made.pem + made.pem), /malformed/);
    assertCsrError(() => verifyCsr("-----BEGIN CERTIFICATE REQUEST-----\n-----END CERTIFICATE REQUEST-----\n"), /empty/);
    assertCsrError(() => verifyCsr(42 as unknown as string), /PEM string or a DER buffer/);
  });

  test("a certificate instead of a CSR, as PEM and as DER", async () => {
    const keys = (await webcrypto.subtle.generateKey(ALGORITHMS.p256, true, ["sign", "verify"])) as webcrypto.CryptoKeyPair;
    const certificate = await x509.X509CertificateGenerator.createSelfSigned(
      { name: "CN=not a csr", keys, signingAlgorithm: { name: "ECDSA", hash: "SHA-256" } },
      webcrypto,
    );
    assertCsrError(() => verifyCsr(certificate.toString("pem")), /holds a CERTIFICATE, not a CERTIFICATE REQUEST/);
    assertCsrError(() => verifyCsr(Buffer.from(certificate.rawData)), /not a CSR/);
  });

  test("SHA-1, RSA-PSS, P-521 and Ed25519, each by name", () => {
    const rsa = generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey;
    assertCsrError(() => verifyCsr(opensslCsr(rsa, ["-sha1"])), /SHA-1/);
    assertCsrError(() => verifyCsr(opensslCsr(rsa, ["-sigopt", "rsa_padding_mode:pss"])), /RSASSA-PSS/);
    assertCsrError(() => verifyCsr(opensslCsr(generateKeyPairSync("ec", { namedCurve: "P-521" }).privateKey, [])), /P-521/);
    assertCsrError(() => verifyCsr(opensslCsr(generateKeyPairSync("ed25519").privateKey, [])), /Ed25519/);
  });

  test("non-DNS subject alternative names and too many names", async () => {
    const rsa = generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey;
    assertCsrError(() => verifyCsr(opensslCsr(rsa, [], "DNS:box.boxcert.test,IP:10.0.0.1")), /iPAddress/);
    assertCsrError(() => verifyCsr(opensslCsr(rsa, [], "DNS:box.boxcert.test,email:a@b.c")), /rfc822Name/);
    const many = Array.from({ length: MAX_CSR_NAMES + 1 }, (_, i) => `n${i}.boxcert.test`);
    assertCsrError(() => verifyCsr(opensslCsr(rsa, [], many.map((n) => `DNS:${n}`).join(","))), new RegExp(`more than ${MAX_CSR_NAMES} names`));
    assert.equal(verifyCsr(opensslCsr(rsa, [], many.slice(1).map((n) => `DNS:${n}`).join(","))).names.length, MAX_CSR_NAMES);
    assertCsrError(() => verifyCsr(opensslCsr(rsa, [], "DNS:bad_name.boxcert.test")), /not a valid DNS name/);
  });
});

describe("verifyCsr never throws anything but CsrError", () => {
  const onlyCsrError = (input: Buffer): void => {
    try {
      verifyCsr(input);
    } catch (err) {
      if (!(err instanceof CsrError)) throw err;
    }
  };

  test("on random bytes", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 700 }), fc.boolean(), (bytes, sequence) => {
        const input = Buffer.from(bytes);
        if (sequence && input.length > 0) input[0] = 0x30; // get past the first check more often
        onlyCsrError(input);
      }),
      { numRuns: 3000 },
    );
  });

  test("on randomly mutated valid CSRs", async () => {
    const samples = [(await makeCsr("p256", NAMES)).der, (await makeCsr("rsa2048", NAMES)).der];
    const mutation = fc.oneof(
      fc.record({ kind: fc.constant("set" as const), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }),
      fc.record({ kind: fc.constant("flip" as const), at: fc.nat(), value: fc.integer({ min: 0, max: 7 }) }),
      fc.record({ kind: fc.constant("delete" as const), at: fc.nat(), value: fc.integer({ min: 1, max: 8 }) }),
      fc.record({ kind: fc.constant("insert" as const), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }),
    );
    fc.assert(
      fc.property(fc.constantFrom(...samples), fc.array(mutation, { minLength: 1, maxLength: 4 }), (sample, mutations) => {
        let der = Buffer.from(sample);
        for (const { kind, at, value } of mutations) {
          const i = at % der.length;
          if (kind === "set") der[i] = value;
          else if (kind === "flip") der[i]! ^= 1 << value;
          else if (kind === "delete") der = Buffer.concat([der.subarray(0, i), der.subarray(i + value)]);
          else der = Buffer.concat([der.subarray(0, i), Buffer.from([value]), der.subarray(i)]);
          if (der.length === 0) return;
        }
        onlyCsrError(der);
      }),
      { numRuns: 4000 },
    );
  });
});
