/**
 * ACME with several directories and external account binding, against Debian's Pebble requiring EAB: the
 * first directory is down, the second (Pebble, with the EAB key) issues; the box's HTTPS verifies with curl
 * against Pebble's root. Without the binding, the CA's refusal reaches the box as the page describes it.
 */
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { boxcert, freePort, tempDir } from "./support/processes.ts";
import { startAcmeSystem, leafPem, type AcmeSystem } from "./support/acme-system.ts";
import { ZONE } from "./support/system.ts";

const run = promisify(execFile);
const systems: AcmeSystem[] = [];
after(async () => {
  for (const system of systems) await system.stop();
});

const KID = "boxcert-test-kid";
const HMAC = randomBytes(32).toString("base64url");

test("EAB required: a down directory first, then Pebble with the binding; curl verifies the box against Pebble's root", async () => {
  const dir = tempDir("boxcert-eab-");
  const hmacFile = join(dir, "eab.hmac");
  writeFileSync(hmacFile, `${HMAC}\n`, { mode: 0o600 });
  const closedPort = await freePort();
  const system = await startAcmeSystem({
    pebble: { eab: { [KID]: HMAC } },
    acmeFlags: (pebble) => ["--acme-directory", `https://127.0.0.1:${closedPort}/dir`, "--acme-directory", pebble.directoryUrl, "--acme-eab-kid", KID, "--acme-eab-hmac-file", hmacFile],
  });
  systems.push(system);
  const box = await system.box("EAB-1");
  const status = await box.until("a certificate from Pebble", (s) => s.certificate.status !== "missing" && s.certificate.status !== "renewing", 60_000);
  assert.equal(status.certificate.status, "ok", `${JSON.stringify(status.certificate)}\n${system.output(box)}`);
  const out = system.issuer.proc.output();
  assert.match(out, /ACME directory failed: trying the next/);
  assert.match(out, new RegExp(`"eab":"${KID}"`), "the account was registered with the binding");
  assert.doesNotMatch(out, new RegExp(HMAC), "the HMAC key is never logged");

  // curl, as an installer would check it: the name resolved to the box, Pebble's root trusted.
  const url = new URL(status.httpsUrl!);
  const rootFile = join(dir, "pebble-root.pem");
  writeFileSync(rootFile, system.pebble.rootPem);
  const { stdout } = await run("curl", ["--silent", "--show-error", "--fail", "--cacert", rootFile, "--resolve", `${url.hostname}:${box.httpsPort}:127.0.0.1`, `https://${url.hostname}:${box.httpsPort}/api/ping`, "--write-out", "\\n%{ssl_verify_result}"]);
  const [body, verify] = stdout.trim().split("\n");
  assert.deepEqual(JSON.parse(body!), { ok: true });
  assert.equal(verify, "0", "curl verified the chain");
  const served = readFileSync(join(box.dataDir, "https.pem"), "utf8");
  assert.ok(leafPem(served).length > 0);
});

test("EAB required but not given: the CA's refusal reaches the box as ERR_IOT_HTTPS_LOAD_REQUEST_STATUS 502 with the reason", async () => {
  const system = await startAcmeSystem({ pebble: { eab: { [KID]: HMAC } } });
  systems.push(system);
  assert.match(system.issuer.proc.output(), /requires external account binding/);
  const box = await system.box("EAB-2");
  const status = await box.until("the refusal", (s) => s.certificate.errorCode !== null, 60_000);
  assert.equal(status.certificate.errorCode, "ERR_IOT_HTTPS_LOAD_REQUEST_STATUS 502", `${JSON.stringify(status.certificate)}\n${system.output(box)}`);
  assert.match(status.certificate.detail ?? "", /externalAccountRequired/);
});

test("issuer flags: an EAB key without its directory, or half a binding, is refused at start", async () => {
  const dir = tempDir("boxcert-eab-flags-");
  const store = join(dir, "registry.sqlite");
  const base = ["issuer", "--zone", ZONE, "--store", store, "--plain-http", "--ca", "acme", "--acme-dns-server", "127.0.0.1:53"];
  const before = await boxcert([...base, "--acme-eab-kid", KID, "--acme-directory", "https://127.0.0.1:1/dir"]);
  assert.notEqual(before.code, 0);
  assert.match(before.stderr, /--acme-eab-kid goes after the --acme-directory it is for/);
  const half = await boxcert([...base, "--acme-directory", "https://127.0.0.1:1/dir", "--acme-eab-kid", KID]);
  assert.notEqual(half.code, 0);
  assert.match(half.stderr, /--acme-eab-kid and --acme-eab-hmac .* go together/);
  const badKey = await boxcert([...base, "--acme-directory", "https://127.0.0.1:1/dir", "--acme-eab-kid", KID, "--acme-eab-hmac", "short"]);
  assert.notEqual(badKey.code, 0);
  assert.match(badKey.stderr, /EAB HMAC key is base64url, at least 16 bytes/);
});
