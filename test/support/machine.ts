/**
 * A machine booted with systemd, for what only a real systemd shows: a package installed with apt and its
 * maintainer scripts, a unit's sandbox as systemd builds it. CI machines and containers do not run systemd
 * as PID 1; systemd-nspawn (Debian's systemd-container) boots one in a container:
 *
 * - its root is this machine's own, seen through an overlay whose changes go to a tmpfs, mounted in a
 *   mount namespace of its own (`unshare`): whatever the container installs or removes, this machine's
 *   files do not change, and the mounts end with the container;
 * - it boots basic.target only (journald and the like), not this machine's services;
 * - its network is a test's network namespace (Netns), where the test runs its other programs;
 * - `binds` are folders of the test, read-only inside (a file made after the boot would not show through
 *   the overlay).
 *
 * Needs root, overlayfs and `systemd-nspawn`.
 */
import { readFileSync, rmSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { ensureDebianPackage, spawnProcess, StopWaiting, tempDir, waitFor } from "./processes.ts";
import type { Netns, RunResult } from "./service-sandbox.ts";

export interface Machine {
  /** Runs a shell script as root inside the machine (never throws on a non-zero exit). */
  sh(script: string, timeoutMs?: number): Promise<RunResult>;
  /** Powers the machine off (SIGKILL after 5 s) and removes its overlay. */
  stop(): Promise<void>;
}

const BOOT = [
  "set -eu",
  'dir="$1" netns="$2" name="$3"; shift 3',
  'mount -t tmpfs tmpfs "$dir"',
  'mkdir "$dir/upper" "$dir/work" "$dir/root"',
  'mount -t overlay overlay -o "lowerdir=/,upperdir=$dir/upper,workdir=$dir/work" "$dir/root"',
  // A Debian image built for containers may forbid starting services from maintainer scripts; a device does not.
  'rm -f "$dir/root/usr/sbin/policy-rc.d"',
  'exec systemd-nspawn --quiet --directory="$dir/root" --machine="$name" --register=no --keep-unit --network-namespace-path="/run/netns/$netns" "$@" --boot -- systemd.unit=basic.target systemd.firstboot=off',
].join("\n");

/** The container's PID 1 (as this machine numbers it): systemd-nspawn's child. */
function containerInit(nspawnPid: number): number | null {
  try {
    const children = readFileSync(`/proc/${nspawnPid}/task/${nspawnPid}/children`, "utf8").trim().split(/\s+/).filter(Boolean);
    return children.length === 1 ? Number(children[0]) : null;
  } catch {
    return null;
  }
}

function nsenter(init: number, script: string, timeoutMs: number): Promise<RunResult> {
  return new Promise((resolve) => {
    const proc = spawnProcess("nsenter", ["--target", String(init), "--all", "sh", "-c", script]);
    const timer = setTimeout(() => proc.child.kill("SIGKILL"), timeoutMs);
    proc.child.on("close", (code) => {
      clearTimeout(timer);
      // spawnProcess mixes both streams: what the script printed, in order, is what a test shows.
      resolve({ code: code ?? -1, stdout: proc.output(), stderr: "" });
    });
  });
}

export async function bootMachine(ns: Netns, binds: Record<string, string> = {}): Promise<Machine> {
  ensureDebianPackage("systemd-nspawn", "systemd-container");
  const dir = tempDir("boxcert-machine-");
  const name = `bc${randomBytes(4).toString("hex")}`;
  const bindArgs = Object.entries(binds).map(([inside, outside]) => `--bind-ro=${outside}:${inside}`);
  const nspawn = spawnProcess("unshare", ["--mount", "--propagation", "private", "sh", "-c", BOOT, "boot", dir, ns.name, name, ...bindArgs]);
  const kill = (): void => {
    nspawn.child.kill("SIGKILL");
  };
  process.once("exit", kill);
  const stop = async (): Promise<void> => {
    await nspawn.stop();
    process.removeListener("exit", kill);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const init = await waitFor("the machine to boot", async () => {
      if (nspawn.child.exitCode !== null) throw new StopWaiting(`systemd-nspawn exited with ${nspawn.child.exitCode}:\n${nspawn.output()}`);
      const pid = containerInit(nspawn.child.pid!);
      if (pid === null) return null;
      const state = await nsenter(pid, "systemctl is-system-running", 10_000);
      return /^(running|degraded)$/m.test(state.stdout) ? pid : null;
    }, 60_000, 200);
    return { sh: (script, timeoutMs = 60_000) => nsenter(init, script, timeoutMs), stop };
  } catch (err) {
    await stop();
    throw new Error(`${(err as Error).message}\n${nspawn.output().slice(-3000)}`, { cause: err });
  }
}

