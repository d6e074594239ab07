/**
 * What the benchmarks that run a real box share (bench/pos.ts, bench/box.ts): a data folder paired with a
 * database, that database (an HTTPS server in the bench process answering the box's registration), waiting
 * until the box serves its certificate, its key and chain as files for a bare server, CPU pinning and the
 * CPU time of a process.
 */
import { createServer, type Server } from "node:https";
import type { IncomingMessage, ServerResponse } from "node:http";
import { spawnSync } from "node:child_process";
import { availableParallelism } from "node:os";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { tlsServerOptions } from "@boxcert/shared";
import { dataPaths, ensureDataDir, loadOrCreateConfig, updateConfig, type BoxStatus } from "@boxcert/box";
import { waitFor, type Proc } from "../test/support/processes.ts";

export const ZONE = "boxcert.test";
export const SERVER_CPU = "1";
export const CLIENT_CPU = "0";

export function has(command: string): boolean {
  return spawnSync("sh", ["-c", `command -v ${command}`], { stdio: "ignore" }).status === 0;
}

/** With two CPUs or more, servers run on CPU 1 and the client (browser or bench process) on CPU 0, unless `envFlag` is "0". */
export function pinning(envFlag: string | undefined): boolean {
  return envFlag !== "0" && availableParallelism() >= 2 && has("taskset");
}

export function pinned(pin: boolean, cpu: string, argv: string[]): string[] {
  return pin ? ["taskset", "-c", cpu, ...argv] : argv;
}

/** Clock ticks per second of /proc/<pid>/stat's utime and stime (USER_HZ, 100 on Linux). */
const CLOCK_TICKS = Number(spawnSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).stdout.trim() || 100);

/** CPU seconds a process has used (user + system), from /proc. */
export function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  // After "pid (comm) ", utime and stime are fields 12 and 13 (0-based).
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
}

/** Resident memory of a process in MiB (VmRSS). */
export function residentMiB(pid: number): number {
  const line = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  if (!line) throw new Error(`no VmRSS for process ${pid}`);
  return Number(line[1]) / 1024;
}

/**
 * The customer's database: a yes to the box's registration; `extra` answers anything else (the POS page).
 * Returns the server, listening on 127.0.0.1.
 */
export async function startDatabase(tls: { cert: string; key: string }, extra?: (req: IncomingMessage, res: ServerResponse) => void): Promise<Server> {
  const server = createServer(tlsServerOptions(readFileSync(tls.cert), readFileSync(tls.key)), (req, res) => {
    if (req.method === "POST" && req.url === "/api/iot/boxes") {
      req.resume();
      req.on("end", () => res.writeHead(200, { "content-type": "application/json" }).end('{"registered":true}'));
      return;
    }
    if (extra) extra(req, res);
    else res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return server;
}

/** A data folder connected to the database and paired with its origin, as after a connection token. */
export async function pairedDataDir(dir: string, databaseOrigin: string): Promise<void> {
  const paths = dataPaths(dir);
  await ensureDataDir(paths);
  await loadOrCreateConfig(paths, "bench-box");
  await updateConfig(paths, { server: `${databaseOrigin}/`, dbUuid: "00000000-0000-4000-8000-00000000b0c5", enterpriseCode: "BENCH-POS", pairedOrigin: databaseOrigin });
}

/** The box's status over plain HTTP by IP (the Host check takes an IP literal), as its homepage reads it. */
async function boxStatus(box: Proc, httpPort: number): Promise<BoxStatus> {
  if (box.child.exitCode !== null) throw new Error(`the box exited with ${box.child.exitCode}:\n${box.output()}`);
  const res = await fetch(`http://127.0.0.1:${httpPort}/api/status`);
  return (await res.json()) as BoxStatus;
}

/** Until the box serves a certificate and has registered with the database (so it answers the page's origin). */
export async function waitUntilServing(box: Proc, httpPort: number): Promise<BoxStatus> {
  return waitFor("the box's certificate and registration", async () => {
    const status = await boxStatus(box, httpPort);
    return status.certificate.status === "ok" && status.database.registered && status.httpsUrl ? status : null;
  });
}

/** https.pem holds the key and the chain in one file: split for a bare server's two options. */
export function splitHttpsPem(dataDir: string, dir: string): { keyFile: string; chainFile: string } {
  const pem = readFileSync(dataPaths(dataDir).https, "utf8");
  const blocks = [...pem.matchAll(/-----BEGIN ([A-Z ]+)-----[\s\S]+?-----END \1-----\n?/g)];
  const key = blocks.filter((b) => b[1]!.endsWith("PRIVATE KEY")).map((b) => b[0]);
  const chain = blocks.filter((b) => b[1] === "CERTIFICATE").map((b) => b[0]);
  if (key.length !== 1 || chain.length === 0) throw new Error(`https.pem: ${key.length} keys and ${chain.length} certificates`);
  const keyFile = join(dir, "box.key");
  const chainFile = join(dir, "box.chain.pem");
  writeFileSync(keyFile, key[0]!, { mode: 0o600 });
  writeFileSync(chainFile, chain.join(""));
  return { keyFile, chainFile };
}
