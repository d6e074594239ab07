/**
 * `npm run bench -- dns`: queries per second of `boxcert dns` under `dnsperf` (Debian), against Knot DNS (one
 * UDP worker) serving the same names and a bare Node `dgram` responder (the ceiling of this runtime), all
 * in the same run, with the same query file: 80% A hits on private addresses of active labels, 10% TXT at
 * `_acme-challenge.<label>`, 10% names that do not exist. Each server is measured three times, interleaved;
 * the medians make the `result:` line.
 *
 * With two or more CPUs, every server runs on CPU 1 and dnsperf on CPU 0 (taskset), so each server has one
 * core of its own and the load generator does not compete with it; BENCH_DNS_PIN=0 turns that off.
 */
import { spawn, spawnSync, execFile, type ChildProcess } from "node:child_process";
import { createSocket } from "node:dgram";
import { randomBytes } from "node:crypto";
import { availableParallelism } from "node:os";
import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import packet from "dns-packet";
import { newLabel } from "@boxcert/shared";
import { enrollBox, issuanceRecords } from "@boxcert/issuer";
import { openStore, RegistryOperations, ZoneRecords } from "@boxcert/store";
import { ROOT, freePort, tempDir } from "../test/support/processes.ts";
import { prepareKnot } from "./knot.ts";
import { median, resultLine } from "./stats.ts";

const run = promisify(execFile);

const ZONE = "boxcert.test";
const LABELS = Number(process.env.BENCH_DNS_LABELS ?? 1000);
const CHALLENGED = Math.max(1, Math.round(LABELS / 10));
const QUERIES = 10_000;
const SECONDS = Number(process.env.BENCH_DNS_SECONDS ?? 10);
const CLIENTS = Number(process.env.BENCH_DNS_CLIENTS ?? 8);
const OUTSTANDING = Number(process.env.BENCH_DNS_OUTSTANDING ?? 200);
const ROUNDS = 3;
const PIN = process.env.BENCH_DNS_PIN !== "0" && availableParallelism() >= 2 && has("taskset");
const SERVER_CPU = "1";
const LOAD_CPU = "0";

function has(command: string): boolean {
  return spawnSync("sh", ["-c", `command -v ${command}`], { stdio: "ignore" }).status === 0;
}

/** dnsperf and knotd from Debian: installed when missing and we may, else the exact command to run. */
function ensureTools(): void {
  const missing = [
    ["dnsperf", "dnsperf"],
    ["knotd", "knot"],
  ].filter(([command]) => !has(command!)).map(([, pkg]) => pkg!);
  if (missing.length === 0) return;
  const root = process.getuid?.() === 0;
  if (!root || !has("apt-get")) {
    console.error(`bench dns: missing ${missing.join(", ")}; run:\n  sudo apt-get update && sudo apt-get install -y ${missing.join(" ")}`);
    process.exit(1);
  }
  console.log(`installing ${missing.join(", ")} (apt-get)`);
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  for (const args of [["update", "-qq"], ["install", "-y", "-qq", ...missing]]) {
    const result = spawnSync("apt-get", args, { stdio: "inherit", env });
    if (result.status !== 0) throw new Error(`apt-get ${args.join(" ")} failed (exit ${result.status})`);
  }
}

function pinned(cpu: string, argv: string[]): string[] {
  return PIN ? ["taskset", "-c", cpu, ...argv] : argv;
}

interface Server {
  name: string;
  port: number;
  child: ChildProcess;
  output(): string;
}

function startServer(name: string, port: number, argv: string[]): Server {
  const full = pinned(SERVER_CPU, argv);
  const child = spawn(full[0]!, full.slice(1), { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  child.stdout!.on("data", (d: Buffer) => (output += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (output += d.toString()));
  return { name, port, child, output: () => output };
}

function stop(server: Server): Promise<void> {
  return new Promise((resolve) => {
    if (server.child.exitCode !== null || server.child.signalCode !== null) return resolve();
    server.child.once("exit", () => resolve());
    server.child.kill("SIGTERM");
    setTimeout(() => server.child.kill("SIGKILL"), 5000).unref();
  });
}

/** One UDP query; the decoded response, or null after `timeoutMs`. */
function ask(port: number, name: string, type: packet.RecordType): Promise<packet.Packet | null> {
  return new Promise((resolve) => {
    const socket = createSocket("udp4");
    const timer = setTimeout(() => {
      socket.close();
      resolve(null);
    }, 500);
    socket.once("message", (message) => {
      clearTimeout(timer);
      socket.close();
      resolve(packet.decode(message));
    });
    socket.send(packet.encode({ type: "query", id: 1, questions: [{ type, name, class: "IN" }] }), port, "127.0.0.1");
  });
}

async function waitUntilAnswering(server: Server): Promise<void> {
  const started = Date.now();
  while (!(await ask(server.port, ZONE, "SOA"))) {
    if (server.child.exitCode !== null) throw new Error(`${server.name} exited with ${server.child.exitCode}:\n${server.output()}`);
    if (Date.now() - started > 30_000) throw new Error(`${server.name} does not answer on 127.0.0.1:${server.port}:\n${server.output()}`);
  }
}

interface Perf {
  qps: number;
  latencyMs: number;
  lost: string;
  codes: string;
}

async function dnsperf(port: number, file: string, seconds: number): Promise<Perf> {
  const argv = pinned(LOAD_CPU, ["dnsperf", "-s", "127.0.0.1", "-p", String(port), "-d", file, "-c", String(CLIENTS), "-q", String(OUTSTANDING), "-l", String(seconds), "-Q", "10000000"]);
  const { stdout } = await run(argv[0]!, argv.slice(1), { maxBuffer: 16 * 1024 * 1024 });
  const qps = /Queries per second:\s+([\d.]+)/.exec(stdout)?.[1];
  const latency = /Average Latency \(s\):\s+([\d.]+)/.exec(stdout)?.[1];
  if (!qps || !latency) throw new Error(`unreadable dnsperf output:\n${stdout}`);
  return {
    qps: Number(qps),
    latencyMs: Number(latency) * 1000,
    lost: /Queries lost:\s+(\S+ \([^)]*\))/.exec(stdout)?.[1] ?? "?",
    codes: /Response codes:\s+(.*)/.exec(stdout)?.[1]?.trim() ?? "?",
  };
}

function randomPrivateIPv4(): string {
  const b = randomBytes(3);
  switch (b[0]! % 3) {
    case 0:
      return `10.${b[1]}.${b[2]}.${1 + (b[0]! % 254)}`;
    case 1:
      return `192.168.${b[1]}.${1 + (b[2]! % 254)}`;
    default:
      return `172.${16 + (b[1]! % 16)}.${b[2]}.${1 + (b[0]! % 254)}`;
  }
}

interface Workload {
  queryFile: string;
  labels: string[];
  addresses: Map<string, string>;
  challenges: Map<string, string[]>;
}

/** The store `boxcert dns` reads (labels, challenge values) and the query file every server is asked. */
async function prepareWorkload(dir: string, storePath: string): Promise<Workload> {
  const store = await openStore(storePath);
  const labels: string[] = [];
  const challenges = new Map<string, string[]>();
  try {
    const registry = new RegistryOperations(store);
    const records = issuanceRecords(store);
    const dbUuid = "00000000-0000-4000-8000-0000000000d5";
    await registry.addSubscription({ code: "BENCH-DNS", state: "in_progress", seats: LABELS });
    await registry.addDatabase({ uuid: dbUuid, subscription: "BENCH-DNS", kind: "production" });
    for (let i = 0; i < LABELS; i++) {
      const { box } = await enrollBox(records, { dbUuid, enterpriseCode: "BENCH-DNS", identifier: `bench-box-${i}`, identityKey: randomBytes(65).toString("base64") }, new Date());
      labels.push(box!.label);
    }
    for (const label of labels.slice(0, CHALLENGED)) {
      challenges.set(label, [randomBytes(32).toString("base64url"), randomBytes(32).toString("base64url")]);
    }
    const zoneRecords = new ZoneRecords(store.db);
    for (const [label, values] of challenges) for (const value of values) await zoneRecords.addChallenge(label, value);
  } finally {
    await store.close();
  }

  const lines: string[] = [];
  const addresses = new Map<string, string>();
  for (let i = 0; i < QUERIES; i++) {
    const slot = i % 10;
    if (slot < 8) {
      const address = randomPrivateIPv4();
      const name = `${address.replaceAll(".", "-")}.${labels[i % labels.length]}.${ZONE}`;
      addresses.set(name, address);
      lines.push(`${name} A`);
    } else if (slot === 8) {
      lines.push(`_acme-challenge.${labels[i % CHALLENGED]}.${ZONE} TXT`);
    } else {
      lines.push(`${randomPrivateIPv4().replaceAll(".", "-")}.${newLabel()}.${ZONE} A`);
    }
  }
  const queryFile = join(dir, "queries.txt");
  writeFileSync(queryFile, lines.join("\n") + "\n");
  return { queryFile, labels, addresses, challenges };
}

/** Each server answers the three kinds of query as the zone says, before anything is timed. */
async function checkAnswers(server: Server, workload: Workload, exact: boolean): Promise<void> {
  const [hitName, hitAddress] = workload.addresses.entries().next().value as [string, string];
  const hit = await ask(server.port, hitName, "A");
  const hitData = (hit?.answers?.[0] as { data?: string } | undefined)?.data;
  if (!hit || (exact && hitData !== hitAddress)) throw new Error(`${server.name}: ${hitName} A answered ${JSON.stringify(hit?.answers)}, not ${hitAddress}`);
  if (!exact) return;
  const missing = await ask(server.port, `10-0-0-1.${newLabel()}.${ZONE}`, "A");
  // dns-packet decodes the rcode, but its types leave it out.
  const rcode = (missing as { rcode?: string } | null)?.rcode;
  if (rcode !== "NXDOMAIN") throw new Error(`${server.name}: an unknown label answered ${rcode}, not NXDOMAIN`);
  const [label, values] = workload.challenges.entries().next().value as [string, string[]];
  const txt = await ask(server.port, `_acme-challenge.${label}.${ZONE}`, "TXT");
  const got = (txt?.answers ?? []).length;
  if (got !== values.length) console.log(`  note: ${server.name} answered ${got} TXT values at _acme-challenge.${label} (the zone has ${values.length})`);
}

export async function benchDns(): Promise<void> {
  ensureTools();
  const dir = tempDir("boxcert-bench-dns-");
  const servers: Server[] = [];
  try {
    const storePath = join(dir, "registry.sqlite");
    const workload = await prepareWorkload(dir, storePath);

    const [dnsPort, knotPort, barePort] = [await freePort(), await freePort(), await freePort()];
    const boxcert = startServer("boxcert dns", dnsPort, [
      process.execPath, "--import", "tsx", join(ROOT, "packages/cli/src/main.ts"),
      "dns", "--zone", ZONE, "--listen", `127.0.0.1:${dnsPort}`, "--store", storePath, "--log-level", "warning",
    ]);
    servers.push(boxcert);
    const txt = new Map([...workload.challenges].map(([label, values]) => [`_acme-challenge.${label}.${ZONE}`, values] as const));
    const knot = startServer("knot", knotPort, prepareKnot(dir, knotPort, {
      zone: ZONE,
      nameServer: { name: `ns1.${ZONE}`, address: "127.0.0.1" },
      caa: ["letsencrypt.org"],
      addresses: workload.addresses,
      txt,
    }));
    servers.push(knot);
    const bare = startServer("bare node", barePort, [process.execPath, "--import", "tsx", join(ROOT, "bench/dns-bare-responder.ts"), String(barePort)]);
    servers.push(bare);
    for (const server of servers) await waitUntilAnswering(server);
    await checkAnswers(boxcert, workload, true);
    await checkAnswers(knot, workload, true);
    await checkAnswers(bare, workload, false);

    console.log(
      `dnsperf -c ${CLIENTS} -q ${OUTSTANDING} -l ${SECONDS}, ${LABELS} labels, ${QUERIES} queries (80% A hits, 10% TXT, 10% NXDOMAIN)` +
        (PIN ? `; servers on CPU ${SERVER_CPU}, dnsperf on CPU ${LOAD_CPU} (taskset)` : "; not pinned"),
    );
    // Warm-up: JIT for the Node servers, caches for all; not counted.
    for (const server of servers) await dnsperf(server.port, workload.queryFile, 2);

    const results = new Map<string, Perf[]>(servers.map((s) => [s.name, []]));
    for (let round = 1; round <= ROUNDS; round++) {
      for (const server of servers) {
        const perf = await dnsperf(server.port, workload.queryFile, SECONDS);
        results.get(server.name)!.push(perf);
        console.log(
          `round ${round} ${server.name.padEnd(11)} ${Math.round(perf.qps).toString().padStart(7)} q/s  avg latency ${perf.latencyMs.toFixed(3)} ms  lost ${perf.lost}  ${perf.codes}`,
        );
        if (server.child.exitCode !== null) throw new Error(`${server.name} exited during the run:\n${server.output()}`);
      }
    }

    const qps = (name: string) => median(results.get(name)!.map((p) => p.qps));
    const latency = (name: string) => median(results.get(name)!.map((p) => p.latencyMs));
    const ours = qps("boxcert dns");
    const knotQps = qps("knot");
    const bareQps = qps("bare node");
    console.log("");
    for (const name of results.keys()) console.log(`median ${name.padEnd(11)} ${Math.round(qps(name)).toString().padStart(7)} q/s  avg latency ${latency(name).toFixed(3)} ms`);
    console.log(`boxcert dns / knot: ${(ours / knotQps).toFixed(3)}   boxcert dns / bare node: ${(ours / bareQps).toFixed(3)}   bare node / knot: ${(bareQps / knotQps).toFixed(3)}`);
    console.log(
      resultLine("dns", {
        qps: Math.round(ours),
        knot_qps: Math.round(knotQps),
        bare_node_qps: Math.round(bareQps),
        ratio_vs_knot: ours / knotQps,
        ratio_vs_bare_node: ours / bareQps,
      }),
    );
  } finally {
    await Promise.all(servers.map(stop));
    rmSync(dir, { recursive: true, force: true });
  }
}
