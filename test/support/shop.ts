/**
 * A shop made of network namespaces, for the tests that need a real LAN (test/shop.test.ts):
 *
 *   cloud  203.0.113.10/24  issuer, dns (authoritative for the zone), the database     (a public site)
 *   router 203.0.113.1/24 on the WAN side, 192.168.50.1/24 on the LAN bridge; forwards between them;
 *          dnsmasq on 192.168.50.1 is the LAN's resolver, forwarding the zone to the cloud's dns
 *   box    192.168.50.42/24  the box agent, on ports 80 and 443
 *   pos    192.168.50.20/24  the point of sale: curl (and Chromium)
 *
 * 203.0.113.0/24 is a documentation range: Chromium treats it as public, so its Local Network Access rules
 * apply to pages from the cloud as they do in a shop. Each namespace gets its own /etc/netns/<name>/
 * resolv.conf (ip netns exec mounts it over /etc/resolv.conf). Nothing leaves these namespaces: the
 * router has no uplink. close() removes everything, and is also run when the test process exits, so a
 * failed test leaves no namespace, link or process behind.
 *
 * Needs root (namespaces, veth pairs, ports 53, 80, 443). `shopUnavailable()` says why when it cannot run.
 */
import { execFileSync, spawn } from "node:child_process";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { ROOT, spawnProcess, StopWaiting, tempDir, waitFor, type Proc } from "./processes.ts";

const MAIN = join(ROOT, "packages/cli/src/main.ts");

export const SHOP = {
  cloud: "203.0.113.10",
  wan: "203.0.113.1",
  lan: "192.168.50.1",
  box: "192.168.50.42",
  pos: "192.168.50.20",
} as const;

export type Place = "cloud" | "router" | "box" | "pos";
const PLACES: readonly Place[] = ["cloud", "router", "box", "pos"];
/** The signals that end a test run early; the shop is removed before they take effect. */
const STOP_SIGNALS: readonly NodeJS.Signals[] = ["SIGINT", "SIGTERM", "SIGHUP"];

/** Why the shop cannot be built here, or null when it can. */
export function shopUnavailable(): string | null {
  if (process.getuid?.() !== 0) return "network namespaces need root (run the suite as root, as .ci/run does)";
  try {
    execFileSync("ip", ["netns", "list"], { stdio: "ignore" });
  } catch {
    return "iproute2's `ip netns` is not available";
  }
  return null;
}

function ip(args: string[]): void {
  execFileSync("ip", args, { stdio: ["ignore", "ignore", "pipe"] });
}

export interface DnsmasqOptions {
  /** --stop-dns-rebind: answers with private addresses from upstream are dropped (many home routers). */
  stopRebind?: boolean;
  /** --rebind-domain-ok=/<zone>/: the fix, the zone exempted from that protection. */
  rebindOkZone?: string;
}

export interface Shop {
  /** The namespace's name of each place. */
  ns: Record<Place, string>;
  /** Runs a program in a place; resolves with its exit code and output (never throws on a non-zero exit). */
  run(place: Place, command: string, args: string[], timeoutMs?: number): Promise<{ code: number; stdout: string; stderr: string }>;
  /** Starts a long-running program in a place (stopped by close()). */
  spawn(place: Place, command: string, args: string[]): Proc;
  /** `boxcert ARGS` in a place, resolving when `ready(output)` holds. */
  boxcert(place: Place, args: string[], ready: (output: string) => boolean, timeoutMs?: number): Promise<Proc>;
  /** (Re)starts the router's dnsmasq: the LAN's resolver, forwarding `zone` to the cloud's dns. */
  router(zone: string, options?: DnsmasqOptions, hosts?: Record<string, string>): Promise<void>;
  close(): Promise<void>;
}

function addNamespaces(ns: Record<Place, string>): void {
  for (const place of PLACES) {
    ip(["netns", "add", ns[place]]);
    ip(["-n", ns[place], "link", "set", "lo", "up"]);
    const dir = join("/etc/netns", ns[place]);
    mkdirSync(dir, { recursive: true });
    // The LAN's resolver for the box and the pos; the cloud resolves nothing but what it serves itself.
    writeFileSync(join(dir, "resolv.conf"), place === "box" || place === "pos" ? `nameserver ${SHOP.lan}\noptions timeout:2 attempts:1\n` : "nameserver 127.0.0.1\n");
  }
}

/** A veth pair between two namespaces, named `here` and `there` inside them, up, with these addresses. */
function link(a: { ns: string; name: string; address: string }, b: { ns: string; name: string; address?: string }): void {
  ip(["link", "add", "name", a.name, "netns", a.ns, "type", "veth", "peer", "name", b.name, "netns", b.ns]);
  ip(["-n", a.ns, "addr", "add", a.address, "dev", a.name]);
  if (b.address) ip(["-n", b.ns, "addr", "add", b.address, "dev", b.name]);
  ip(["-n", a.ns, "link", "set", a.name, "up"]);
  ip(["-n", b.ns, "link", "set", b.name, "up"]);
}

function wire(ns: Record<Place, string>): void {
  link({ ns: ns.cloud, name: "eth0", address: `${SHOP.cloud}/24` }, { ns: ns.router, name: "wan0", address: `${SHOP.wan}/24` });
  ip(["-n", ns.router, "link", "add", "br0", "type", "bridge"]);
  ip(["-n", ns.router, "addr", "add", `${SHOP.lan}/24`, "dev", "br0"]);
  ip(["-n", ns.router, "link", "set", "br0", "up"]);
  for (const place of ["box", "pos"] as const) {
    link({ ns: ns[place], name: "eth0", address: `${SHOP[place]}/24` }, { ns: ns.router, name: `lan-${place}` });
    ip(["-n", ns.router, "link", "set", `lan-${place}`, "master", "br0"]);
    ip(["-n", ns[place], "route", "add", "default", "via", SHOP.lan]);
  }
  ip(["-n", ns.cloud, "route", "add", "192.168.50.0/24", "via", SHOP.wan]);
  execFileSync("ip", ["netns", "exec", ns.router, "sh", "-c", "echo 1 > /proc/sys/net/ipv4/ip_forward"]);
}

function removeNamespaces(ns: Record<Place, string>): void {
  for (const place of PLACES) {
    try {
      ip(["netns", "del", ns[place]]);
    } catch {
      // not made (a failure while building) or already gone
    }
    rmSync(join("/etc/netns", ns[place]), { recursive: true, force: true });
  }
}

/** Builds the shop. Throws (after removing what it made) when it cannot. */
export function buildShop(): Shop {
  const id = randomBytes(3).toString("hex");
  const ns = Object.fromEntries(PLACES.map((place) => [place, `bc${id}-${place}`])) as Record<Place, string>;
  const procs: Proc[] = [];
  let dnsmasq: Proc | null = null;
  const work = tempDir("boxcert-shop-");
  const onExit = (): void => {
    for (const proc of procs) proc.child.kill("SIGKILL");
    removeNamespaces(ns);
  };
  process.once("exit", onExit);
  // A test run stopped by a signal (Ctrl-C, a CI job's timeout) ends without "exit" events: the namespaces
  // would stay. Removed first, then the signal does what it would have done.
  const onSignal = (signal: NodeJS.Signals): void => {
    process.removeListener("exit", onExit);
    for (const other of STOP_SIGNALS) process.removeListener(other, onSignal);
    onExit();
    process.kill(process.pid, signal);
  };
  for (const signal of STOP_SIGNALS) process.once(signal, onSignal);
  try {
    addNamespaces(ns);
    wire(ns);
  } catch (err) {
    onExit();
    throw new Error(`the shop's namespaces could not be made: ${(err as Error).message}`, { cause: err });
  }

  const shop: Shop = {
    ns,
    run: (place, command, args, timeoutMs = 30_000) =>
      new Promise((resolve) => {
        const child = spawn("ip", ["netns", "exec", ns[place], command, ...args], { stdio: ["ignore", "pipe", "pipe"] });
        let stdout = "";
        let stderr = "";
        child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
        child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
        const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
        child.on("close", (code) => {
          clearTimeout(timer);
          resolve({ code: code ?? -1, stdout, stderr });
        });
      }),
    spawn: (place, command, args) => {
      const proc = spawnProcess("ip", ["netns", "exec", ns[place], command, ...args], { cwd: ROOT });
      procs.push(proc);
      return proc;
    },
    boxcert: async (place, args, ready, timeoutMs = 60_000) => {
      const proc = shop.spawn(place, process.execPath, ["--import", "tsx", MAIN, ...args]);
      await waitFor(`boxcert ${args[0]} in ${place}`, async () => {
        if (proc.child.exitCode !== null) throw new StopWaiting(`boxcert ${args.join(" ")} exited with ${proc.child.exitCode}:\n${proc.output()}`);
        return ready(proc.output());
      }, timeoutMs);
      return proc;
    },
    router: async (zone, options = {}, hosts = {}) => {
      await dnsmasq?.stop();
      const args = [
        "--keep-in-foreground",
        "--conf-file=/dev/null",
        "--no-resolv",
        "--no-hosts",
        `--pid-file=${join(work, "dnsmasq.pid")}`,
        "--bind-interfaces",
        `--listen-address=${SHOP.lan}`,
        "--user=root",
        "--log-queries",
        "--log-facility=-",
        `--server=/${zone}/${SHOP.cloud}`,
        ...Object.entries(hosts).map(([name, address]) => `--host-record=${name},${address}`),
        ...(options.stopRebind ? ["--stop-dns-rebind"] : []),
        ...(options.rebindOkZone ? [`--rebind-domain-ok=/${options.rebindOkZone}/`] : []),
      ];
      dnsmasq = shop.spawn("router", "/usr/sbin/dnsmasq", args);
      const started = dnsmasq;
      await waitFor("the router's dnsmasq", async () => {
        if (started.child.exitCode !== null) throw new StopWaiting(`dnsmasq exited:\n${started.output()}`);
        return /started, version/.test(started.output());
      }, 15_000);
    },
    close: async () => {
      await Promise.allSettled(procs.map((proc) => proc.stop()));
      process.removeListener("exit", onExit);
      for (const signal of STOP_SIGNALS) process.removeListener(signal, onSignal);
      removeNamespaces(ns);
      rmSync(work, { recursive: true, force: true });
    },
  };
  return shop;
}
