import { test } from "node:test";
import assert from "node:assert/strict";
import { readFile, readdir, stat, writeFile, mkdir } from "node:fs/promises";
import { generateKeyPairSync } from "node:crypto";
import { CERTIFICATE_PATH, certificateNames } from "@boxcert/shared";
import { dataPaths, ensureDataDir } from "../src/data-dir.ts";
import { ConfigError, loadOrCreateConfig, readConfig, updateConfig } from "../src/config.ts";
import { loadOrCreateIdentity } from "../src/certificate/identity.ts";
import { formatCertificateFile, parseCertificateFile, readCertificateFile } from "../src/certificate/certificate-file.ts";
import { newTlsKey, pendingTlsKey, tlsKeyFromPem } from "../src/certificate/tls-key.ts";
import { RotatingFile } from "../src/logs.ts";
import { issueLeaf, makeCa, readCsr } from "./helpers/pki.ts";
import { startTestIssuer } from "./helpers/test-issuer.ts";
import { connectedDir, startBox, tempDir } from "./helpers/fixture.ts";

const mode = async (path: string): Promise<number> => (await stat(path)).mode & 0o777;

test("config, identity and https.pem are 0600 in a 0700 folder, and the secret is never logged", async (t) => {
  const issuer = await startTestIssuer();
  const temp = await connectedDir();
  t.after(() => issuer.close());
  t.after(temp.cleanup);
  const { box, paths, stop } = await startBox({ issuerUrl: issuer.url }, temp.dir);
  try {
    const status = await box.checkNow();
    assert.equal(status.certificate.status, "ok", JSON.stringify(status.certificate));
    assert.equal(await mode(paths.dir), 0o700);
    assert.equal(await mode(paths.logs), 0o700);
    for (const file of [paths.config, paths.identityKey, paths.https, paths.log]) assert.equal(await mode(file), 0o600, file);
    await assert.rejects(stat(paths.pendingKey), { code: "ENOENT" });
    const leftovers = (await readdir(paths.dir)).filter((name) => name.endsWith(".tmp"));
    assert.deepEqual(leftovers, []);
  } finally {
    await stop();
  }
  const log = await readFile(dataPaths(temp.dir).log, "utf8");
  assert.ok(log.includes("certificate_saved"));
  assert.ok(!log.includes("SECRET-CODE-42"), "the subscription code is in the log");
  assert.ok(!log.includes("PRIVATE KEY"), "a key is in the log");
});

test("config writes are atomic renames and keep the identifier", async (t) => {
  const temp = await tempDir();
  t.after(temp.cleanup);
  const paths = dataPaths(temp.dir);
  await ensureDataDir(paths);
  const first = await loadOrCreateConfig(paths, "shop-1");
  const inode = (await stat(paths.config)).ino;
  const updated = await updateConfig(paths, { server: "https://erp.example/" });
  assert.equal(updated.identifier, first.identifier);
  assert.notEqual((await stat(paths.config)).ino, inode, "written in place, not renamed");
  assert.equal((await loadOrCreateConfig(paths)).identifier, first.identifier);
  assert.deepEqual((await readdir(paths.dir)).filter((n) => n.endsWith(".tmp")), []);
});

test("a config file that is not JSON is a clear start-up error and is left as it was", async (t) => {
  const issuer = await startTestIssuer();
  const temp = await tempDir();
  t.after(() => issuer.close());
  t.after(temp.cleanup);
  const paths = dataPaths(temp.dir);
  await mkdir(paths.dir, { recursive: true });
  await writeFile(paths.config, '{"identifier": "x", ');
  await assert.rejects(readConfig(paths), (err: Error) => err instanceof ConfigError && err.message.includes(paths.config) && /not valid JSON/.test(err.message));
  await assert.rejects(startBox({ issuerUrl: issuer.url }, temp.dir), (err: Error) => err.message.includes(paths.config));
  assert.equal(await readFile(paths.config, "utf8"), '{"identifier": "x", ');
  await writeFile(paths.config, JSON.stringify({ identifier: "x", server: 42 }));
  await assert.rejects(readConfig(paths), /"server" must be a non-empty string/);
});

test("an identity key that cannot be parsed is an error, never replaced", async (t) => {
  const temp = await tempDir();
  t.after(temp.cleanup);
  const paths = dataPaths(temp.dir);
  await ensureDataDir(paths);
  const identity = await loadOrCreateIdentity(paths);
  assert.equal((await loadOrCreateIdentity(paths)).publicKey, identity.publicKey);
  await writeFile(paths.identityKey, "garbage");
  await assert.rejects(loadOrCreateIdentity(paths), (err: Error) => err.message.includes(paths.identityKey));
  assert.equal(await readFile(paths.identityKey, "utf8"), "garbage");
});

for (const [what, content] of [
  ["garbage", async () => "not a certificate at all"],
  [
    "a key that does not match its certificate",
    async () => {
      const ca = await makeCa("Other CA");
      const leaf = await issueLeaf(ca, { publicKey: generateKeyPairSync("ec", { namedCurve: "P-256" }).publicKey, names: ["x.test"] });
      return formatCertificateFile(newTlsKey(), leaf, Date.now() + 1000);
    },
  ],
] as const) {
  test(`https.pem with ${what}: CERT_READ_EXCEPTION, file untouched, no request`, async (t) => {
    const issuer = await startTestIssuer();
    const temp = await connectedDir();
    t.after(() => issuer.close());
    t.after(temp.cleanup);
    const paths = dataPaths(temp.dir);
    const text = await content();
    await writeFile(paths.https, text, { mode: 0o600 });
    const { box, stop } = await startBox({ issuerUrl: issuer.url }, temp.dir);
    try {
      const status = await box.checkNow();
      assert.equal(status.certificate.errorCode, "ERR_IOT_HTTPS_CHECK_CERT_READ_EXCEPTION");
      assert.equal(status.certificate.status, "error");
      assert.ok(status.certificate.detail?.includes(paths.https), status.certificate.detail ?? "");
      assert.equal(status.httpsUrl, null);
      assert.equal(await readFile(paths.https, "utf8"), text);
      assert.equal(issuer.requests.length, 0);
    } finally {
      await stop();
    }
  });
}

test("https.pem round trip: key, chain and renew-after", async () => {
  const ca = await makeCa("RT CA");
  const key = newTlsKey();
  const names = certificateNames("abcdefghijklmnop", "boxcert.test");
  const leaf = await issueLeaf(ca, { publicKey: key.privateKey, names });
  const renewAfter = Date.parse("2030-01-02T03:04:05.006Z");
  const stored = parseCertificateFile(formatCertificateFile(key, leaf + ca.pem, renewAfter));
  assert.deepEqual(stored.info.names, names);
  assert.equal(stored.info.subject, names[0]);
  assert.equal(stored.info.issuer, "RT CA");
  assert.equal(stored.info.renewAfter, renewAfter);
  assert.ok(stored.key.spki.equals(key.spki));
  assert.equal(stored.chainPem, leaf + ca.pem);
});

test("a pending key is reused by the next attempt until its certificate is saved", async (t) => {
  const issuer = await startTestIssuer();
  const temp = await connectedDir();
  t.after(() => issuer.close());
  t.after(temp.cleanup);
  const paths = dataPaths(temp.dir);
  // The first certificate request is lost (as if the box crashed while asking).
  issuer.override = (path) => (path === CERTIFICATE_PATH ? { status: 0, hangUp: true } : null);
  const { box, stop } = await startBox({ issuerUrl: issuer.url }, temp.dir);
  try {
    const failed = await box.checkNow();
    assert.equal(failed.certificate.errorCode, "ERR_IOT_HTTPS_LOAD_REQUEST_EXCEPTION");
    assert.equal(await mode(paths.pendingKey), 0o600);
    const pending = tlsKeyFromPem(await readFile(paths.pendingKey, "utf8"));
    issuer.override = null;
    const ok = await box.checkNow();
    assert.equal(ok.certificate.status, "ok");
    const csrs = issuer.requests.filter((r) => r.path === CERTIFICATE_PATH);
    assert.equal(csrs.length, 2);
    for (const r of csrs) assert.ok((await readCsr(r.body.csr as string)).spki.equals(pending.spki), "a new key was made");
    const saved = await readCertificateFile(paths.https);
    assert.ok(saved.kind === "present" && saved.certificate.key.spki.equals(pending.spki));
    await assert.rejects(stat(paths.pendingKey), { code: "ENOENT" });
  } finally {
    await stop();
  }
});

test("a pending key equal to the saved one (crash after saving) is not reused", async (t) => {
  const temp = await tempDir();
  t.after(temp.cleanup);
  const paths = dataPaths(temp.dir);
  await ensureDataDir(paths);
  const key = newTlsKey();
  await writeFile(paths.pendingKey, key.pem, { mode: 0o600 });
  const next = await pendingTlsKey(paths, key.spki);
  assert.equal(next.reused, false);
  assert.ok(!next.key.spki.equals(key.spki));
  assert.ok((await pendingTlsKey(paths, key.spki)).key.spki.equals(next.key.spki), "the new pending key is reused");
});

test("logs rotate by size and keep three old files", async (t) => {
  const temp = await tempDir();
  t.after(temp.cleanup);
  const path = `${temp.dir}/box.log`;
  const file = new RotatingFile(path, 100, 3);
  for (let i = 0; i < 20; i++) file.write(`${String(i).padStart(2, "0")} ${"x".repeat(40)}\n`);
  file.close();
  assert.deepEqual((await readdir(temp.dir)).sort(), ["box.log", "box.log.1", "box.log.2", "box.log.3"]);
  for (const name of ["box.log", "box.log.1", "box.log.2", "box.log.3"]) assert.ok((await stat(`${temp.dir}/${name}`)).size <= 100);
  assert.ok((await readFile(path, "utf8")).startsWith("18 "));
  assert.equal(await mode(path), 0o600);
});
