/**
 * The ACME path with real processes: box → issuer (--ca acme) → Pebble → boxcert dns (DNS-01 over TCP) →
 * the box serves a certificate of Pebble's, carrying its own key; and a CA that is down reaches the box as
 * a 503 it recovers from.
 */
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { X509Certificate, createPrivateKey } from "node:crypto";
import { ZONE } from "./support/system.ts";
import { startPebble } from "./support/pebble.ts";
import { leafPem, servedChain, startAcmeSystem, type AcmeSystem } from "./support/acme-system.ts";
import { openStore, ZoneRecords } from "@boxcert/store";

const stops: Array<() => Promise<void>> = [];
after(async () => {
  for (const stop of stops.reverse()) await stop();
});

async function acmeSystem(): Promise<AcmeSystem> {
  const system = await startAcmeSystem();
  stops.push(() => system.stop());
  return system;
}

async function challengesLeft(store: string): Promise<number> {
  const opened = await openStore(store);
  try {
    return (await new ZoneRecords(opened.db).listChallenges()).length;
  } finally {
    await opened.close();
  }
}

test("box → issuer --ca acme → Pebble → dns: a Pebble certificate with the box's key, served and verified", async () => {
  const system = await acmeSystem();
  const box = await system.box("ACME-1");
  const status = await box.until("a certificate from Pebble", (s) => s.certificate.status !== "missing" && s.certificate.status !== "renewing", 60_000);
  assert.equal(status.certificate.status, "ok", `${JSON.stringify(status.certificate)}\n${system.output(box)}`);
  const host = new URL(status.httpsUrl!).hostname;
  const label = host.split(".")[1]!;
  assert.deepEqual([...status.certificate.names!].sort(), [`*.${label}.${ZONE}`, `${label}.${ZONE}`].sort());

  const pem = readFileSync(join(box.dataDir, "https.pem"), "utf8");
  const leaf = new X509Certificate(leafPem(pem));
  assert.ok(leaf.checkPrivateKey(createPrivateKey(pem)), "the leaf certifies the box's own key");
  assert.ok(leaf.checkIssued(new X509Certificate(system.pebble.intermediatePem)), "issued by Pebble's intermediate");

  const served = await servedChain(box.httpsPort, host, [system.pebble.rootPem, system.pebble.intermediatePem]);
  assert.equal(served.serialNumber, leaf.serialNumber);
  assert.equal(await challengesLeft(system.issuer.store), 0, "no challenge value stays in the store");
  assert.match(system.issuer.proc.output(), /ACME order completed/);
});

test("Pebble stopped: the box shows ERR_IOT_HTTPS_LOAD_REQUEST_STATUS 503; Pebble back (new roots, forgotten account): the next check works", async () => {
  const system = await acmeSystem();
  // A first box registers the issuer's account with this Pebble.
  const first = await system.box("ACME-2");
  const ok = await first.until("the first box's certificate", (s) => s.certificate.status !== "missing" && s.certificate.status !== "renewing", 60_000);
  assert.equal(ok.certificate.status, "ok", `${JSON.stringify(ok.certificate)}\n${system.output(first)}`);

  await system.pebble.stop();
  const box = await system.box("ACME-3");
  const down = await box.until("the 503", (s) => s.certificate.errorCode !== null, 60_000);
  assert.equal(down.certificate.errorCode, "ERR_IOT_HTTPS_LOAD_REQUEST_STATUS 503", `${JSON.stringify(down.certificate)}\n${system.output(box)}`);
  assert.equal(await challengesLeft(system.issuer.store), 0);

  const again = await startPebble({ dnsServer: `127.0.0.1:${system.dnsPort}`, ports: system.pebble.ports, tls: system.pebble.tls });
  stops.push(() => again.stop());
  assert.notEqual(again.rootPem, system.pebble.rootPem, "a restarted Pebble has new roots");
  await box.checkAgain();
  const status = await box.until("a certificate from the restarted Pebble", (s) => s.certificate.status === "ok", 60_000);
  const host = new URL(status.httpsUrl!).hostname;
  await servedChain(box.httpsPort, host, [again.rootPem, again.intermediatePem]);
  assert.match(system.issuer.proc.output(), /registering again/);
  assert.equal(await challengesLeft(system.issuer.store), 0);
});
