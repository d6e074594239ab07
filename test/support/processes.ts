/**
 * Real processes for system tests: the `boxcert` command started as users start it, on loopback ports,
 * stopped (and awaited) when the test ends.
 */
import { spawn, execFile, execFileSync, type ChildProcess } from "node:child_process";
import { createServer, connect } from "node:net";
import { createSocket } from "node:dgram";
import { randomInt } from "node:crypto";
import { existsSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";

export const ROOT = resolve(import.meta.dirname, "../..");
const MAIN = join(ROOT, "packages/cli/src/main.ts");
const run = promisify(execFile);

/**
 * Installs a Debian package when `command` (a name on PATH, or an absolute path) is missing: as root with
 * apt, else an error saying the command to run. scripts/test.sh does the same for the whole suite.
 */
export function ensureDebianPackage(command: string, pkg: string): void {
  if (command.startsWith("/")) {
    if (existsSync(command)) return;
  } else {
    try {
      execFileSync("sh", ["-c", `command -v ${command}`], { stdio: "ignore" });
      return;
    } catch {
      // missing
    }
  }
  if (process.getuid?.() !== 0) throw new Error(`${command} is missing: sudo apt-get install -y ${pkg}`);
  execFileSync("sh", ["-c", `apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ${pkg}`], { stdio: "ignore" });
}

export function tempDir(prefix = "boxcert-"): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** Ports this process has handed out: never handed out twice. */
const handedOut = new Set<number>();

function bindable(port: number, kind: "tcp" | "udp"): Promise<boolean> {
  return new Promise((res) => {
    if (kind === "tcp") {
      const server = createServer();
      server.once("error", () => res(false));
      server.listen(port, "127.0.0.1", () => server.close(() => res(true)));
    } else {
      const socket = createSocket("udp4");
      socket.once("error", () => {
        socket.close();
        res(false);
      });
      socket.bind(port, "127.0.0.1", () => socket.close(() => res(true)));
    }
  });
}

/**
 * A loopback port free for TCP and UDP, picked at random below the kernel's ephemeral range (32768 and up):
 * a port from listen(0) is an ephemeral one, which any outgoing connection of any test running beside this
 * one may take between this call and the moment the program under test binds it (seen in CI as "the port
 * is already in use"). Below that range only a listener can take it, and the random pick keeps the test
 * files that run in parallel apart.
 */
export async function freePort(): Promise<number> {
  for (let tries = 0; tries < 200; tries++) {
    const port = 15000 + randomInt(17000);
    if (handedOut.has(port)) continue;
    if ((await bindable(port, "tcp")) && (await bindable(port, "udp"))) {
      handedOut.add(port);
      return port;
    }
  }
  throw new Error("no free loopback port between 15000 and 32000");
}

export interface Proc {
  child: ChildProcess;
  output(): string;
  stop(): Promise<void>;
}

/** Spawns any program with its output collected; stop() sends SIGTERM (SIGKILL after 5 s) and awaits the exit. */
export function spawnProcess(command: string, args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Proc {
  const child = spawn(command, args, { ...options, stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  child.stdout!.on("data", (d: Buffer) => (output += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (output += d.toString()));
  return {
    child,
    output: () => output,
    stop: () =>
      new Promise<void>((res) => {
        if (child.exitCode !== null || child.signalCode !== null) return res();
        child.once("exit", () => res());
        child.kill("SIGTERM");
        setTimeout(() => child.kill("SIGKILL"), 5000).unref();
      }),
  };
}

/** Starts `boxcert ARGS...`; resolves once `ready(output)` is true. */
export async function startBoxcert(args: string[], ready: (output: string) => boolean, timeoutMs = 30_000, nodeArgs: string[] = []): Promise<Proc> {
  const proc = spawnProcess(process.execPath, [...nodeArgs, "--import", "tsx", MAIN, ...args], { cwd: ROOT });
  const started = Date.now();
  while (!ready(proc.output())) {
    if (proc.child.exitCode !== null) throw new Error(`boxcert ${args.join(" ")} exited with ${proc.child.exitCode}:\n${proc.output()}`);
    if (Date.now() - started > timeoutMs) {
      await proc.stop();
      throw new Error(`boxcert ${args.join(" ")} not ready after ${timeoutMs} ms:\n${proc.output()}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return proc;
}

/** Runs `boxcert ARGS...` to completion. */
export async function boxcert(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, ["--import", "tsx", MAIN, ...args], { cwd: ROOT, maxBuffer: 256 * 1024 * 1024 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: typeof e.code === "number" ? e.code : 1, stdout: e.stdout, stderr: e.stderr };
  }
}

/** A throwaway CA and a leaf for `names` (default 127.0.0.1 and localhost), made with openssl (a server's own HTTPS). */
export async function makeServerTls(dir: string, names: readonly string[] = ["IP:127.0.0.1", "DNS:localhost"]): Promise<{ ca: string; cert: string; key: string }> {
  const f = (name: string) => join(dir, name);
  const openssl = (...args: string[]) => run("openssl", args);
  await openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", f("ca.key"), "-out", f("ca.pem"), "-days", "2", "-subj", "/CN=boxcert test issuer CA");
  await openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", f("tls.key"), "-out", f("tls.csr"), "-subj", "/CN=127.0.0.1");
  writeFileSync(f("ext.cnf"), `subjectAltName=${names.join(",")}\nextendedKeyUsage=serverAuth\n`);
  await openssl("x509", "-req", "-in", f("tls.csr"), "-CA", f("ca.pem"), "-CAkey", f("ca.key"), "-CAcreateserial", "-out", f("tls.pem"), "-days", "2", "-extfile", f("ext.cnf"));
  return { ca: f("ca.pem"), cert: f("tls.pem"), key: f("tls.key") };
}

/** Thrown inside a waitFor() condition: give up at once (a process died), do not retry. */
export class StopWaiting extends Error {}

export async function waitFor<T>(what: string, fn: () => Promise<T | undefined | null | false>, timeoutMs = 30_000, everyMs = 100): Promise<T> {
  const started = Date.now();
  let last: unknown;
  for (;;) {
    try {
      const value = await fn();
      if (value) return value;
    } catch (err) {
      if (err instanceof StopWaiting) throw err;
      last = err;
    }
    if (Date.now() - started > timeoutMs) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ""}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** Whether something accepts TCP connections on 127.0.0.1:port. */
export function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}
