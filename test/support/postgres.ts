/**
 * A real PostgreSQL for tests: Debian's server binaries, a fresh cluster in a temporary folder owned by
 * the `postgres` user, on a free loopback port; stopped (and removed) at the end.
 */
import { execFileSync } from "node:child_process";
import { chownSync, existsSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { userInfo } from "node:os";
import { join } from "node:path";
import { freePort, tempDir } from "./processes.ts";

export interface Postgres {
  url: string;
  /** Stops the server (fast shutdown: its connections are ended) and starts it again on the same port. */
  restart(): void;
  /** Stops the server (fast shutdown) and leaves it stopped; the cluster and its port stay for start(). */
  shutdown(): void;
  /** Starts the stopped server again, on the same port with the same data. */
  start(): void;
  /**
   * Freezes the server (SIGSTOP to the postmaster and its children, which this test started): it keeps
   * its connections and accepts new ones, and answers nothing, as a hung server does. thaw() resumes it.
   */
  freeze(): void;
  thaw(): void;
  /** Stops the server and removes the cluster: the end of the test. */
  stop(): void;
}

function serverBin(): string {
  const root = "/usr/lib/postgresql";
  const versions = existsSync(root) ? readdirSync(root).filter((v) => existsSync(join(root, v, "bin", "initdb"))) : [];
  const newest = versions.sort((a, b) => Number(b) - Number(a))[0];
  if (!newest) throw new Error("PostgreSQL server binaries not found: run apt-get install -y postgresql (scripts/test.sh does)");
  return join(root, newest, "bin");
}

export async function startPostgres(): Promise<Postgres> {
  const bin = serverBin();
  const dir = tempDir("boxcert-pg-");
  const data = join(dir, "data");
  // initdb refuses to run as root; the cluster belongs to the postgres user, as on a Debian server.
  const asPostgres = userInfo().uid === 0 ? ["runuser", "-u", "postgres", "--"] : [];
  if (userInfo().uid === 0) {
    const uid = Number(execFileSync("id", ["-u", "postgres"]).toString().trim());
    const gid = Number(execFileSync("id", ["-g", "postgres"]).toString().trim());
    chownSync(dir, uid, gid);
  }
  const run = (command: string, args: string[]) => {
    const [file, ...rest] = [...asPostgres, join(bin, command), ...args];
    execFileSync(file!, rest, { stdio: "pipe" });
  };
  run("initdb", ["-D", data, "-A", "trust", "-U", "boxcert", "--no-sync", "-E", "UTF8"]);
  // A port another test file takes between freePort() and the server's bind fails the start: try another.
  let port = 0;
  const start = () => run("pg_ctl", ["-D", data, "-l", join(dir, "server.log"), "-w", "-o", `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off`, "start"]);
  for (let attempt = 1; ; attempt++) {
    port = await freePort();
    try {
      start();
      break;
    } catch (error) {
      if (attempt === 3) throw error;
    }
  }
  let running = true;
  let frozen: number[] = [];
  const thaw = () => {
    for (const pid of frozen) process.kill(pid, "SIGCONT");
    frozen = [];
  };
  return {
    url: `postgres://boxcert@127.0.0.1:${port}/postgres`,
    restart() {
      // -l again: without it the new server would hold this call's output pipes open.
      run("pg_ctl", ["-D", data, "-l", join(dir, "server.log"), "-m", "fast", "-w", "restart"]);
    },
    shutdown() {
      run("pg_ctl", ["-D", data, "-m", "fast", "-w", "stop"]);
      running = false;
    },
    start() {
      start();
      running = true;
    },
    freeze() {
      const postmaster = Number(readFileSync(join(data, "postmaster.pid"), "utf8").split("\n")[0]);
      const children = readFileSync(`/proc/${postmaster}/task/${postmaster}/children`, "utf8").trim().split(/\s+/).filter(Boolean).map(Number);
      frozen = [postmaster, ...children];
      for (const pid of frozen) process.kill(pid, "SIGSTOP");
    },
    thaw,
    stop() {
      thaw();
      try {
        if (running) run("pg_ctl", ["-D", data, "-m", "fast", "-w", "stop"]);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}
