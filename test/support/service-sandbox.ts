/**
 * A service started the way its systemd unit starts it, as closely as a test can without systemd as PID 1
 * (CI machines and containers have none):
 *
 * - the unit's ExecStartPre= and ExecStart= command lines, with `${VAR}` and `$VAR` expanded as systemd does;
 * - as an unprivileged user (setpriv) with NoNewPrivileges and, as AmbientCapabilities= and
 *   CapabilityBoundingSet= give it, CAP_NET_BIND_SERVICE and no other capability (or none at all, to show
 *   what the capability is for);
 * - with the unit's UMask=;
 * - in a mount namespace where the whole file system is read-only but for the paths the unit may write
 *   (ProtectSystem=strict with StateDirectory= and ReadWritePaths=), and where folders of the test stand at
 *   the unit's paths (`/var/lib/<StateDirectory>`, `/opt/boxcert`), each on a tmpfs over its parent: the
 *   test's folders are reached through those paths only, so the user needs no access to where they really
 *   are (a checkout under /root, say);
 * - in a network namespace of its own (`ip netns`), where ports below 1024 need the capability.
 *
 * Needs root, `ip` (iproute2), `unshare` and `setpriv` (util-linux).
 */
import { execFileSync, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { dirname } from "node:path";
import { randomBytes } from "node:crypto";
import { spawnProcess, StopWaiting, waitFor, type Proc } from "./processes.ts";

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface Netns {
  name: string;
  /** Runs a program in the namespace to its end (never throws on a non-zero exit). */
  run(command: string, args: string[], options?: { env?: NodeJS.ProcessEnv; timeoutMs?: number }): Promise<RunResult>;
  /** Starts a long-running program in the namespace (stopped by close()). */
  spawn(command: string, args: string[], options?: { env?: NodeJS.ProcessEnv; cwd?: string }): Proc;
  /** Stops what spawn() started, then removes the namespace. */
  close(): Promise<void>;
}

/** A network namespace with its loopback up; removed by close(), or when the test process exits. */
export function addNetns(prefix: string): Netns {
  const name = `${prefix}-${randomBytes(3).toString("hex")}`;
  const procs: Proc[] = [];
  const remove = (): void => {
    for (const proc of procs) proc.child.kill("SIGKILL");
    try {
      execFileSync("ip", ["netns", "del", name], { stdio: "ignore" });
    } catch {
      // already gone
    }
  };
  process.once("exit", remove);
  execFileSync("ip", ["netns", "add", name]);
  execFileSync("ip", ["-n", name, "link", "set", "lo", "up"]);
  return {
    name,
    run: (command, args, options = {}) =>
      new Promise((resolve) => {
        const child = spawn("ip", ["netns", "exec", name, command, ...args], { stdio: ["ignore", "pipe", "pipe"], env: options.env ?? process.env });
        let stdout = "";
        let stderr = "";
        child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
        child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
        const timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs ?? 30_000);
        child.on("close", (code) => {
          clearTimeout(timer);
          resolve({ code: code ?? -1, stdout, stderr });
        });
      }),
    spawn: (command, args, options = {}) => {
      const proc = spawnProcess("ip", ["netns", "exec", name, command, ...args], options);
      procs.push(proc);
      return proc;
    },
    close: async () => {
      await Promise.allSettled(procs.map((proc) => proc.stop()));
      process.removeListener("exit", remove);
      remove();
    },
  };
}

/** A unit file's settings, by key (a key may be given several times). Sections are not told apart. */
export class Unit {
  readonly #settings = new Map<string, string[]>();

  constructor(readonly path: string) {
    for (const raw of readFileSync(path, "utf8").split("\n")) {
      const line = raw.trim();
      if (line === "" || line.startsWith("#") || line.startsWith(";") || line.startsWith("[")) continue;
      const at = line.indexOf("=");
      if (at < 0) throw new Error(`${path}: not a setting: ${line}`);
      const key = line.slice(0, at).trim();
      this.#settings.set(key, [...(this.#settings.get(key) ?? []), line.slice(at + 1).trim()]);
    }
  }

  all(key: string): string[] {
    return this.#settings.get(key) ?? [];
  }

  /** The setting's value; an error when it is missing or given twice. */
  one(key: string): string {
    const values = this.all(key);
    if (values.length !== 1) throw new Error(`${this.path}: ${key}= is given ${values.length} times, not once`);
    return values[0]!;
  }
}

/**
 * An Exec*= line as systemd turns it into arguments: `${VAR}` is replaced inside its word (one argument),
 * `$VAR` as a word of its own becomes the value split at whitespace (zero or more). Quotes, escapes, `%`
 * specifiers and prefixes such as `-` or `+` are not emulated: a line using them is refused, not misread.
 */
export function commandLine(line: string, env: Record<string, string>): string[] {
  if (/["'\\%]/.test(line) || /^[-+!@:|]/.test(line)) throw new Error(`commandLine() does not emulate quoting, specifiers or prefixes: ${line}`);
  return line
    .split(/\s+/)
    .filter(Boolean)
    .flatMap((word) => {
      const whole = /^\$([A-Za-z_]\w*)$/.exec(word);
      if (whole) return (env[whole[1]!] ?? "").split(/\s+/).filter(Boolean);
      return [word.replace(/\$\{([A-Za-z_]\w*)\}/g, (_, name: string) => env[name] ?? "")];
    });
}

export interface Sandbox {
  uid: number;
  gid: number;
  /** CAP_NET_BIND_SERVICE, or no capability at all. */
  capability: boolean;
  umask: string;
  /** Unit path -> folder of the test, put at that path (tmpfs over its parent). */
  mounts: Record<string, string>;
  /** Paths left writable; everything else is read-only. */
  writable: string[];
}

function quote(s: string): string {
  return `'${s.replaceAll("'", "'\\''")}'`;
}

/** The command that runs `argv` in the sandbox (in a network namespace: Netns.run or Netns.spawn). */
export function sandboxed(argv: string[], sandbox: Sandbox): [string, string[]] {
  const parents = [...new Set(Object.keys(sandbox.mounts).map((target) => dirname(target)))];
  const caps = sandbox.capability ? "-all,+net_bind_service" : "-all";
  const script = [
    "set -eu",
    // A tmpfs over each parent, so the target can be made without touching the real file system.
    ...parents.map((p) => `mount -t tmpfs -o mode=0755 tmpfs ${quote(p)}`),
    ...Object.entries(sandbox.mounts).map(([target, source]) => `mkdir -p ${quote(target)} && mount --bind ${quote(source)} ${quote(target)}`),
    ...sandbox.writable.map((w) => `mount --bind ${quote(w)} ${quote(w)}`),
    // Read-only: the root, and the tmpfs and folders above (the writable paths are mounts of their own).
    ...["/", ...parents, ...Object.keys(sandbox.mounts).filter((t) => !sandbox.writable.includes(t))].map((m) => `mount -o remount,bind,ro ${quote(m)}`),
    `umask ${sandbox.umask}`,
    `exec setpriv --reuid=${sandbox.uid} --regid=${sandbox.gid} --clear-groups --inh-caps=${caps} --ambient-caps=${caps} --bounding-set=${caps} --no-new-privs -- "$@"`,
  ].join("\n");
  return ["unshare", ["--mount", "--propagation", "private", "sh", "-c", script, "sandbox", ...argv]];
}

/** What the sandbox for a unit holds, read from the unit; refuses a unit whose hardening the test relies on is missing. */
export function unitSandbox(unit: Unit, options: { uid: number; gid: number; capability: boolean; mounts: Record<string, string> }): Sandbox {
  if (unit.one("ProtectSystem") !== "strict") throw new Error(`${unit.path}: the sandbox emulates ProtectSystem=strict`);
  if (unit.one("NoNewPrivileges") !== "yes") throw new Error(`${unit.path}: the sandbox emulates NoNewPrivileges=yes`);
  for (const key of ["AmbientCapabilities", "CapabilityBoundingSet"]) {
    if (unit.one(key) !== "CAP_NET_BIND_SERVICE") throw new Error(`${unit.path}: the sandbox gives CAP_NET_BIND_SERVICE only, as ${key}= must`);
  }
  const state = unit.all("StateDirectory").map((name) => `/var/lib/${name}`);
  const readWrite = unit.all("ReadWritePaths").flatMap((v) => v.split(/\s+/)).map((p) => p.replace(/^-/, ""));
  return { ...options, umask: unit.one("UMask"), writable: [...state, ...readWrite] };
}

/** The environment systemd gives the unit's commands (a few variables), with the EnvironmentFile's values. */
export function unitEnv(unit: Unit, fromEnvironmentFile: Record<string, string>): Record<string, string> {
  const state = unit.all("StateDirectory");
  return {
    PATH: "/usr/local/bin:/usr/bin:/bin",
    LANG: "C.UTF-8",
    ...(state.length ? { STATE_DIRECTORY: `/var/lib/${state[0]}`, HOME: `/var/lib/${state[0]}` } : { HOME: "/" }),
    ...fromEnvironmentFile,
  };
}

/** Waits until the process has printed `pattern`; fails at once with its output if it ends first. */
export async function untilOutput(proc: Proc, what: string, pattern: RegExp, timeoutMs = 30_000): Promise<void> {
  await waitFor(what, async () => {
    if (pattern.test(proc.output())) return true;
    if (proc.child.exitCode !== null || proc.child.signalCode !== null) throw new StopWaiting(`${what}: the process ended (${proc.child.exitCode ?? proc.child.signalCode})`);
    return false;
  }, timeoutMs).catch((err: Error) => {
    throw new Error(`${err.message}\n${proc.output().slice(-3000)}`);
  });
}

/** CAP_NET_BIND_SERVICE alone, as /proc/PID/status writes a capability set. */
export const NET_BIND_SERVICE_ONLY = "0000000000000400";

/** Who a running process is, from /proc/PID/status: its user and group, capability sets, no_new_privs. */
export function processIdentity(pid: number): { uid: number; gid: number; effective: string; bounding: string; ambient: string; noNewPrivs: boolean } {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const field = (name: string) => {
    const value = new RegExp(`^${name}:\\s*(.*)$`, "m").exec(status)?.[1];
    if (value === undefined) throw new Error(`/proc/${pid}/status has no ${name}`);
    return value.trim();
  };
  return {
    uid: Number(field("Uid").split(/\s+/)[0]),
    gid: Number(field("Gid").split(/\s+/)[0]),
    effective: field("CapEff"),
    bounding: field("CapBnd"),
    ambient: field("CapAmb"),
    noNewPrivs: field("NoNewPrivs") === "1",
  };
}
