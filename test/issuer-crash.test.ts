/**
 * An issuer killed with SIGKILL (kill -9: no finally, no cleanup) in the middle of an ACME order and in the
 * middle of a stream of embedded-CA issuances. After the next start: no challenge value is left in the zone,
 * the store is intact (every row whole, every certificate a box was given is there), and each box's next
 * try succeeds at once (the killed holder's per-box lock is seen gone, not waited out).
 */
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import Database from "better-sqlite3";
import { certificateNames } from "@boxcert/shared";
import { openStore, ZoneRecords } from "@boxcert/store";
import { freePort, portOpen, startBoxcert, tempDir, waitFor, type Proc } from "./support/processes.ts";
import { admin, customer, startIssuerProcess, ZONE, type Issuer } from "./support/system.ts";
import { startPebble } from "./support/pebble.ts";
import { enroll, makeCsr, makeTlsKey, requestCertificate, scriptedBox, type Answer, type ScriptedBox } from "./support/box-client.ts";

const stops: Array<() => Promise<void>> = [];
after(async () => {
  for (const stop of stops.reverse()) await stop();
});

function kill9(proc: Proc): Promise<void> {
  return new Promise((resolve) => {
    proc.child.once("exit", () => resolve());
    proc.child.kill("SIGKILL");
  });
}

/** The same issuer again, on the same folder (store and keys), on its own port. */
async function restart(dir: string, extra: string[]): Promise<Issuer> {
  const issuer = await startIssuerProcess({ dir, extra });
  stops.push(() => issuer.proc.stop());
  return issuer;
}

test("SIGKILL in the middle of an ACME order: no TXT left after the next start, the box's next try succeeds at once", async () => {
  const dnsPort = await freePort();
  const pebble = await startPebble({ dnsServer: `127.0.0.1:${dnsPort}` });
  stops.push(() => pebble.stop());
  const dir = tempDir("boxcert-crash-acme-");
  const extra = ["--ca", "acme", "--acme-directory", pebble.directoryUrl, "--acme-ca-bundle", pebble.tls.ca, "--acme-dns-server", `127.0.0.1:${dnsPort}`];
  const first = await restart(dir, extra);
  const dns = await startBoxcert(["dns", "--zone", ZONE, "--listen", `127.0.0.1:${dnsPort}`, "--store", first.store], (out) => out.includes("dns listening"));
  stops.push(() => dns.stop());
  const store = await openStore(first.store);
  stops.push(() => store.close());
  const zone = new ZoneRecords(store.db);

  const uuid = await customer(first.store, "CRASH-ACME", "in_progress", 1);
  const box = scriptedBox(uuid, "CRASH-ACME");
  const enrolled = await enroll(first.url, box);
  assert.equal(enrolled.status, 200, JSON.stringify(enrolled.json));
  const label = enrolled.json.label as string;
  const csr = await makeCsr(await makeTlsKey(), certificateNames(label, ZONE));

  // The order is under way once its challenge value is in the store: kill the issuer there.
  const interrupted = requestCertificate(first.url, box, label, csr).catch((err: Error) => err);
  await waitFor("the order's challenge value in the store", async () => (await zone.listChallenges()).length > 0, 30_000, 5);
  await kill9(first.proc);
  assert.ok((await interrupted) instanceof Error, "the interrupted request got no answer");
  assert.ok((await zone.listChallenges()).length >= 1, "the killed order left its values behind");
  const held = await store.db.selectFrom("locks").selectAll().execute();
  assert.equal(held.length, 1, "and its per-box lock");

  const second = await restart(dir, extra);
  assert.deepEqual(await zone.listChallenges(), [], `no challenge value after the next start\n${second.proc.output()}`);
  assert.match(second.proc.output(), /removed challenge values left by an earlier run/);

  const started = Date.now();
  const retried = await requestCertificate(second.url, box, label, csr);
  assert.equal(retried.status, 200, `${JSON.stringify(retried.json)}\n${second.proc.output().slice(-3000)}`);
  assert.ok(Date.now() - started < 30_000, "the killed holder's lock was not waited out (two minutes)");
  const stored = (await admin(second.store, "cert", "list", "--label", label)) as Array<{ serial: string }>;
  assert.deepEqual(stored.map((c) => c.serial), [retried.json.serial]);
  assert.deepEqual(await zone.listChallenges(), [], "the successful order removed its own values");
  assert.deepEqual(await store.db.selectFrom("locks").selectAll().execute(), [], "and released its lock");
});

test("SIGKILL during a stream of issuances: the store is whole, every certificate given is stored, every box's next try succeeds", async () => {
  const dir = tempDir("boxcert-crash-embedded-");
  const extra = ["--max-certs-per-week", "1000"];
  const first = await restart(dir, extra);
  const uuid = await customer(first.store, "CRASH-EMBEDDED", "in_progress", 40);
  const boxes: Array<{ box: ScriptedBox; label: string; names: string[] }> = [];
  for (let i = 0; i < 40; i++) {
    const box = scriptedBox(uuid, "CRASH-EMBEDDED");
    const enrolled = await enroll(first.url, box);
    assert.equal(enrolled.status, 200, JSON.stringify(enrolled.json));
    const label = enrolled.json.label as string;
    boxes.push({ box, label, names: certificateNames(label, ZONE) });
  }

  // Every box asks again and again, each time with a new key, until the issuer dies under them.
  const given: string[] = [];
  let dead = false;
  const loops = boxes.map(async ({ box, label, names }) => {
    while (!dead) {
      let answer: Answer;
      try {
        answer = await requestCertificate(first.url, box, label, await makeCsr(await makeTlsKey(), names));
      } catch {
        return;
      }
      if (answer.status === 200) given.push(answer.json.serial as string);
    }
  });
  await waitFor("a few hundred certificates", async () => given.length >= 300, 60_000, 5);
  await new Promise((resolve) => setTimeout(resolve, Math.random() * 50));
  await kill9(first.proc);
  dead = true;
  await Promise.all(loops);
  assert.ok(!(await portOpen(Number(new URL(first.url).port))), "the issuer is dead");

  const db = new Database(first.store, { readonly: true });
  try {
    assert.equal(db.pragma("integrity_check", { simple: true }), "ok");
    const rows = db.prepare("SELECT serial, chain_pem FROM certificates").all() as Array<{ serial: string; chain_pem: string }>;
    const serials = new Set(rows.map((r) => r.serial));
    for (const serial of given) assert.ok(serials.has(serial), `certificate ${serial} was given to a box but is not in the store`);
    for (const row of rows) {
      const leaf = new X509Certificate(row.chain_pem);
      assert.equal(leaf.serialNumber.toLowerCase().replace(/^0+/, ""), row.serial.replace(/^0+/, ""), "a whole row: its chain is its certificate");
    }
  } finally {
    db.close();
  }

  const second = await restart(dir, extra);
  const again = await Promise.all(boxes.map(async ({ box, label, names }) => (await requestCertificate(second.url, box, label, await makeCsr(await makeTlsKey(), names))).status));
  assert.deepEqual(again, Array(40).fill(200));
});
