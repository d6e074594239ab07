/**
 * `boxcert issuer --workers N`: a primary and N worker processes share one port. Certificates are issued
 * by several workers at once on one SQLite store; a worker killed with SIGKILL is replaced and the issuer
 * keeps answering; SIGTERM to the primary stops every worker.
 */
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createServer, type AddressInfo } from "node:net";
import { join } from "node:path";
import { certificateNames } from "@boxcert/shared";
import { boxcert, freePort, tempDir, waitFor } from "./support/processes.ts";
import { admin, customer, startIssuerProcess, ZONE } from "./support/system.ts";
import { enroll, makeCsr, makeTlsKey, requestCertificate, scriptedBox } from "./support/box-client.ts";

const stops: Array<() => Promise<void>> = [];
after(async () => {
  for (const stop of stops.reverse()) await stop();
});

/** The pids of a process's children (Linux: /proc/PID/task/*\/children). */
function children(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Enrols `count` boxes and has each ask for a certificate at once; returns the answers' statuses. */
async function certify(url: string, store: string, code: string, count: number): Promise<number[]> {
  const uuid = await customer(store, code, "in_progress", count);
  return Promise.all(
    Array.from({ length: count }, async () => {
      const box = scriptedBox(uuid, code);
      const enrolled = await enroll(url, box);
      assert.equal(enrolled.status, 200, JSON.stringify(enrolled.json));
      const label = enrolled.json.label as string;
      const answer = await requestCertificate(url, box, label, await makeCsr(await makeTlsKey(), certificateNames(label, ZONE)));
      return answer.status;
    }),
  );
}

test("two workers share the port, issue on one store, survive a worker's SIGKILL, and stop with the primary", async () => {
  const metricsPort = await freePort();
  const issuer = await startIssuerProcess({ extra: ["--workers", "2", "--log-level", "debug", "--metrics", `127.0.0.1:${metricsPort}`] });
  stops.push(() => issuer.proc.stop());
  const primary = issuer.proc.child.pid!;
  await waitFor("the primary's issuer listening line", async () => /"msg":"issuer listening"/.test(issuer.proc.output()), 30_000);
  const listening = issuer.proc.output().split("\n").filter((line) => line.includes('"msg":"issuer listening"'));
  assert.equal(listening.length, 1, "one issuer listening line, from the primary");
  assert.match(listening[0]!, /"workers":2/);
  const workers = children(primary);
  assert.equal(workers.length, 2, `two worker processes under the primary: ${workers.join(", ")}`);

  const statuses = await certify(issuer.url, issuer.store, "WORKERS-A", 24);
  assert.deepEqual(statuses, Array(24).fill(200));
  const issuedBy = new Set(
    issuer.proc
      .output()
      .split("\n")
      .filter((line) => line.includes('"msg":"certificate issued"'))
      .map((line) => (JSON.parse(line) as { worker?: number }).worker),
  );
  assert.equal(issuedBy.size, 2, `both workers issued certificates (workers seen: ${[...issuedBy].join(", ")})`);
  const stored = (await admin(issuer.store, "cert", "list")) as unknown[];
  assert.equal(stored.length, 24);

  // One scrape of the primary sums the workers' counters and keeps each worker's own gauges apart.
  const scraped = await waitFor("the primary's metrics endpoint", async () => {
    const res = await fetch(`http://127.0.0.1:${metricsPort}/metrics`).catch(() => null);
    return res?.ok ? res.text() : null;
  });
  const sum = (pattern: RegExp) => [...scraped.matchAll(pattern)].reduce((total, m) => total + Number(m[1]), 0);
  assert.equal(sum(/^boxcert_issuer_certificates_total\{[^}]*reused="false"[^}]*\} (\d+)$/gm), 24, scraped);
  assert.equal(sum(/^boxcert_issuer_requests_total\{route="certificate",outcome="ok"[^}]*\} (\d+)$/gm), 24, scraped);
  const workerLabels = new Set([...scraped.matchAll(/^boxcert_issuer_resident_memory_bytes\{worker="(\d+)"\}/gm)].map((m) => m[1]));
  assert.equal(workerLabels.size, 2, `each worker's memory apart: ${[...workerLabels].join(", ")}`);

  // A worker killed outright: the other goes on answering, and the primary starts a replacement.
  process.kill(workers[0]!, "SIGKILL");
  assert.deepEqual(await certify(issuer.url, issuer.store, "WORKERS-B", 6), Array(6).fill(200));
  const replaced = await waitFor("a replacement worker", async () => {
    const now = children(primary);
    return now.length === 2 && !now.includes(workers[0]!) ? now : null;
  }, 15_000);
  assert.ok(alive(primary), "the primary survived its worker's death");
  assert.match(issuer.proc.output(), /an issuer worker died; starting another/);
  await waitFor("the replacement listening", async () => (issuer.proc.output().match(/"msg":"issuer worker listening"/g)?.length ?? 0) >= 3, 15_000);
  assert.deepEqual(await certify(issuer.url, issuer.store, "WORKERS-C", 6), Array(6).fill(200));

  await issuer.proc.stop();
  assert.equal(issuer.proc.child.exitCode, 0, issuer.proc.output().slice(-2000));
  for (const pid of replaced) assert.ok(!alive(pid), `worker ${pid} stopped with the primary`);
});

test("a worker that cannot listen stops the issuer with its reason, not a restart loop", async () => {
  const taken = createServer();
  await new Promise<void>((resolve) => taken.listen(0, "127.0.0.1", resolve));
  stops.push(() => new Promise<void>((resolve) => taken.close(() => resolve())));
  const port = (taken.address() as AddressInfo).port;
  const dir = tempDir("boxcert-workers-");
  const started = Date.now();
  const result = await boxcert(["issuer", "--zone", ZONE, "--store", join(dir, "registry.sqlite"), "--plain-http", "--listen", `127.0.0.1:${port}`, "--workers", "2"]);
  assert.equal(result.code, 1, result.stderr);
  assert.match(result.stderr + result.stdout, /EADDRINUSE/);
  assert.match(result.stderr, /an issuer worker stopped before it listened/);
  assert.ok(Date.now() - started < 20_000, "it stops at once, without retrying");
});

test("flags that cannot work stop the issuer before any worker starts", async () => {
  const dir = tempDir("boxcert-workers-");
  const result = await boxcert(["issuer", "--zone", ZONE, "--store", join(dir, "registry.sqlite"), "--tls-cert", "/nonexistent/cert.pem", "--tls-key", "/nonexistent/key.pem", "--workers", "2"]);
  assert.equal(result.code, 1);
  assert.match(result.stderr, /reading the issuer's TLS certificate or key/);
});
