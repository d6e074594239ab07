/**
 * One order for concurrent requests across issuer processes: two issuers (--ca acme) on one store and one
 * Pebble get the same box's same CSR at once; the store lock `box:<label>` makes the second wait, re-read
 * the store and answer the first one's certificate.
 */
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { freePort, startBoxcert, tempDir } from "./support/processes.ts";
import { admin, customer, startIssuerProcess, ZONE, type Issuer } from "./support/system.ts";
import { startPebble } from "./support/pebble.ts";
import { enroll, makeCsr, makeTlsKey, requestCertificate, scriptedBox } from "./support/box-client.ts";
import { certificateNames } from "@boxcert/shared";

const stops: Array<() => Promise<void>> = [];
after(async () => {
  for (const stop of stops.reverse()) await stop();
});

test("two issuer processes, one store, the same CSR at once: one ACME order, the same certificate to both", async () => {
  const dnsPort = await freePort();
  const pebble = await startPebble({ dnsServer: `127.0.0.1:${dnsPort}` });
  stops.push(() => pebble.stop());
  const dir = tempDir("boxcert-issuer-");
  const extra = ["--ca", "acme", "--acme-directory", pebble.directoryUrl, "--acme-ca-bundle", pebble.tls.ca, "--acme-contact", "ops@example.net", "--acme-dns-server", `127.0.0.1:${dnsPort}`];
  // One after the other: the second finds the first's keys and account key.
  const issuers: Issuer[] = [];
  for (let i = 0; i < 2; i++) {
    const issuer = await startIssuerProcess({ dir, extra });
    stops.push(() => issuer.proc.stop());
    issuers.push(issuer);
  }
  const [one, two] = issuers as [Issuer, Issuer];
  assert.equal(one.store, two.store);
  const dns = await startBoxcert(["dns", "--zone", ZONE, "--listen", `127.0.0.1:${dnsPort}`, "--store", one.store], (out) => out.includes("dns listening"));
  stops.push(() => dns.stop());

  const uuid = await customer(one.store, "ACME-LOCK", "in_progress", 2);
  const box = scriptedBox(uuid, "ACME-LOCK");
  const enrolled = await enroll(one.url, box);
  assert.equal(enrolled.status, 200, JSON.stringify(enrolled.json));
  const label = enrolled.json.label as string;
  const csr = await makeCsr(await makeTlsKey(), certificateNames(label, ZONE));

  const answers = await Promise.all([requestCertificate(one.url, box, label, csr), requestCertificate(two.url, box, label, csr)]);
  const logs = `pebble:\n${pebble.output().slice(-2000)}\nissuer 1:\n${one.proc.output().slice(-3000)}\nissuer 2:\n${two.proc.output().slice(-3000)}`;
  for (const answer of answers) assert.equal(answer.status, 200, `${JSON.stringify(answer.json)}\n${logs}`);
  assert.equal(answers[0].json.serial, answers[1].json.serial, logs);
  assert.deepEqual(answers.map((a) => a.json.reused).sort(), [false, true]);

  const certificates = (await admin(one.store, "cert", "list", "--label", label)) as Array<{ serial: string }>;
  assert.deepEqual(certificates.map((c) => c.serial), [answers[0].json.serial]);
  const orders = (one.proc.output() + two.proc.output()).match(/ACME order completed/g) ?? [];
  assert.equal(orders.length, 1, logs);
});
