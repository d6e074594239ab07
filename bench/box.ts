/**
 * `npm run bench -- box`: the compiled box agent (packages/box/dist, as the npm and Debian packages ship it,
 * run by node itself) against a bare `node:https` server (bench/box-bare-server.mjs) on the same certificate,
 * key and TLS policy, in the same run, interleaved (box, bare, box, bare, ...). Each round starts the
 * server, then measures:
 *
 * - cold start: from spawning the process to the first TLS handshake that completes and verifies against
 *   the issuer's root, with the box's name (the box starts on a certificate it already has);
 * - idle memory after start: VmRSS once the server has answered and then stayed idle (BENCH_BOX_SETTLE, 4 s);
 * - TLS handshakes per second: `openssl s_time -new` (full handshakes, no resumption, the chain verified
 *   against the issuer's root), BENCH_BOX_CLIENTS (3) of them at once for BENCH_BOX_SECONDS (3 s), on CPU 0
 *   (the server on CPU 1, with taskset when there are two CPUs; BENCH_BOX_PIN=0 turns that off). OpenSSL's
 *   client costs a third of what node's does per handshake, so three of them keep the server busy: what is
 *   measured is the server, not the client (a node client measured its own cost: both servers tied). The
 *   server's CPU time per handshake is printed too. A round needs at least 1,000 handshakes;
 * - idle memory after those handshakes: VmRSS after the same settling time.
 *
 * The medians over BENCH_BOX_ROUNDS (5) make the `result:` line: memory_ratio is the larger of the two
 * memory ratios (after start, after handshakes), box over bare; start_ratio box over bare (lower is
 * better); handshake_ratio box over bare (higher is better). Targets (issue 12): memory at most 1.3, start
 * at most 1.5, handshakes at least 0.95.
 *
 * The box is paired with a database (an HTTPS server in this process) and gets its certificate from a test
 * issuer (packages/box/test/helpers/test-issuer.ts) before the rounds, so each round's start reads a saved
 * certificate; both stay up, as they would for a box in a shop. `npm run build` runs first.
 * BENCH_PROFILE=DIR writes a CPU profile of each box process there (--cpu-prof: it slows the start);
 * BENCH_KEEP=1 keeps the temporary folder (the box's data folder with its certificate) and prints its path.
 */
import { connect as tlsConnect } from "node:tls";
import { execFile, spawnSync } from "node:child_process";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Server } from "node:https";
import type { AddressInfo } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { tlsServerOptions } from "@boxcert/shared";
import { startTestIssuer, type TestIssuer } from "../packages/box/test/helpers/test-issuer.ts";
import { freePort, makeServerTls, ROOT, spawnProcess, tempDir, type Proc } from "../test/support/processes.ts";
import { median, resultLine } from "./stats.ts";
import { CLIENT_CPU, cpuSeconds, pairedDataDir, pinned, pinning, residentMiB, SERVER_CPU, splitHttpsPem, startDatabase, waitUntilServing, ZONE } from "./box-fixture.ts";

const ROUNDS = Number(process.env.BENCH_BOX_ROUNDS ?? 5);
const CLIENTS = Number(process.env.BENCH_BOX_CLIENTS ?? 3);
const SECONDS = Number(process.env.BENCH_BOX_SECONDS ?? 3);
const MIN_HANDSHAKES = 1000;
const SETTLE_MS = Number(process.env.BENCH_BOX_SETTLE ?? 4) * 1000;
const PIN = pinning(process.env.BENCH_BOX_PIN);
const BOX_BUNDLE = join(ROOT, "packages/box/dist/boxcert-box.js");
const BARE_SERVER = join(ROOT, "bench/box-bare-server.mjs");

interface Target {
  /** The certificate's name, and the root that verifies its chain. */
  servername: string;
  ca: string;
}

interface Contender {
  name: "box" | "bare";
  port: number;
  start(): Proc;
}

interface Round {
  startMs: number;
  idleMiB: number;
  handshakesPerSecond: number;
  serverCpuUs: number;
  afterMiB: number;
}

/** One full TLS handshake, verified (the default: rejectUnauthorized), then closed. */
function handshake(port: number, target: Target): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host: "127.0.0.1", port, servername: target.servername, ca: target.ca }, () => {
      socket.destroy();
      resolve();
    });
    socket.once("error", (err) => {
      socket.destroy();
      reject(err);
    });
  });
}

/** Milliseconds from spawning the server to its first verified handshake. */
async function coldStart(server: Contender, target: Target): Promise<{ proc: Proc; ms: number }> {
  const started = performance.now();
  const proc = server.start();
  for (;;) {
    if (proc.child.exitCode !== null) throw new Error(`${server.name} exited with ${proc.child.exitCode}:\n${proc.output()}`);
    try {
      await handshake(server.port, target);
      return { proc, ms: performance.now() - started };
    } catch {
      await sleep(2);
    }
    if (performance.now() - started > 30_000) throw new Error(`${server.name}: no verified handshake within 30 s:\n${proc.output()}`);
  }
}

/** One `openssl s_time -new` for SECONDS: the handshakes it completed. */
function sTime(port: number, caFile: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const argv = pinned(PIN, CLIENT_CPU, ["openssl", "s_time", "-connect", `127.0.0.1:${port}`, "-new", "-time", String(SECONDS), "-CAfile", caFile, "-verify", "2"]);
    execFile(argv[0]!, argv.slice(1), (err, stdout) => {
      const done = /(\d+) connections in [\d.]+s/.exec(stdout);
      if (err || !done) return reject(new Error(`openssl s_time: ${err?.message ?? stdout}`));
      resolve(Number(done[1]));
    });
  });
}

/** CLIENTS s_time processes at once: the handshakes they completed, and the rate over the wall time. */
async function handshakes(port: number, caFile: string): Promise<{ count: number; perSecond: number }> {
  const started = performance.now();
  const counts = await Promise.all(Array.from({ length: CLIENTS }, () => sTime(port, caFile)));
  const count = counts.reduce((a, b) => a + b, 0);
  return { count, perSecond: (count * 1000) / (performance.now() - started) };
}

async function round(server: Contender, target: Target, caFile: string): Promise<Round> {
  const { proc, ms } = await coldStart(server, target);
  try {
    await sleep(SETTLE_MS);
    const pid = proc.child.pid!;
    const idleMiB = residentMiB(pid);
    const cpuBefore = cpuSeconds(pid);
    const done = await handshakes(server.port, caFile);
    if (done.count < MIN_HANDSHAKES) throw new Error(`${server.name}: only ${done.count} handshakes in ${SECONDS} s (at least ${MIN_HANDSHAKES} wanted): raise BENCH_BOX_SECONDS`);
    const serverCpuUs = ((cpuSeconds(pid) - cpuBefore) * 1e6) / done.count;
    await sleep(SETTLE_MS);
    return { startMs: ms, idleMiB, handshakesPerSecond: done.perSecond, serverCpuUs, afterMiB: residentMiB(pid) };
  } finally {
    await proc.stop();
  }
}

function formatRound(n: number, name: string, r: Round): string {
  return (
    `round ${n} ${name.padEnd(4)} start ${r.startMs.toFixed(0).padStart(5)} ms  idle ${r.idleMiB.toFixed(1).padStart(6)} MiB  ` +
    `${r.handshakesPerSecond.toFixed(0).padStart(5)} handshakes/s (server CPU ${r.serverCpuUs.toFixed(0)} us each)  after ${r.afterMiB.toFixed(1).padStart(6)} MiB`
  );
}

export async function benchBox(): Promise<void> {
  const built = spawnSync(process.execPath, ["--import", "tsx", join(ROOT, "scripts/build.ts")], { cwd: ROOT, stdio: "inherit" });
  if (built.status !== 0) throw new Error("npm run build failed");
  if (PIN) spawnSync("taskset", ["-pc", CLIENT_CPU, String(process.pid)], { stdio: "ignore" });

  const dir = tempDir("boxcert-bench-box-");
  let issuer: TestIssuer | undefined;
  let database: Server | undefined;
  try {
    mkdirSync(join(dir, "database"));
    const databaseTls = await makeServerTls(join(dir, "database"));
    database = await startDatabase(databaseTls);
    const databaseOrigin = `https://127.0.0.1:${(database.address() as AddressInfo).port}`;
    issuer = await startTestIssuer({ zone: ZONE });
    const issuerRoot = join(dir, "issuer-root.pem");
    writeFileSync(issuerRoot, issuer.ca.pem);
    const boxDir = join(dir, "box");
    await pairedDataDir(boxDir, databaseOrigin);
    const ports = { http: await freePort(), https: await freePort(), bare: await freePort() };
    const profile = process.env.BENCH_PROFILE ? ["--cpu-prof", `--cpu-prof-dir=${process.env.BENCH_PROFILE}`] : [];
    const boxArgv = pinned(PIN, SERVER_CPU, [
      process.execPath, ...profile, BOX_BUNDLE, "box", "--data-dir", boxDir, "--issuer", issuer.url, "--issuer-ca", issuerRoot, "--database-ca", databaseTls.ca,
      "--http-port", String(ports.http), "--https-port", String(ports.https), "--ip", "127.0.0.1", "--listen-host", "127.0.0.1",
    ]);
    const startBox = () => spawnProcess(boxArgv[0]!, boxArgv.slice(1), { cwd: ROOT });

    // The first start gets the certificate (and registers); the rounds start on it.
    const first = startBox();
    const status = await waitUntilServing(first, ports.http)
      .catch((err: Error) => {
        throw new Error(`${err.message}\n${first.output()}`);
      })
      .finally(() => first.stop());
    const servername = new URL(status.httpsUrl!).hostname;
    const { keyFile, chainFile } = splitHttpsPem(boxDir, dir);
    const { cert: _cert, key: _key, ...policy } = tlsServerOptions("", "");
    const bareArgv = pinned(PIN, SERVER_CPU, [process.execPath, BARE_SERVER, String(ports.bare), keyFile, chainFile, JSON.stringify(policy)]);
    const servers: Contender[] = [
      { name: "box", port: ports.https, start: startBox },
      { name: "bare", port: ports.bare, start: () => spawnProcess(bareArgv[0]!, bareArgv.slice(1), { cwd: ROOT }) },
    ];
    const target: Target = { servername, ca: issuer.ca.pem };

    console.log(
      `node ${process.version}; box: ${BOX_BUNDLE} (node, no tsx); bare: ${BARE_SERVER}; ${ROUNDS} rounds; full handshakes from ${CLIENTS} openssl s_time ` +
        `for ${SECONDS} s; ${SETTLE_MS / 1000} s idle before each memory reading` +
        (PIN ? `; servers on CPU ${SERVER_CPU}, this client on CPU ${CLIENT_CPU} (taskset)` : "; not pinned"),
    );
    const rounds = new Map<string, Round[]>(servers.map((s) => [s.name, []]));
    for (let n = 1; n <= ROUNDS; n++) {
      for (const server of servers) {
        const r = await round(server, target, issuerRoot);
        rounds.get(server.name)!.push(r);
        console.log(formatRound(n, server.name, r));
      }
    }

    const med = (name: string, key: keyof Round) => median(rounds.get(name)!.map((r) => r[key]));
    console.log("");
    for (const { name } of servers) {
      console.log(
        `median ${name.padEnd(4)} start ${med(name, "startMs").toFixed(0)} ms, idle ${med(name, "idleMiB").toFixed(1)} MiB, ` +
          `${med(name, "handshakesPerSecond").toFixed(0)} handshakes/s (server CPU ${med(name, "serverCpuUs").toFixed(0)} us each), after ${med(name, "afterMiB").toFixed(1)} MiB`,
      );
    }
    const memoryRatio = Math.max(med("box", "idleMiB") / med("bare", "idleMiB"), med("box", "afterMiB") / med("bare", "afterMiB"));
    console.log(
      resultLine("box", {
        memory_ratio: memoryRatio.toFixed(3),
        start_ratio: (med("box", "startMs") / med("bare", "startMs")).toFixed(3),
        handshake_ratio: (med("box", "handshakesPerSecond") / med("bare", "handshakesPerSecond")).toFixed(3),
        box_idle_mib: med("box", "idleMiB"),
        bare_idle_mib: med("bare", "idleMiB"),
        box_after_mib: med("box", "afterMiB"),
        bare_after_mib: med("bare", "afterMiB"),
      }),
    );
  } finally {
    await issuer?.close();
    await new Promise((resolve) => (database ? database.close(resolve) : resolve(undefined)));
    if (process.env.BENCH_KEEP) console.log(`kept ${dir}`);
    else rmSync(dir, { recursive: true, force: true });
  }
}
