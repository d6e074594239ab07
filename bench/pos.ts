/**
 * `npm run bench -- pos`: round trips per second from a POS page in Chromium to its box over HTTPS, through
 * `@boxcert/web` (`box.fetch("api/status")`, one after the other on one keep-alive connection), against the
 * same calls to a bare `node:https` server on the same certificate and key (bench/pos-bare-server.ts), in
 * the same run, interleaved (box, bare, box, bare, ...); the medians make the `result:` line.
 *
 * The route: GET /api/status, the one a POS page calls to show the box and its certificate (the
 * database's POS page, packages/erp/static/pos.js, calls it; POST /api/pos/test is its one-off test).
 *
 * What runs where:
 * - the box is a real `boxcert box` process (not buildBox in this process): the bench process also serves
 *   the page, the test issuer and playwright's pipe, and a box sharing that event loop would be charged
 *   for them; the bare server is a process too, so both have an event loop of their own. With two CPUs or
 *   more both servers run on CPU 1 and Chromium on CPU 0 (taskset; BENCH_POS_PIN=0 turns that off), so the
 *   browser does not compete with the server it measures;
 * - the box gets its certificate from a test issuer (packages/box/test/helpers/test-issuer.ts, a throwaway
 *   root and intermediate) with `--issuer-ca` naming that root, so the chain it saves is verified; it is
 *   paired with the database (config.json's `pairedOrigin`, then its registration, which the database
 *   answers), so it answers the page's origin with CORS as in a shop;
 * - the database is an HTTPS server in this process at https://127.0.0.1:<port> (a certificate for that
 *   address from a throwaway CA): it serves the page, the module as it is, and answers the registration;
 * - Chromium (Debian's, headless, as test/support/browser.ts launches it) trusts both roots in its NSS
 *   database, maps the box's label to 127.0.0.1 (--host-resolver-rules) and counts the page's origin as
 *   public (--ip-address-space-overrides), so Local Network Access applies to the box and is granted, as
 *   in test/web-browser.test.ts. No certificate check is turned off anywhere.
 *
 * BENCH_PROFILE=DIR writes a CPU profile of the box process there.
 * BENCH_POS_ROUNDS (7), BENCH_POS_SECONDS (3 per round and server), BENCH_POS_WARMUP (3 s per server, not counted).
 */
import { request as httpsRequest, type Server } from "node:https";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { AddressInfo } from "node:net";
import { chromium, type Browser, type Page } from "playwright-core";
import { startTestIssuer, type TestIssuer } from "../packages/box/test/helpers/test-issuer.ts";
import { CHROMIUM, CHROMIUM_FLAGS, trustRoot } from "../test/support/browser.ts";
import { ensureDebianPackage, freePort, makeServerTls, ROOT, spawnProcess, tempDir, waitFor, type Proc } from "../test/support/processes.ts";
import { median, resultLine } from "./stats.ts";
import { CLIENT_CPU, cpuSeconds, pairedDataDir, pinned, pinning, SERVER_CPU, splitHttpsPem, startDatabase, waitUntilServing, ZONE } from "./box-fixture.ts";

const ROUNDS = Number(process.env.BENCH_POS_ROUNDS ?? 7);
const ROUND_MS = Number(process.env.BENCH_POS_SECONDS ?? 3) * 1000;
const WARMUP_MS = Number(process.env.BENCH_POS_WARMUP ?? 3) * 1000;
const PIN = pinning(process.env.BENCH_POS_PIN);
const MAIN = join(ROOT, "packages/cli/src/main.ts");
const MODULE = join(ROOT, "packages/web/src/boxcert-web.js");

/**
 * The POS page: imports the module as a browser does and keeps one client per server, so each keeps its
 * connection between rounds. Each call is what pos.js does (no cache, no credentials) and reads the JSON,
 * as a page that shows the status must (a wrong CORS answer makes the fetch itself fail). Written as a string rather than in page.evaluate(): tsx would
 * rename the functions inside (its `__name` helper does not exist in the page).
 */
const POS_PAGE = `<!doctype html><meta charset="utf-8"><title>POS bench</title>
<script type="module">
import { boxClient } from "/boxcert-web.js";
const clients = new Map();
const INIT = { cache: "no-store", credentials: "omit" };
globalThis.connect = async (name, options) => {
  const box = boxClient(options);
  clients.set(name, box);
  return box.reach();
};
globalThis.roundTrips = async (name, ms) => {
  const box = clients.get(name);
  let count = 0;
  const start = performance.now();
  let now = start;
  while (now - start < ms) {
    const res = await box.fetch("api/status", INIT);
    if (res.status !== 200) throw new Error(name + ": HTTP " + res.status);
    await res.json();
    count += 1;
    now = performance.now();
  }
  return { count, ms: now - start };
};
</script>`;

interface Ports {
  http: number;
  https: number;
}

function startBox(dir: string, issuer: TestIssuer, files: { issuerRoot: string; databaseCa: string }, ports: Ports): Proc {
  // BENCH_PROFILE=DIR writes a CPU profile of the box there (when it exits).
  const profile = process.env.BENCH_PROFILE ? ["--cpu-prof", `--cpu-prof-dir=${process.env.BENCH_PROFILE}`] : [];
  const argv = pinned(PIN, SERVER_CPU, [
    process.execPath, ...profile, "--import", "tsx", MAIN, "box",
    "--data-dir", dir, "--issuer", issuer.url, "--issuer-ca", files.issuerRoot, "--database-ca", files.databaseCa,
    "--http-port", String(ports.http), "--https-port", String(ports.https), "--ip", "127.0.0.1", "--listen-host", "127.0.0.1",
  ]);
  return spawnProcess(argv[0]!, argv.slice(1), { cwd: ROOT });
}

/** GET /api/status from the box's HTTPS name with the page's Origin, verified against the issuer's root: the bytes the bare server repeats. */
function statusBytes(httpsUrl: URL, origin: string, ca: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      { host: "127.0.0.1", port: Number(httpsUrl.port), servername: httpsUrl.hostname, path: "/api/status", ca, headers: { host: httpsUrl.host, origin } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => {
          if (res.statusCode !== 200 || res.headers["access-control-allow-origin"] !== origin) {
            return reject(new Error(`the box answered ${res.statusCode} with allow-origin ${res.headers["access-control-allow-origin"]}: not paired with ${origin}?`));
          }
          resolve(Buffer.concat(chunks));
        });
      },
    );
    req.on("error", reject);
    req.end();
  });
}

function startBare(port: number, files: { keyFile: string; chainFile: string; bodyFile: string }, origin: string): Proc {
  const argv = pinned(PIN, SERVER_CPU, [process.execPath, "--import", "tsx", join(ROOT, "bench/pos-bare-server.ts"), String(port), files.keyFile, files.chainFile, files.bodyFile, origin]);
  return spawnProcess(argv[0]!, argv.slice(1), { cwd: ROOT });
}

/** Chromium through taskset, as chromiumIn() in test/support/browser.ts wraps it for a namespace. */
function browserExecutable(dir: string): string {
  if (!PIN) return CHROMIUM;
  const script = join(dir, "chromium");
  writeFileSync(script, `#!/bin/sh\nexec taskset -c ${CLIENT_CPU} ${CHROMIUM} "$@"\n`, { mode: 0o755 });
  return script;
}

async function launchChromium(dir: string, roots: string[], label: string, databasePort: number): Promise<Browser> {
  const home = join(dir, "home");
  mkdirSync(home);
  await trustRoot(home, roots);
  return chromium.launch({
    executablePath: browserExecutable(dir),
    headless: true,
    env: { ...process.env, HOME: home },
    args: [
      ...CHROMIUM_FLAGS,
      `--host-resolver-rules=MAP *.${label}.${ZONE} 127.0.0.1, MAP * ~NOTFOUND, EXCLUDE 127.0.0.1`,
      `--ip-address-space-overrides=127.0.0.1:${databasePort}=public`,
    ],
  });
}

interface Round {
  rps: number;
  latencyUs: number;
  serverCpuUs: number;
}

async function measure(page: Page, name: string, server: Proc, ms: number): Promise<Round> {
  const cpuBefore = cpuSeconds(server.child.pid!);
  const { count, ms: took } = await page.evaluate(([n, d]) => (globalThis as unknown as { roundTrips(n: string, d: number): Promise<{ count: number; ms: number }> }).roundTrips(n, d), [name, ms] as const);
  const cpu = cpuSeconds(server.child.pid!) - cpuBefore;
  return { rps: (count * 1000) / took, latencyUs: (took * 1000) / count, serverCpuUs: (cpu * 1e6) / count };
}

async function connect(page: Page, name: string, options: { httpsUrl: string; ip: string; httpPort: number }): Promise<void> {
  const result = await page.evaluate(([n, o]) => (globalThis as unknown as { connect(n: string, o: unknown): Promise<{ ok: boolean; via?: string; message?: string }> }).connect(n, o), [name, options] as const);
  if (!result.ok || result.via !== "https") throw new Error(`${name}: reach() said ${JSON.stringify(result)}`);
}

function formatRound(round: number, name: string, r: Round): string {
  return `round ${round} ${name.padEnd(4)} ${Math.round(r.rps).toString().padStart(6)} round trips/s  ${Math.round(r.latencyUs).toString().padStart(5)} us each  server CPU ${Math.round(r.serverCpuUs)} us/request`;
}

export async function benchPos(): Promise<void> {
  ensureDebianPackage(CHROMIUM, "chromium");
  ensureDebianPackage("certutil", "libnss3-tools");
  const dir = tempDir("boxcert-bench-pos-");
  const procs: Proc[] = [];
  let issuer: TestIssuer | null = null;
  let database: Server | null = null;
  let browser: Browser | null = null;
  try {
    mkdirSync(join(dir, "database"));
    const databaseTls = await makeServerTls(join(dir, "database"));
    database = await startDatabase(databaseTls, (req, res) => {
      if (req.url === "/boxcert-web.js") return res.writeHead(200, { "content-type": "text/javascript" }).end(readFileSync(MODULE));
      return res.writeHead(200, { "content-type": "text/html; charset=utf-8" }).end(POS_PAGE);
    });
    const databasePort = (database.address() as AddressInfo).port;
    const databaseOrigin = `https://127.0.0.1:${databasePort}`;

    issuer = await startTestIssuer({ zone: ZONE });
    const issuerRoot = join(dir, "issuer-root.pem");
    writeFileSync(issuerRoot, issuer.ca.pem);
    const boxDir = join(dir, "box");
    await pairedDataDir(boxDir, databaseOrigin);
    const boxPorts = { http: await freePort(), https: await freePort() };
    const box = startBox(boxDir, issuer, { issuerRoot, databaseCa: databaseTls.ca }, boxPorts);
    procs.push(box);
    const status = await waitUntilServing(box, boxPorts.http);
    const boxUrl = new URL(status.httpsUrl!);

    const bodyFile = join(dir, "status.json");
    const body = await statusBytes(boxUrl, databaseOrigin, issuer.ca.pem);
    writeFileSync(bodyFile, body);
    const barePort = await freePort();
    const bare = startBare(barePort, { ...splitHttpsPem(boxDir, dir), bodyFile }, databaseOrigin);
    procs.push(bare);
    await waitFor("the bare server", async () => bare.child.exitCode === null && bare.output().includes("listening"));

    const label = boxUrl.hostname.split(".")[1]!;
    browser = await launchChromium(dir, [databaseTls.ca, issuerRoot], label, databasePort);
    const context = await browser.newContext();
    await context.grantPermissions(["local-network-access"], { origin: databaseOrigin });
    const page = await context.newPage();
    await page.goto(`${databaseOrigin}/`);
    await page.waitForFunction(() => "roundTrips" in globalThis);
    const bareUrl = new URL(boxUrl);
    bareUrl.port = String(barePort);
    await connect(page, "box", { httpsUrl: boxUrl.href, ip: "127.0.0.1", httpPort: boxPorts.http });
    await connect(page, "bare", { httpsUrl: bareUrl.href, ip: "127.0.0.1", httpPort: boxPorts.http });

    const servers = [{ name: "box", proc: box }, { name: "bare", proc: bare }];
    console.log(
      `Chromium ${browser.version()}; GET /api/status (${body.length} bytes) through box.fetch(), sequential, one keep-alive connection each; ` +
        `box ${boxUrl.origin}, bare ${bareUrl.origin}; ${ROUNDS} rounds of ${ROUND_MS / 1000} s each after ${WARMUP_MS / 1000} s of warm-up each` +
        (PIN ? `; servers on CPU ${SERVER_CPU}, Chromium on CPU ${CLIENT_CPU} (taskset)` : "; not pinned"),
    );
    // Warm-up: the JIT of both servers and of the page, and each connection opened; not counted.
    for (const server of servers) await measure(page, server.name, server.proc, WARMUP_MS);

    const rounds = new Map<string, Round[]>(servers.map((s) => [s.name, []]));
    for (let round = 1; round <= ROUNDS; round++) {
      for (const server of servers) {
        const r = await measure(page, server.name, server.proc, ROUND_MS);
        rounds.get(server.name)!.push(r);
        console.log(formatRound(round, server.name, r));
      }
    }

    const med = (name: string, key: keyof Round) => median(rounds.get(name)!.map((r) => r[key]));
    console.log("");
    for (const { name } of servers) {
      console.log(`median ${name.padEnd(4)} ${Math.round(med(name, "rps")).toString().padStart(6)} round trips/s  ${Math.round(med(name, "latencyUs"))} us each  server CPU ${Math.round(med(name, "serverCpuUs"))} us/request`);
    }
    const boxRps = med("box", "rps");
    const bareRps = med("bare", "rps");
    console.log(resultLine("pos", { box_rps: Math.round(boxRps), bare_rps: Math.round(bareRps), ratio: boxRps / bareRps }));
  } finally {
    await browser?.close();
    await Promise.all(procs.map((p) => p.stop()));
    await issuer?.close();
    await new Promise((resolve) => (database ? database.close(resolve) : resolve(undefined)));
    rmSync(dir, { recursive: true, force: true });
  }
}
