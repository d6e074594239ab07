/**
 * `npm run bench -- issue`: certificate issuances per second over keep-alive HTTPS, with concurrent
 * clients, against one issuer process on SQLite; and raw ECDSA P-256 `crypto.sign` per second in the same
 * run, as the reference. Every timed request is a real issuance (a new key each time), signed and checked
 * like a box's. Requests are made before the timed part so the client spends its time sending.
 */
import { Agent, request } from "node:https";
import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";

/** CPU seconds a process (or one of its threads) has used: utime + stime from /proc. */
function cpuSeconds(pid: number, tid?: number): number {
  const fields = readFileSync(tid === undefined ? `/proc/${pid}/stat` : `/proc/${pid}/task/${tid}/stat`, "utf8").split(") ")[1]!.split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100;
}
import { join } from "node:path";
import { CERTIFICATE_PATH, ENROLL_PATH, SIGNATURE_HEADER } from "@boxcert/shared";
import { makeServerTls, tempDir } from "../test/support/processes.ts";
import { admin, startIssuerProcess } from "../test/support/system.ts";
import { credentials, scriptedBox, signBody, type ScriptedBox } from "../test/support/box-client.ts";
import { fastCsrPem } from "./fast-csr.ts";
import { median, rawSignsPerSecond, resultLine } from "./stats.ts";

const BOXES = Number(process.env.BENCH_BOXES ?? 256);
const PER_ROUND = Number(process.env.BENCH_REQUESTS ?? 3000);
const ROUNDS = 3;
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 32);

interface Prepared {
  body: string;
  signature: string;
}

function post(agent: Agent, url: URL, path: string, body: string, signature: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: url.hostname, port: url.port, path, method: "POST", agent, headers: { "content-type": "application/json", "content-length": Buffer.byteLength(body), [SIGNATURE_HEADER]: signature } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString() }));
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

async function drive(agent: Agent, url: URL, work: Prepared[], concurrency: number): Promise<{ seconds: number; failures: number; sample: string }> {
  let next = 0;
  let failures = 0;
  let sample = "";
  const start = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < work.length) {
        const item = work[next++]!;
        const res = await post(agent, url, CERTIFICATE_PATH, item.body, item.signature);
        if (res.status !== 200 || !res.text.includes('"reused":false')) {
          failures++;
          sample ||= `${res.status} ${res.text.slice(0, 200)}`;
        }
      }
    }),
  );
  return { seconds: (performance.now() - start) / 1000, failures, sample };
}

export async function benchIssue(): Promise<void> {
  const dir = tempDir("boxcert-bench-issue-");
  const tls = await makeServerTls(dir);
  const issuer = await startIssuerProcess({ dir, tls, lifetime: "90d", extra: ["--max-certs-per-week", "1000000", "--log-level", "warn"],
    // BENCH_PROFILE=DIR writes a CPU profile of the issuer there.
    nodeArgs: process.env.BENCH_PROFILE ? ["--cpu-prof", `--cpu-prof-dir=${process.env.BENCH_PROFILE}`] : [],
  });
  try {
    const dbUuid = randomUUID();
    await admin(issuer.store, "subscription", "add", "BENCH", "--state", "in_progress", "--seats", String(BOXES));
    await admin(issuer.store, "database", "add", dbUuid, "--subscription", "BENCH");
    const url = new URL(issuer.url);
    const agent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY, ca: readFileSync(tls.ca) });

    const boxes: Array<{ box: ScriptedBox; label: string; names: string[] }> = [];
    for (let i = 0; i < BOXES; i++) {
      const box = scriptedBox(dbUuid, "BENCH");
      const body = JSON.stringify(credentials(box));
      const res = await post(agent, url, ENROLL_PATH, body, signBody(box, body));
      if (res.status !== 200) throw new Error(`enroll failed: ${res.status} ${res.text}`);
      const { label, names } = JSON.parse(res.text) as { label: string; names: string[] };
      boxes.push({ box, label, names });
    }
    const prepare = (n: number): Prepared[] =>
      Array.from({ length: n }, (_, i) => {
        const { box, label, names } = boxes[i % boxes.length]!;
        const body = JSON.stringify({ ...credentials(box), label, csr: fastCsrPem(names) });
        return { body, signature: signBody(box, body) };
      });

    console.log(`issue: ${BOXES} boxes enrolled; warming up`);
    await drive(agent, url, prepare(1000), CONCURRENCY);
    const rates: number[] = [];
    const signs: number[] = [];
    for (let round = 1; round <= ROUNDS; round++) {
      const work = prepare(PER_ROUND);
      signs.push(rawSignsPerSecond(1000));
      const pid = issuer.proc.child.pid!;
      const issuerCpu = cpuSeconds(pid);
      // The main thread's share says whether the event loop bounds the rate (the rest: GC, thread pool, WAL checkpoints).
      const mainCpu = cpuSeconds(pid, pid);
      const clientCpu = process.cpuUsage();
      const { seconds, failures, sample } = await drive(agent, url, work, CONCURRENCY);
      if (failures > 0) throw new Error(`${failures} of ${PER_ROUND} requests failed, e.g. ${sample}`);
      const issuerUs = ((cpuSeconds(pid) - issuerCpu) * 1e6) / PER_ROUND;
      const mainUs = ((cpuSeconds(pid, pid) - mainCpu) * 1e6) / PER_ROUND;
      const used = process.cpuUsage(clientCpu);
      const clientUs = (used.user + used.system) / PER_ROUND;
      rates.push(PER_ROUND / seconds);
      console.log(`issue: round ${round}: ${(PER_ROUND / seconds).toFixed(0)} issuances/s (${PER_ROUND} in ${seconds.toFixed(2)} s, ${CONCURRENCY} clients); issuer CPU ${issuerUs.toFixed(0)} us/issuance (main thread ${mainUs.toFixed(0)}, ${((mainUs * PER_ROUND) / 1e6 / seconds * 100).toFixed(0)}% busy), client CPU ${clientUs.toFixed(0)} us/request; raw crypto.sign ${signs.at(-1)!.toFixed(0)}/s`);
    }
    agent.destroy();
    const issuances = median(rates);
    const sign = median(signs);
    const certs = await admin(issuer.store, "cert", "list") as unknown[];
    console.log(`issue: median ${issuances.toFixed(0)} issuances/s, raw crypto.sign ${sign.toFixed(0)}/s; ${certs.length} certificates in the store (${join(dir, "registry.sqlite")})`);
    console.log(resultLine("issue", { issuances_per_s: Math.round(issuances), sign_per_s: Math.round(sign), clients: CONCURRENCY, ratio: issuances / sign }));
  } finally {
    await issuer.proc.stop();
  }
}
