/**
 * Debian's HAProxy in front of issuer processes, for the fleet test and the storm benchmark: it runs the
 * deployment's own configuration, deploy/haproxy/boxcert-issuer.cfg (what docs/deployment.md shows), in
 * the foreground (-db), its values given through the environment as that file expects. TLS ends at
 * HAProxy with a throwaway certificate; the issuers behind it serve plain HTTP.
 */
import { rmSync, writeFileSync, readFileSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import { ensureDebianPackage, freePort, makeServerTls, ROOT, spawnProcess, StopWaiting, tempDir, waitFor, type Proc } from "./processes.ts";

export const HAPROXY = "/usr/sbin/haproxy";
export const HAPROXY_CONFIG = join(ROOT, "deploy/haproxy/boxcert-issuer.cfg");

export interface HaproxyServerStats {
  /** Requests (sessions) the server was given in all. */
  total: number;
  status: string;
}

export interface Haproxy {
  /** https://127.0.0.1:PORT */
  url: string;
  /** The CA of HAProxy's certificate (PEM file), for clients. */
  ca: string;
  proc: Proc;
  /** The issuers' lines of `show stat`, by server name (issuer1, issuer2). */
  stats(): Promise<Map<string, HaproxyServerStats>>;
  stop(): Promise<void>;
}

function adminCommand(socket: string, command: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = "";
    const s = connect(socket, () => s.end(`${command}\n`));
    s.setEncoding("utf8");
    s.on("data", (d: string) => (out += d));
    s.on("end", () => resolve(out));
    s.on("error", reject);
  });
}

/** `issuers`: host:port of each (the configuration names two: BOXCERT_ISSUER1 and 2). */
export async function startHaproxy(issuers: [string, string]): Promise<Haproxy> {
  ensureDebianPackage(HAPROXY, "haproxy");
  const dir = tempDir("boxcert-haproxy-");
  const tls = await makeServerTls(dir);
  const pem = join(dir, "issuer-tls.pem");
  writeFileSync(pem, readFileSync(tls.cert, "utf8") + readFileSync(tls.key, "utf8"), { mode: 0o600 });
  const statsSocket = join(dir, "admin.sock");
  const port = await freePort();
  const env = {
    ...process.env,
    BOXCERT_HAPROXY_BIND: `127.0.0.1:${port}`,
    BOXCERT_HAPROXY_CERT: pem,
    BOXCERT_HAPROXY_STATS: statsSocket,
    BOXCERT_ISSUER1: issuers[0],
    BOXCERT_ISSUER2: issuers[1],
  };
  const proc = spawnProcess(HAPROXY, ["-db", "-f", HAPROXY_CONFIG], { cwd: dir, env });
  const haproxy: Haproxy = {
    url: `https://127.0.0.1:${port}`,
    ca: tls.ca,
    proc,
    async stats() {
      const csv = await adminCommand(statsSocket, "show stat");
      const lines = csv.split("\n").filter((l) => l && !l.startsWith("#"));
      const header = csv.split("\n")[0]!.replace(/^# /, "").split(",");
      const at = (name: string) => header.indexOf(name);
      const servers = new Map<string, HaproxyServerStats>();
      for (const line of lines) {
        const f = line.split(",");
        if (f[at("pxname")] !== "issuers" || f[at("svname")] === "BACKEND") continue;
        servers.set(f[at("svname")]!, { total: Number(f[at("stot")]), status: f[at("status")]! });
      }
      return servers;
    },
    stop: async () => {
      await proc.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  // Up when both issuers pass their health check: before that, HAProxy would send every request to one.
  await waitFor("HAProxy with both issuers up", async () => {
    if (proc.child.exitCode !== null) throw new StopWaiting(`haproxy exited with ${proc.child.exitCode}:\n${proc.output()}`);
    const servers = await haproxy.stats();
    return servers.size === 2 && [...servers.values()].every((s) => s.status === "UP");
  }, 30_000).catch(async (err: Error) => {
    await proc.stop();
    throw new Error(`${err.message}\n${proc.output()}`);
  });
  return haproxy;
}
