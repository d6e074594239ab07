import { test, describe, afterEach } from "node:test";
import assert from "node:assert/strict";
import { X509Certificate as NodeX509Certificate, createHash, webcrypto } from "node:crypto";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { mkdtemp, readFile, readdir, rm, stat, unlink, writeFile, copyFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import * as x509 from "@peculiar/x509";
import { verifyCsr } from "../src/csr.ts";
import { EMBEDDED_CA_FOLDER, EmbeddedCa, EmbeddedCaError } from "../src/embedded-ca.ts";

const NAMES = ["*.abcdefghijklmnop.boxcert.test", "abcdefghijklmnop.boxcert.test"];
const KEY_FILES = ["root.key", "intermediate.key"];
const CERTIFICATE_FILES = ["root.pem", "intermediate.pem"];
const YEAR_MS = 365.25 * 86_400_000;

const folders: string[] = [];
async function keysDir(): Promise<string> {
  const folder = await mkdtemp(join(tmpdir(), "boxcert-ca-"));
  folders.push(folder);
  return folder;
}
afterEach(async () => {
  for (const folder of folders.splice(0)) await rm(folder, { recursive: true, force: true });
});

/** Every file under a folder with its mode and content, to prove a failed load changed nothing. */
async function snapshot(folder: string): Promise<Record<string, string>> {
  const result: Record<string, string> = {};
  for (const entry of await readdir(folder, { recursive: true, withFileTypes: true })) {
    const path = join(entry.parentPath ?? entry.path, entry.name);
    const info = await stat(path);
    result[path] = `${(info.mode & 0o777).toString(8)} ${entry.isFile() ? createHash("sha256").update(await readFile(path)).digest("hex") : "dir"}`;
  }
  return result;
}

async function rejectsWith(promise: Promise<unknown>, pattern: RegExp): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof EmbeddedCaError, `expected an EmbeddedCaError, got ${String(err)}`);
    assert.match(err.message, pattern);
    return true;
  });
}

describe("EmbeddedCa.loadOrCreate", () => {
  test("creates a root and an intermediate on first call, keys 0600 in a 0700 folder", async () => {
    const dir = await keysDir();
    const now = new Date("2030-01-15T10:00:00Z");
    const ca = await EmbeddedCa.loadOrCreate(dir, { now: () => now });
    const folder = join(dir, EMBEDDED_CA_FOLDER);
    assert.equal((await stat(folder)).mode & 0o777, 0o700);
    assert.deepEqual((await readdir(folder)).sort(), [...CERTIFICATE_FILES, ...KEY_FILES].sort());
    for (const file of KEY_FILES) {
      assert.equal((await stat(join(folder, file))).mode & 0o777, 0o600, file);
      assert.match(await readFile(join(folder, file), "utf8"), /^-----BEGIN PRIVATE KEY-----\n/);
    }
    assert.deepEqual(await readdir(dir), [EMBEDDED_CA_FOLDER], "no temporary folder is left behind");

    const root = new x509.X509Certificate(ca.rootPem());
    const intermediate = new x509.X509Certificate(ca.intermediatePem());
    assert.match(root.subject, /^CN=boxcert embedded root CA [0-9a-f]{8}$/);
    assert.equal(root.issuer, root.subject);
    assert.equal(intermediate.issuer, root.subject);
    assert.ok(await root.verify({ signatureOnly: true }, webcrypto));
    assert.ok(await intermediate.verify({ publicKey: root.publicKey, signatureOnly: true }, webcrypto));
    const rootBasic = root.getExtension(x509.BasicConstraintsExtension)!;
    assert.equal(rootBasic.ca, true);
    const basic = intermediate.getExtension(x509.BasicConstraintsExtension)!;
    assert.deepEqual([basic.ca, basic.pathLength, basic.critical], [true, 0, true]);
    const usage = intermediate.getExtension(x509.KeyUsagesExtension)!;
    assert.equal(usage.usages, x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign);
    assert.equal(usage.critical, true);
    assert.deepEqual(root.publicKey.algorithm, { name: "ECDSA", namedCurve: "P-256" });
    assert.deepEqual(intermediate.publicKey.algorithm, { name: "ECDSA", namedCurve: "P-256" });
    assert.ok(Math.abs(root.notAfter.getTime() - now.getTime() - 10 * YEAR_MS) < 2 * 86_400_000);
    assert.ok(Math.abs(intermediate.notAfter.getTime() - now.getTime() - 5 * YEAR_MS) < 2 * 86_400_000);
    assert.ok(intermediate.notBefore <= now && root.notBefore <= now);
    assert.equal(
      intermediate.getExtension(x509.AuthorityKeyIdentifierExtension)!.keyId,
      root.getExtension(x509.SubjectKeyIdentifierExtension)!.keyId,
    );
  });

  test("a second call loads the same CA; another installation gets another one", async () => {
    const dir = await keysDir();
    const first = await EmbeddedCa.loadOrCreate(dir);
    const before = await snapshot(dir);
    const second = await EmbeddedCa.loadOrCreate(dir);
    assert.equal(second.rootPem(), first.rootPem());
    assert.equal(second.intermediatePem(), first.intermediatePem());
    assert.deepEqual(await snapshot(dir), before);
    const other = await EmbeddedCa.loadOrCreate(await keysDir());
    assert.notEqual(new x509.X509Certificate(other.rootPem()).subject, new x509.X509Certificate(first.rootPem()).subject);
  });

  test("concurrent calls on an empty folder end with one CA", async () => {
    const dir = await keysDir();
    const cas = await Promise.all(Array.from({ length: 4 }, () => EmbeddedCa.loadOrCreate(dir)));
    for (const ca of cas) assert.equal(ca.rootPem(), cas[0]!.rootPem());
    for (const ca of cas) assert.equal(ca.intermediatePem(), cas[0]!.intermediatePem());
    assert.deepEqual(await readdir(dir), [EMBEDDED_CA_FOLDER], "the losers' temporary folders are removed");
  });

  test("two issuer processes starting at once end with one CA", async () => {
    const dir = await keysDir();
    const module = fileURLToPath(new URL("../src/embedded-ca.ts", import.meta.url));
    const script = `const { EmbeddedCa } = await import(${JSON.stringify(module)});
      const ca = await EmbeddedCa.loadOrCreate(${JSON.stringify(dir)});
      process.stdout.write(ca.rootPem());`;
    const run = () => promisify(execFile)(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script]);
    const outputs = await Promise.all([run(), run(), run()]);
    const roots = outputs.map((o) => o.stdout);
    assert.match(roots[0]!, /BEGIN CERTIFICATE/);
    assert.deepEqual(roots, [roots[0], roots[0], roots[0]]);
    assert.equal((await EmbeddedCa.loadOrCreate(dir)).rootPem(), roots[0]);
    assert.deepEqual(await readdir(dir), [EMBEDDED_CA_FOLDER]);
  });

  test("a corrupt root.key is a clear error and nothing is touched", async () => {
    const dir = await keysDir();
    await EmbeddedCa.loadOrCreate(dir);
    const rootKey = join(dir, EMBEDDED_CA_FOLDER, "root.key");
    await writeFile(rootKey, "-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n", { mode: 0o600 });
    const before = await snapshot(dir);
    await rejectsWith(EmbeddedCa.loadOrCreate(dir), /root\.key is not a readable PEM private key/);
    assert.deepEqual(await snapshot(dir), before);
  });

  test("a key that is not its certificate's, a missing file and a corrupt certificate are clear errors", async () => {
    const dir = await keysDir();
    await EmbeddedCa.loadOrCreate(dir);
    const folder = join(dir, EMBEDDED_CA_FOLDER);
    await copyFile(join(folder, "root.key"), join(folder, "intermediate.key"));
    let before = await snapshot(dir);
    await rejectsWith(EmbeddedCa.loadOrCreate(dir), /intermediate\.key does not match .*intermediate\.pem/);
    assert.deepEqual(await snapshot(dir), before);

    await unlink(join(folder, "intermediate.key"));
    before = await snapshot(dir);
    await rejectsWith(EmbeddedCa.loadOrCreate(dir), /cannot read .*intermediate\.key.*incomplete/);
    assert.deepEqual(await snapshot(dir), before, "an incomplete CA is never silently re-created");

    const other = await keysDir();
    await EmbeddedCa.loadOrCreate(other);
    await writeFile(join(other, EMBEDDED_CA_FOLDER, "intermediate.pem"), "garbage");
    await rejectsWith(EmbeddedCa.loadOrCreate(other), /intermediate\.pem is not a readable PEM certificate/);
  });

  test("an intermediate from another installation's root is refused", async () => {
    const [a, b] = [await keysDir(), await keysDir()];
    await EmbeddedCa.loadOrCreate(a);
    await EmbeddedCa.loadOrCreate(b);
    for (const file of ["intermediate.pem", "intermediate.key"]) await copyFile(join(b, EMBEDDED_CA_FOLDER, file), join(a, EMBEDDED_CA_FOLDER, file));
    await rejectsWith(EmbeddedCa.loadOrCreate(a), /intermediate\.pem is not issued by .*root\.pem/);
  });
});

describe("EmbeddedCa.issue", () => {
  test("returns leaf + intermediate (no root), the serial and the validity", async () => {
    const ca = await EmbeddedCa.loadOrCreate(await keysDir());
    assert.equal(ca.name, "embedded");
    const algorithm = { name: "ECDSA", namedCurve: "P-256" };
    const keys = (await webcrypto.subtle.generateKey(algorithm, true, ["sign", "verify"])) as webcrypto.CryptoKeyPair;
    const request = await x509.Pkcs10CertificateRequestGenerator.create(
      {
        name: "CN=box",
        keys,
        signingAlgorithm: { ...algorithm, hash: "SHA-256" },
        extensions: [new x509.SubjectAlternativeNameExtension(NAMES.map((value) => ({ type: "dns" as const, value })))],
      },
      webcrypto,
    );
    const csr = verifyCsr(request.toString("pem"));
    const now = new Date();
    const issued = await ca.issue({ label: "abcdefghijklmnop", zone: "boxcert.test", names: NAMES, csr, lifetimeMs: 30 * 86_400_000, now });

    const pems = issued.chainPem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n/g)!;
    assert.equal(pems.length, 2);
    assert.equal(pems.join(""), issued.chainPem);
    assert.equal(pems[1], ca.intermediatePem());
    const leaf = new NodeX509Certificate(pems[0]!);
    const intermediate = new NodeX509Certificate(ca.intermediatePem());
    const root = new NodeX509Certificate(ca.rootPem());
    assert.ok(leaf.verify(intermediate.publicKey) && leaf.checkIssued(intermediate));
    assert.ok(intermediate.verify(root.publicKey));
    assert.equal(leaf.serialNumber.toLowerCase(), issued.serial);
    assert.equal(new Date(leaf.validFrom).getTime(), issued.notBefore.getTime());
    assert.equal(new Date(leaf.validTo).getTime(), issued.notAfter.getTime());
    assert.ok(issued.notBefore < now && now.getTime() - issued.notBefore.getTime() <= 61_000);
    assert.equal(leaf.subjectAltName, NAMES.map((n) => `DNS:${n}`).join(", "));
    assert.deepEqual(leaf.publicKey.export({ type: "spki", format: "der" }), csr.publicKeySpkiDer);
  });
});
