/**
 * A fleet as deployed: one PostgreSQL, two `boxcert issuer` processes on it (one shared --keys-dir) behind
 * HAProxy running deploy/haproxy/boxcert-issuer.cfg (TLS ends there), and two `boxcert dns` processes on
 * the same store; the last test adds two issuers ordering from Pebble (ACME) behind another HAProxy. Boxes speak to HAProxy only; HAProxy sends each box's requests to one issuer (by the
 * identifier in the signed body), so round robin between issuers is seen across boxes.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createSocket } from "node:dgram";
import { randomBytes, X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import { Agent, request } from "node:https";
import { join } from "node:path";
import * as dnsPacket from "dns-packet";
import { certificateNames, CERTIFICATE_PATH, ENROLL_PATH, SIGNATURE_HEADER } from "@boxcert/shared";
import { openStore, ZoneRecords } from "@boxcert/store";
import { freePort, startBoxcert, tempDir, type Proc } from "./support/processes.ts";
import { admin, customer, startIssuerProcess, ZONE, type Issuer } from "./support/system.ts";
import { startPostgres, type Postgres } from "./support/postgres.ts";
import { startHaproxy, type Haproxy } from "./support/haproxy.ts";
import { startPebble } from "./support/pebble.ts";
import { credentials, makeCsr, makeTlsKey, requestCertificate, scriptedBox, signBody, type ScriptedBox } from "./support/box-client.ts";

const stops: Array<() => Promise<void> | void> = [];
after(async () => {
  for (const stop of stops.reverse()) await stop();
});

interface Fleet {
  pg: Postgres;
  issuers: [Issuer, Issuer];
  haproxy: Haproxy;
  dnsPorts: [number, number];
  dns: Proc[];
  agent: Agent;
}

let fleet: Fleet;

before(async () => {
  const pg = await startPostgres();
  stops.push(() => pg.stop());
  const keysDir = join(tempDir("boxcert-fleet-keys-"), "keys");
  const issuers: Issuer[] = [];
  // One after the other: the first makes the CA's keys, the second finds them.
  for (let i = 0; i < 2; i++) {
    const issuer = await startIssuerProcess({ extra: ["--store", pg.url, "--keys-dir", keysDir] });
    stops.push(() => issuer.proc.stop());
    issuers.push({ ...issuer, store: pg.url, keysDir });
  }
  const haproxy = await startHaproxy(issuers.map((i) => new URL(i.url).host) as [string, string]);
  stops.push(() => haproxy.stop());
  const dnsPorts = [await freePort(), await freePort()] as [number, number];
  const dns: Proc[] = [];
  for (const port of dnsPorts) {
    const proc = await startBoxcert(["dns", "--zone", ZONE, "--listen", `127.0.0.1:${port}`, "--store", pg.url], (out) => out.includes("dns listening"));
    stops.push(() => proc.stop());
    dns.push(proc);
  }
  const agent = new Agent({ keepAlive: true, maxSockets: 64, ca: readFileSync(haproxy.ca) });
  stops.push(() => agent.destroy());
  fleet = { pg, issuers: issuers as [Issuer, Issuer], haproxy, dnsPorts, dns, agent };
});

interface Answer {
  status: number;
  json: Record<string, unknown>;
}

/** Where boxes connect: an HAProxy, and an agent trusting its certificate. */
interface Front {
  url: string;
  agent: Agent;
}

/** A signed POST to HAProxy over HTTPS (its CA trusted), as a box sends it. */
function post(path: string, box: ScriptedBox, body: string, front: Front = { url: fleet.haproxy.url, agent: fleet.agent }): Promise<Answer> {
  const url = new URL(front.url);
  return new Promise((resolve, reject) => {
    const req = request(
      { host: url.hostname, port: url.port, path, method: "POST", agent: front.agent, headers: { "content-type": "application/json", "content-length": Buffer.byteLength(body), [SIGNATURE_HEADER]: signBody(box, body) } },
      (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (d: string) => (text += d));
        res.on("end", () => {
          let json: Record<string, unknown>;
          try {
            json = JSON.parse(text) as Record<string, unknown>;
          } catch {
            json = { raw: text };
          }
          resolve({ status: res.statusCode ?? 0, json });
        });
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

const enroll = (box: ScriptedBox, front?: Front) => post(ENROLL_PATH, box, JSON.stringify(credentials(box)), front);
const certificate = (box: ScriptedBox, label: string, csr: string, front?: Front) => post(CERTIFICATE_PATH, box, JSON.stringify({ ...credentials(box), label, csr }), front);

/** The same request straight to one issuer (plain HTTP), past HAProxy. */
async function certificateDirect(issuerUrl: string, box: ScriptedBox, label: string, csr: string): Promise<Answer> {
  const answer = await requestCertificate(issuerUrl, box, label, csr);
  return { status: answer.status, json: answer.json };
}

/** One UDP question to a dns process; the answer's records of that type. */
function ask(port: number, name: string, type: "A" | "TXT"): Promise<dnsPacket.Answer[]> {
  return new Promise((resolve, reject) => {
    const socket = createSocket("udp4");
    const timer = setTimeout(() => {
      socket.close();
      reject(new Error(`no answer from 127.0.0.1:${port} for ${type} ${name}`));
    }, 1000);
    socket.on("message", (message) => {
      clearTimeout(timer);
      socket.close();
      resolve((dnsPacket.decode(message).answers ?? []).filter((a) => a.type === type));
    });
    socket.send(dnsPacket.encode({ type: "query", id: randomBytes(2).readUInt16BE(), flags: 0, questions: [{ type, name }] }), port, "127.0.0.1");
  });
}

/** Polls every dns process (every 20 ms) until `served` holds on each; the milliseconds each took from `since`. */
async function untilServed(name: string, type: "A" | "TXT", served: (answers: dnsPacket.Answer[]) => boolean, since: number): Promise<number[]> {
  return Promise.all(
    fleet.dnsPorts.map(async (port) => {
      for (;;) {
        if (served(await ask(port, name, type))) return performance.now() - since;
        if (performance.now() - since > 10_000) throw new Error(`dns on ${port} did not serve ${type} ${name} within 10 s`);
        await new Promise((r) => setTimeout(r, 20));
      }
    }),
  );
}

function txtValues(answers: dnsPacket.Answer[]): string[] {
  return answers.flatMap((a) => ((a as dnsPacket.TxtAnswer).data as Buffer[]).map((b) => b.toString()));
}

/** The chain (leaf first) verifies up to the embedded CA's root, one link at a time. */
function assertChainToRoot(chainPem: string, root: X509Certificate): X509Certificate {
  const certs = chainPem.match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g)!.map((p) => new X509Certificate(p));
  assert.ok(certs.length >= 1);
  for (let i = 0; i < certs.length; i++) {
    const issuer = certs[i + 1] ?? root;
    assert.ok(certs[i]!.checkIssued(issuer) && certs[i]!.verify(issuer.publicKey), `certificate ${i} (${certs[i]!.subject}) is signed by ${issuer.subject}`);
  }
  assert.ok(!certs.some((c) => c.fingerprint256 === root.fingerprint256), "the chain carries no root");
  return certs[0]!;
}

const logs = () => fleet.issuers.map((i, n) => `issuer ${n + 1}:\n${i.proc.output().slice(-3000)}`).join("\n") + `\nhaproxy:\n${fleet.haproxy.proc.output().slice(-2000)}`;

test("boxes through HAProxy: certificates from both issuers, verified against the embedded root; their names on both dns within 1 s", async () => {
  const store = fleet.pg.url;
  const uuid = await customer(store, "FLEET-1", "in_progress", 10);
  const root = new X509Certificate(readFileSync(join(fleet.issuers[0].keysDir, "embedded-ca", "root.pem")));
  const before = await fleet.haproxy.stats();
  const delays: number[] = [];
  const boxes = Array.from({ length: 6 }, () => scriptedBox(uuid, "FLEET-1"));
  const labels: string[] = [];
  for (const box of boxes) {
    const enrolled = await enroll(box);
    const answeredAt = performance.now();
    assert.equal(enrolled.status, 200, `${JSON.stringify(enrolled.json)}\n${logs()}`);
    const label = enrolled.json.label as string;
    labels.push(label);
    // An enrolled box's names answer at once (its certificate is not needed for that).
    const name = `10-1-2-3.${label}.${ZONE}`;
    delays.push(...(await untilServed(name, "A", (answers) => answers.some((a) => (a as dnsPacket.StringAnswer).data === "10.1.2.3"), answeredAt)));
  }
  // Then their certificates.
  for (const [i, box] of boxes.entries()) {
    const label = labels[i]!;
    const csr = await makeCsr(await makeTlsKey(), certificateNames(label, ZONE));
    const issued = await certificate(box, label, csr);
    assert.equal(issued.status, 200, `${JSON.stringify(issued.json)}\n${logs()}`);
    assert.equal(issued.json.reused, false);
    const leaf = assertChainToRoot(issued.json.chain as string, root);
    assert.equal(leaf.serialNumber.toLowerCase(), (issued.json.serial as string).toLowerCase().padStart(leaf.serialNumber.length, "0"));
    assert.deepEqual([...(issued.json.names as string[])].sort(), certificateNames(label, ZONE).sort());
    assert.ok(leaf.checkHost(`10-1-2-3.${label}.${ZONE}`), "the leaf covers the box's address names");
  }
  const after = await fleet.haproxy.stats();
  const served = ["issuer1", "issuer2"].map((s) => after.get(s)!.total - before.get(s)!.total);
  console.log(`fleet: requests per issuer through HAProxy ${served.join(" / ")}; name served by both dns ${delays.map((d) => d.toFixed(0)).join(", ")} ms after the enrollment's answer (max ${Math.max(...delays).toFixed(0)} ms)`);
  assert.equal(served[0]! + served[1]!, 12, `HAProxy sent 12 requests: ${served.join(" / ")}`);
  assert.ok(served.every((n) => n >= 2), `the boxes are spread over both issuers: ${served.join(" / ")}\n${logs()}`);
  // Both processes issued (their own logs say so).
  for (const issuer of fleet.issuers) assert.match(issuer.proc.output(), /certificate issued/, logs());
  assert.ok(Math.max(...delays) < 1000, `each dns answers a new name within 1 s of the enrollment's answer: ${delays.map((d) => d.toFixed(0)).join(", ")} ms`);
});

/** A box holding a certificate, and a new key's CSR for its renewal. */
async function renewingBox(code: string): Promise<{ box: ScriptedBox; label: string; previous: string; csr: string }> {
  const uuid = await customer(fleet.pg.url, code, "in_progress", 1);
  const box = scriptedBox(uuid, code);
  const enrolled = await enroll(box);
  assert.equal(enrolled.status, 200, JSON.stringify(enrolled.json));
  const label = enrolled.json.label as string;
  const first = await certificate(box, label, await makeCsr(await makeTlsKey(), certificateNames(label, ZONE)));
  assert.equal(first.status, 200, JSON.stringify(first.json));
  return { box, label, previous: first.json.serial as string, csr: await makeCsr(await makeTlsKey(), certificateNames(label, ZONE)) };
}

/**
 * The documented behaviour (docs/protocol.md, "Idempotent"): a repeat request with the same public key
 * gets the certificate already issued for it (`reused: true`); exactly one is issued, every answer is 200
 * and carries it.
 */
async function assertOneCertificate(label: string, previous: string, answers: Answer[]): Promise<void> {
  const statuses = new Map<number, number>();
  for (const a of answers) statuses.set(a.status, (statuses.get(a.status) ?? 0) + 1);
  const serials = new Set(answers.map((a) => a.json.serial));
  const fresh = answers.filter((a) => a.json.reused === false).length;
  console.log(`fleet: ${answers.length} at once: statuses ${JSON.stringify(Object.fromEntries(statuses))}; ${serials.size} serial(s) answered, ${fresh} answer(s) reused=false`);
  const certificates = (await admin(fleet.pg.url, "cert", "list", "--label", label)) as Array<{ serial: string }>;
  const newOnes = certificates.map((c) => c.serial).filter((s) => s !== previous);
  assert.deepEqual(answers.map((a) => a.status), answers.map(() => 200), `${JSON.stringify(answers.filter((a) => a.status !== 200).map((a) => a.json))}\n${logs()}`);
  assert.equal(newOnes.length, 1, `one new certificate in the store, not ${newOnes.length} (${newOnes.join(", ")})\n${logs()}`);
  assert.deepEqual([...serials], newOnes, "every answer carries that certificate");
  assert.equal(fresh, 1, "one answer issued it, the others reused it");
}

test("50 requests at once for one box's new key through HAProxy: spread over both issuers, one new certificate, every answer carries it", async () => {
  const { box, label, previous, csr } = await renewingBox("FLEET-2");
  const before = await fleet.haproxy.stats();
  const answers = await Promise.all(Array.from({ length: 50 }, () => certificate(box, label, csr)));
  const after = await fleet.haproxy.stats();
  const served = ["issuer1", "issuer2"].map((s) => after.get(s)!.total - before.get(s)!.total);
  console.log(`fleet: 50 at once through HAProxy: requests per issuer ${served.join(" / ")}`);
  assert.equal(served[0]! + served[1]!, 50, `HAProxy sent the 50: ${served.join(" / ")}`);
  assert.ok(served.every((n) => n >= 10), `round robin spreads one box's requests over both issuers: ${served.join(" / ")}`);
  await assertOneCertificate(label, previous, answers);
});

// Straight to both issuers, without a balancer: the store alone makes one certificate of them.
test("50 requests at once for one box's new key, spread over both issuers directly: one new certificate", async () => {
  const { box, label, previous, csr } = await renewingBox("FLEET-3");
  const answers = await Promise.all(Array.from({ length: 50 }, (_, i) => certificateDirect(fleet.issuers[i % 2]!.url, box, label, csr)));
  await assertOneCertificate(label, previous, answers);
});

test("a TXT value written to the store (ZoneRecords, as the ACME path writes it) is served by both dns within 1 s, and its removal too", async () => {
  // Written through the store, as the ACME path writes it, so that the delay from the write is measured;
  // the last test has an ACME order through HAProxy put its values there.
  const opened = await openStore(fleet.pg.url);
  stops.push(() => opened.close());
  const records = new ZoneRecords(opened.db);
  const uuid = await customer(fleet.pg.url, "FLEET-4", "in_progress", 1);
  const box = scriptedBox(uuid, "FLEET-4");
  const label = (await enroll(box)).json.label as string;
  const name = `_acme-challenge.${label}.${ZONE}`;
  const value = randomBytes(32).toString("base64url");
  const written = performance.now();
  await records.addChallenge(label, value);
  const added = await untilServed(name, "TXT", (answers) => txtValues(answers).includes(value), written);
  const removedAt = performance.now();
  await records.removeChallenge(label, value);
  const removed = await untilServed(name, "TXT", (answers) => !txtValues(answers).includes(value), removedAt);
  console.log(`fleet: TXT served by both dns ${added.map((d) => d.toFixed(0)).join(", ")} ms after the write; gone ${removed.map((d) => d.toFixed(0)).join(", ")} ms after the removal`);
  assert.ok(Math.max(...added, ...removed) < 1000, `within 1 s: ${[...added, ...removed].map((d) => d.toFixed(0)).join(", ")} ms`);
});

test("ACME through HAProxy: two issuers (--ca acme) on the store, Pebble validating; both dns serve the challenge's TXT during the order", async () => {
  const [dns1, dns2] = fleet.dnsPorts.map((p) => `127.0.0.1:${p}`) as [string, string];
  // Pebble asks one of them (its -dnsserver takes one); each issuer waits until both serve every value.
  const pebble = await startPebble({ dnsServer: dns2 });
  stops.push(() => pebble.stop());
  const keysDir = join(tempDir("boxcert-fleet-acme-keys-"), "keys");
  const extra = ["--store", fleet.pg.url, "--keys-dir", keysDir, "--ca", "acme", "--acme-directory", pebble.directoryUrl, "--acme-ca-bundle", pebble.tls.ca, "--acme-contact", "ops@example.net", "--acme-dns-server", dns1, "--acme-dns-server", dns2];
  const issuers: Issuer[] = [];
  for (let i = 0; i < 2; i++) {
    const issuer = await startIssuerProcess({ extra });
    stops.push(() => issuer.proc.stop());
    issuers.push(issuer);
  }
  const haproxy = await startHaproxy(issuers.map((i) => new URL(i.url).host) as [string, string]);
  stops.push(() => haproxy.stop());
  const agent = new Agent({ keepAlive: true, ca: readFileSync(haproxy.ca) });
  stops.push(() => agent.destroy());
  const front = { url: haproxy.url, agent };
  const acmeLogs = () => issuers.map((i, n) => `acme issuer ${n + 1}:\n${i.proc.output().slice(-3000)}`).join("\n") + `\npebble:\n${pebble.output().slice(-2000)}`;

  const uuid = await customer(fleet.pg.url, "FLEET-ACME", "in_progress", 1);
  const box = scriptedBox(uuid, "FLEET-ACME");
  const enrolled = await enroll(box, front);
  assert.equal(enrolled.status, 200, JSON.stringify(enrolled.json));
  const label = enrolled.json.label as string;
  const name = `_acme-challenge.${label}.${ZONE}`;

  // Both dns are asked every 20 ms while the order runs: what each served.
  const seen = fleet.dnsPorts.map(() => new Set<string>());
  let ordering = true;
  const watching = Promise.all(
    fleet.dnsPorts.map(async (port, i) => {
      while (ordering) {
        for (const value of txtValues(await ask(port, name, "TXT").catch(() => []))) seen[i]!.add(value);
        await new Promise((r) => setTimeout(r, 20));
      }
    }),
  );
  const csr = await makeCsr(await makeTlsKey(), certificateNames(label, ZONE));
  let issued: Answer;
  try {
    issued = await certificate(box, label, csr, front);
  } finally {
    ordering = false;
    await watching;
  }
  assert.equal(issued.status, 200, `${JSON.stringify(issued.json)}\n${acmeLogs()}`);
  const leaf = new X509Certificate((issued.json.chain as string).match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/)![0]);
  assert.ok(leaf.checkIssued(new X509Certificate(pebble.intermediatePem)), "issued by Pebble's intermediate");
  assert.equal(issuers.map((i) => i.proc.output().match(/ACME order completed/g)?.length ?? 0).reduce((a, b) => a + b), 1, acmeLogs());
  console.log(`fleet: ACME through HAProxy: TXT values served during the order by dns 1: ${seen[0]!.size}, dns 2: ${seen[1]!.size}`);
  // The wildcard and the bare name: two values, both on both servers.
  assert.equal(seen[0]!.size, 2, `dns 1 served ${[...seen[0]!].join(", ")}`);
  assert.deepEqual([...seen[1]!].sort(), [...seen[0]!].sort(), "both dns served the same values");
  // Removed when the order ended: gone from both within 1 s.
  const gone = await untilServed(name, "TXT", (answers) => txtValues(answers).length === 0, performance.now());
  assert.ok(Math.max(...gone) < 1000, `the values are gone from both dns within 1 s: ${gone.map((d) => d.toFixed(0)).join(", ")} ms`);
});
