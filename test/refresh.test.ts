/**
 * The periodic refresh with real processes: a box with a valid certificate asks the issuer again at every
 * periodic check (`--check-interval 10s` here, 6 hours by default). An unrevoked certificate comes back
 * as it is (nothing issued); one an operator revoked with `boxcert admin cert revoke` is replaced and
 * served at the next check; a paused subscription is shown beside the certificate, which stays served.
 */
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { connect as tlsConnect } from "node:tls";
import { tempDir, waitFor } from "./support/processes.ts";
import { admin, connect, customer, startBox, startIssuerProcess, type Box, type BoxStatus } from "./support/system.ts";

const stops: Array<() => Promise<void>> = [];
after(async () => {
  await Promise.all(stops.map((s) => s()));
});

interface CertRow {
  serial: string;
  label: string;
  revokedAt: string | null;
}

/** Serials compared as the registry writes them: lowercase hex, no colons, no leading zeros. */
function normalSerial(serial: string): string {
  return serial.toLowerCase().replaceAll(":", "").replace(/^0+(?=.)/, "");
}

/** The serial of the certificate the box presents to a new TLS connection, verified against `ca`. */
function servedSerial(port: number, servername: string, ca: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host: "127.0.0.1", port, servername, ca }, () => {
      const peer = socket.getPeerX509Certificate();
      socket.end();
      if (!socket.authorized || !peer) reject(new Error(`not authorized: ${socket.authorizationError}`));
      else resolve(normalSerial(peer.serialNumber));
    });
    socket.once("error", reject);
  });
}

type StatusWithChecks = BoxStatus & { lastCheck: string | null };

/** Waits until a check that ended after `since` (ISO) is over, and returns the status after it. */
function nextCheck(box: Box, since: string, what: string, done: (s: BoxStatus) => boolean = () => true): Promise<BoxStatus> {
  return box.until(what, (s) => {
    const last = (s as StatusWithChecks).lastCheck;
    return last !== null && Date.parse(last) > Date.parse(since) && done(s);
  }, 40_000);
}

test("periodic refresh: nothing new for a valid certificate; a revoked one is replaced and served; a pause is shown", async () => {
  const issuer = await startIssuerProcess();
  stops.push(() => issuer.proc.stop());
  const uuid = await customer(issuer.store, "REFRESH-1", "in_progress", 1);
  const dataDir = tempDir("boxcert-box-");
  await connect(dataDir, uuid, "REFRESH-1");
  const box = await startBox({ issuer: issuer.url, dataDir, extra: ["--check-interval", "10s"] });
  stops.push(() => box.proc.stop());

  const first = (await box.until("first certificate", (s) => s.certificate.status === "ok")) as StatusWithChecks;
  const host = new URL(first.httpsUrl!).hostname;
  const ca = readFileSync(join(issuer.keysDir, "embedded-ca", "root.pem"), "utf8");
  const issued = (await admin(issuer.store, "cert", "list")) as CertRow[];
  assert.equal(issued.length, 1);
  const firstSerial = normalSerial(issued[0]!.serial);
  assert.equal(await servedSerial(box.httpsPort, host, ca), firstSerial);
  assert.ok(Date.now() < Date.parse(first.certificate.renewAfter!) - 60_000, "the certificate would be due during the test");

  // The next periodic check asks the issuer, which answers with the same certificate: nothing issued.
  const refreshed = await nextCheck(box, first.lastCheck!, "a periodic refresh");
  assert.equal(refreshed.certificate.status, "ok", refreshed.certificate.detail ?? "");
  assert.match(box.proc.output(), /"event":"certificate_refresh"/);
  assert.match(box.proc.output(), /"event":"certificate_confirmed"/);
  assert.equal(((await admin(issuer.store, "cert", "list")) as CertRow[]).length, 1, "a refresh issued a certificate");
  assert.equal(await servedSerial(box.httpsPort, host, ca), firstSerial);
  assert.equal(refreshed.certificate.notAfter, first.certificate.notAfter);

  // The operator revokes it: the next periodic check gets a new certificate, served at once.
  const revoked = (await admin(issuer.store, "cert", "revoke", issued[0]!.serial)) as CertRow;
  assert.ok(revoked.revokedAt);
  const newSerial = await waitFor(
    "the box to serve a new certificate",
    async () => {
      const serial = await servedSerial(box.httpsPort, host, ca);
      return serial !== firstSerial ? serial : null;
    },
    40_000,
    250,
  ).catch((err: Error) => {
    throw new Error(`${err.message}\nbox output:\n${box.proc.output().slice(-3000)}`);
  });
  const after = (await admin(issuer.store, "cert", "list")) as CertRow[];
  assert.equal(after.length, 2);
  assert.ok(after.find((c) => normalSerial(c.serial) === firstSerial)?.revokedAt, "the first certificate is not revoked");
  const current = after.find((c) => normalSerial(c.serial) === newSerial);
  assert.ok(current, `the served serial ${newSerial} is not in the registry`);
  assert.equal(current.revokedAt, null);
  assert.equal(current.label, issued[0]!.label, "same label, same name");
  const replaced = (await box.until("status after the replacement", (s) => s.certificate.status === "ok")) as StatusWithChecks;
  assert.equal(replaced.httpsUrl, first.httpsUrl);
  assert.match(box.proc.output(), /"event":"certificate_saved"[^\n]*"replaces"/);

  // A paused subscription: the refresh is refused; shown beside the certificate, which stays served.
  await admin(issuer.store, "subscription", "set", "REFRESH-1", "--state", "paused");
  const paused = await nextCheck(box, replaced.lastCheck!, "a refused refresh", (s) => s.certificate.errorCode !== null);
  assert.equal(paused.certificate.status, "renewing");
  assert.equal(paused.certificate.errorCode, "ERR_IOT_HTTPS_LOAD_REQUEST_NO_RESULT");
  assert.match(paused.certificate.detail ?? "", /subscription_not_in_progress/);
  assert.equal(await servedSerial(box.httpsPort, host, ca), newSerial);
  assert.equal(((await admin(issuer.store, "cert", "list")) as CertRow[]).length, 2);
});
