/**
 * `npm run bench -- storm`: a renewal storm. N boxes (BENCH_STORM_N, 20,000) are enrolled and each holds a
 * certificate; then all renew at once, each with a new key's CSR, over keep-alive HTTPS from a client
 * limited to BENCH_STORM_SOCKETS (512) connections. Two setups, in one run:
 *   a: one issuer process on SQLite, serving HTTPS itself;
 *   b: two issuer processes on PostgreSQL behind HAProxy (deploy/haproxy/boxcert-issuer.cfg, TLS at HAProxy).
 * Embedded CA. A `busy` (503) or 429 answer is sent again after its Retry-After times BENCH_STORM_RETRY_SCALE
 * (0.1: 5 s become 0.5 s, so a run stays short; a box waits the full Retry-After, plus up to a fifth) and
 * counted. Keys, CSRs and signed bodies are made before the timed part by helper processes (one per core;
 * bench/storm-child.ts), which also run the load generator, in a process of its own. The identity keys are
 * made once and kept in a temporary folder for the second setup; the boxes are enrolled in the store
 * directly, and get their first certificate over HTTP (the warm-up). Reference: raw ECDSA P-256
 * `crypto.sign` per second on one core, in the same run. docs/benchmarks.md says what it measures.
 */
import { fork, type ChildProcess } from "node:child_process";
import { randomUUID } from "node:crypto";
import { availableParallelism, cpus } from "node:os";
import { readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { CERTIFICATE_PATH, newLabel } from "@boxcert/shared";
import { openStore, RegistryOperations } from "@boxcert/store";
import { makeServerTls, tempDir } from "../test/support/processes.ts";
import { startIssuerProcess, ZONE, type Issuer } from "../test/support/system.ts";
import { startPostgres } from "../test/support/postgres.ts";
import { startHaproxy } from "../test/support/haproxy.ts";
import { rawSignsPerSecond, resultLine } from "./stats.ts";
import type { Ask, BoxSpec, DriveOptions, DriveResult, Identity, Signed } from "./storm-child.ts";

const N = Number(process.env.BENCH_STORM_N ?? 20_000);
const SOCKETS = Number(process.env.BENCH_STORM_SOCKETS ?? 512);
const RETRY_SCALE = Number(process.env.BENCH_STORM_RETRY_SCALE ?? 0.1);
/** BENCH_STORM_SETUPS=a (or b) runs one setup only, for profiling; the result line then has 0 for the other. */
const SETUPS = (process.env.BENCH_STORM_SETUPS ?? "a,b").split(",");
/** Boxes per subscription (each has one database). */
const SUBSCRIPTIONS_OF = 100;
const ISSUER_FLAGS = ["--max-certs-per-week", "1000000", "--log-level", "warning"];
const CHILD = join(import.meta.dirname, "storm-child.ts");
/** BENCH_PROFILE=DIR writes a CPU profile of each issuer process there (node --cpu-prof). */
const NODE_ARGS = process.env.BENCH_PROFILE ? ["--cpu-prof", `--cpu-prof-dir=${process.env.BENCH_PROFILE}`] : [];

class Helper {
  private readonly child: ChildProcess;
  constructor() {
    this.child = fork(CHILD, [], { execArgv: ["--import", "tsx"], serialization: "advanced", stdio: ["ignore", "inherit", "inherit", "ipc"] });
  }
  get pid(): number {
    return this.child.pid!;
  }
  ask<T>(ask: Ask): Promise<T> {
    return new Promise((resolve, reject) => {
      const onExit = (code: number) => reject(new Error(`the storm helper exited with ${code}`));
      this.child.once("exit", onExit);
      this.child.once("message", (answer) => {
        this.child.off("exit", onExit);
        resolve(answer as T);
      });
      this.child.send(ask);
    });
  }
  stop(): void {
    this.child.kill();
  }
}

/** Splits `items` over the helpers, one share each, and joins their answers in order. */
async function shared<I, O>(helpers: Helper[], items: I[], ask: (share: I[]) => Ask): Promise<O[]> {
  const size = Math.ceil(items.length / helpers.length);
  const answers = await Promise.all(helpers.map((h, i) => h.ask<O[]>(ask(items.slice(i * size, (i + 1) * size)))));
  return answers.flat();
}

/** CPU seconds (user + system) of a process, from /proc. */
function cpuSeconds(pid: number): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return 0;
  }
}

/** A process's peak resident set (VmHWM), MiB. */
function peakRssMiB(pid: number): number {
  const match = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return Math.round(Number(match?.[1] ?? 0) / 1024);
}

/** The PostgreSQL server on `port` and its backends (the cluster the bench started). */
function postgresPids(port: number): number[] {
  const pids: Array<{ pid: number; ppid: number; cmd: string }> = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      if (!stat.includes("(postgres)")) continue;
      pids.push({ pid: Number(entry), ppid: Number(stat.split(") ")[1]!.split(" ")[1]), cmd: readFileSync(`/proc/${entry}/cmdline`, "utf8") });
    } catch {
      // gone meanwhile
    }
  }
  const server = pids.find((p) => p.cmd.includes(`-p ${port}`) || p.cmd.includes(`-p\0${port}`));
  return server ? [server.pid, ...pids.filter((p) => p.ppid === server.pid).map((p) => p.pid)] : [];
}

/**
 * Connections the kernel dropped because a listener's accept queue was full (TcpExt ListenDrops, this
 * network namespace, every listener): the client's SYN is then sent again after 1, 3, 7, 15 s.
 */
function listenDrops(): number {
  const [names, values] = readFileSync("/proc/net/netstat", "utf8").split("\n").filter((l) => l.startsWith("TcpExt:"));
  const at = names!.split(" ").indexOf("ListenDrops");
  return at < 0 ? 0 : Number(values!.split(" ")[at]);
}

function percentile(sorted: number[], p: number): number {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]! : 0;
}

interface Target {
  url: string;
  ca: string;
  store: string;
  /** Processes whose CPU and memory are reported, by name. */
  processes: Record<string, number>;
  /** PIDs of the store's server, read when the storm starts and ends (PostgreSQL's backends). */
  storePids?: () => number[];
  stop(): Promise<void>;
}

/** Setup a's worker processes (`--workers`): one per core unless BENCH_STORM_WORKERS says. */
const WORKERS_A = Number(process.env.BENCH_STORM_WORKERS ?? availableParallelism());

/** The child processes of `pid` once there are `count` of them (an issuer's workers). */
async function waitForChildren(pid: number, count: number): Promise<number[]> {
  for (let tries = 0; tries < 300; tries++) {
    const children = readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim().split(/\s+/).filter(Boolean).map(Number);
    if (children.length >= count) return children;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`the issuer ${pid} did not start ${count} workers`);
}

async function setupA(): Promise<Target> {
  const dir = tempDir("boxcert-bench-storm-a-");
  const tls = await makeServerTls(dir);
  // One machine's issuer as it runs by default: a primary and one worker process per core.
  const issuer = await startIssuerProcess({ dir, tls, lifetime: "90d", extra: [...ISSUER_FLAGS, "--workers", String(WORKERS_A)], nodeArgs: NODE_ARGS });
  const primary = issuer.proc.child.pid!;
  const workers = WORKERS_A > 1 ? await waitForChildren(primary, WORKERS_A) : [];
  return {
    url: issuer.url,
    ca: readFileSync(tls.ca, "utf8"),
    store: issuer.store,
    processes: { primary, ...Object.fromEntries(workers.map((pid, i) => [`worker${i + 1}`, pid])) },
    stop: async () => {
      await issuer.proc.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function setupB(): Promise<Target> {
  const pg = await startPostgres();
  const dir = tempDir("boxcert-bench-storm-b-");
  const keysDir = join(dir, "keys");
  const issuers: Issuer[] = [];
  // One after the other: the first makes the CA's keys, the second finds them.
  for (let i = 0; i < 2; i++) issuers.push(await startIssuerProcess({ lifetime: "90d", extra: ["--store", pg.url, "--keys-dir", keysDir, ...ISSUER_FLAGS], nodeArgs: NODE_ARGS }));
  const haproxy = await startHaproxy([new URL(issuers[0]!.url).host, new URL(issuers[1]!.url).host]);
  const port = Number(new URL(pg.url).port);
  return {
    url: haproxy.url,
    ca: readFileSync(haproxy.ca, "utf8"),
    store: pg.url,
    processes: { issuer1: issuers[0]!.proc.child.pid!, issuer2: issuers[1]!.proc.child.pid!, haproxy: haproxy.proc.child.pid! },
    storePids: () => postgresPids(port),
    stop: async () => {
      await haproxy.stop();
      for (const issuer of issuers) await issuer.proc.stop();
      pg.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

interface SetupResult {
  renewalsPerS: number;
  line: string;
  errors: number;
}

function describe(phase: string, r: DriveResult): string {
  const sorted = [...r.latencies].sort((a, b) => a - b);
  return `${phase}: ${r.ok} in ${r.seconds.toFixed(2)} s (${(r.ok / r.seconds).toFixed(0)}/s); latency p50 ${percentile(sorted, 50).toFixed(0)} ms p99 ${percentile(sorted, 99).toFixed(0)} ms; busy ${r.busy}, 429 ${r.limited}, other HTTP ${JSON.stringify(r.otherStatus)}, network ${r.network}, reused ${r.reused}, failed ${r.failed}${r.sample ? ` (e.g. ${r.sample})` : ""}`;
}

async function runSetup(name: string, start: () => Promise<Target>, identitiesFile: string, helpers: Helper[], loader: Helper): Promise<SetupResult> {
  const identities = JSON.parse(readFileSync(identitiesFile, "utf8")) as Identity[];
  const target = await start();
  try {
    // The boxes are enrolled in the store directly, as enrollment leaves them (a label, a seat in their
    // subscription): enrolling 20,000 over HTTP takes a minute per setup and is not what is measured.
    const boxes: BoxSpec[] = [];
    const opened = await openStore(target.store);
    try {
      const registry = new RegistryOperations(opened);
      const perSubscription = SUBSCRIPTIONS_OF;
      const at = new Date().toISOString();
      for (let s = 0; s * perSubscription < N; s++) {
        const code = `STORM-${s}`;
        const dbUuid = randomUUID();
        await registry.addSubscription({ code, state: "in_progress", seats: perSubscription });
        await registry.addDatabase({ uuid: dbUuid, subscription: code, kind: "production" });
        const { id } = await opened.db.selectFrom("databases").select("id").where("uuid", "=", dbUuid).executeTakeFirstOrThrow();
        const share = identities.slice(s * perSubscription, (s + 1) * perSubscription).map((identity) => ({ ...identity, dbUuid, enterpriseCode: code, label: newLabel() }));
        await opened.db
          .insertInto("boxes")
          .values(share.map((box, seat) => ({ database_id: id, identifier: box.identifier, label: box.label, identity_key: box.spki, seat: seat + 1, created_at: at, last_seen_at: at })))
          .execute();
        boxes.push(...share);
      }
    } finally {
      await opened.close();
    }
    const driveOptions = (path: string, requests: Signed[], expect: DriveOptions["expect"]): Ask => ({
      kind: "drive",
      options: { url: target.url, path, ca: target.ca, requests, sockets: SOCKETS, retryScale: RETRY_SCALE, expect },
    });
    const check = (phase: string, r: DriveResult) => {
      console.log(`storm ${name}: ${describe(phase, r)}`);
      if (r.ok !== N) throw new Error(`storm ${name}: ${phase}: ${N - r.ok} of ${N} requests did not succeed`);
    };

    const first = await shared<BoxSpec, Signed>(helpers, boxes, (share) => ({ kind: "bodies", boxes: share, zone: ZONE }));
    check("first certificates", await loader.ask<DriveResult>(driveOptions(CERTIFICATE_PATH, first, "certificate")));

    // The storm: every box at once, each with a new key; bodies signed just before (within the 10 minutes a timestamp is good for).
    const renewals = await shared<BoxSpec, Signed>(helpers, boxes, (share) => ({ kind: "bodies", boxes: share, zone: ZONE }));
    const watched = { ...target.processes };
    const storePids = target.storePids?.() ?? [];
    const cpuBefore = Object.fromEntries(Object.entries(watched).map(([k, pid]) => [k, cpuSeconds(pid)]));
    const storeBefore = new Map(storePids.map((pid) => [pid, cpuSeconds(pid)]));
    const dropsBefore = listenDrops();
    const storm = await loader.ask<DriveResult>(driveOptions(CERTIFICATE_PATH, renewals, "certificate"));
    const drops = listenDrops() - dropsBefore;
    const cpuUse = Object.entries(watched).map(([k, pid]) => `${k} ${(((cpuSeconds(pid) - cpuBefore[k]!) / storm.seconds) * 100).toFixed(0)}%`);
    if (target.storePids) {
      const after = target.storePids();
      const used = after.reduce((sum, pid) => sum + cpuSeconds(pid) - (storeBefore.get(pid) ?? 0), 0);
      cpuUse.push(`postgresql ${((used / storm.seconds) * 100).toFixed(0)}% (${after.length} processes)`);
    }
    cpuUse.push(`load generator ${((storm.clientCpuSeconds / storm.seconds) * 100).toFixed(0)}%`);
    const rss = Object.entries(watched).map(([k, pid]) => `${k} ${peakRssMiB(pid)} MiB`);

    const sorted = [...storm.latencies].sort((a, b) => a - b);
    const renewalsPerS = (storm.ok - storm.reused) / storm.seconds;
    console.log(`storm ${name}: ${describe("renewal storm", storm)}`);
    const slow = (list: number[], ms: number) => list.filter((l) => l > ms).length;
    const fresh = storm.newConnectionLatencies;
    console.log(`storm ${name}: latency p90 ${percentile(sorted, 90).toFixed(0)} ms; over 1 s: ${slow(storm.latencies, 1000)}, over 3 s: ${slow(storm.latencies, 3000)}, over 7 s: ${slow(storm.latencies, 7000)}; on a new connection: ${fresh.length} requests, over 1 s: ${slow(fresh, 1000)}, over 7 s: ${slow(fresh, 7000)}; connections dropped by a full accept queue (ListenDrops) ${drops}`);
    console.log(`storm ${name}: CPU during the storm (of one core): ${cpuUse.join(", ")}; peak RSS (VmHWM): ${rss.join(", ")}`);
    const errors = Object.values(storm.otherStatus).reduce((a, b) => a + b, 0) + storm.network + storm.failed + storm.reused;
    const line = [
      `${name}_p50_ms=${percentile(sorted, 50).toFixed(0)}`,
      `${name}_p99_ms=${percentile(sorted, 99).toFixed(0)}`,
      `${name}_busy=${storm.busy + storm.limited}`,
      `${name}_listen_drops=${drops}`,
      `${name}_errors=${errors}`,
      ...Object.entries(watched).map(([k, pid]) => `${name}_${k}_rss_mib=${peakRssMiB(pid)}`),
    ].join(" ");
    return { renewalsPerS, line, errors };
  } finally {
    await target.stop();
  }
}

export async function benchStorm(): Promise<void> {
  const signs = [rawSignsPerSecond(1000)];
  console.log(`storm: ${N} boxes, ${SOCKETS} client connections, Retry-After x ${RETRY_SCALE}; raw crypto.sign ${signs[0]!.toFixed(0)}/s`);
  const helpers = Array.from({ length: Math.max(1, cpus().length) }, () => new Helper());
  const loader = new Helper();
  const cache = tempDir("boxcert-bench-storm-keys-");
  try {
    const made = performance.now();
    const identities = await shared<number, Identity>(helpers, Array.from({ length: N }, (_, i) => i), (share) => ({ kind: "identities", count: share.length }));
    const identitiesFile = join(cache, "identities.json");
    writeFileSync(identitiesFile, JSON.stringify(identities), { mode: 0o600 });
    console.log(`storm: ${N} identity keys made in ${((performance.now() - made) / 1000).toFixed(1)} s (${helpers.length} processes), kept in ${identitiesFile}`);

    const none: SetupResult = { renewalsPerS: 0, line: "", errors: 0 };
    const a = SETUPS.includes("a") ? await runSetup("a", setupA, identitiesFile, helpers, loader) : none;
    signs.push(rawSignsPerSecond(1000));
    const b = SETUPS.includes("b") ? await runSetup("b", setupB, identitiesFile, helpers, loader) : none;
    signs.push(rawSignsPerSecond(1000));
    const sign = Math.max(...signs);
    const best = b.renewalsPerS > a.renewalsPerS ? { setup: "b", ...b } : { setup: "a", ...a };
    console.log(`storm: raw crypto.sign ${signs.map((s) => s.toFixed(0)).join(", ")}/s (one core; the best is the reference)`);
    const result = resultLine("storm", {
      fleet_1m_seconds: Math.round(1_000_000 / best.renewalsPerS),
      renewals_per_s: Math.round(best.renewalsPerS),
      setup: best.setup,
      sign_per_s: Math.round(sign),
      a_renewals_per_s: Math.round(a.renewalsPerS),
      b_renewals_per_s: Math.round(b.renewalsPerS),
      n: N,
      sockets: SOCKETS,
      ratio: best.renewalsPerS / sign,
    });
    const extra = [a.line, b.line].filter(Boolean).join(" ");
    console.log(`${result} ${extra}`);
  } finally {
    for (const h of [...helpers, loader]) h.stop();
    rmSync(cache, { recursive: true, force: true });
  }
}
