/** A whole system on loopback for tests: an issuer process, admin commands, box processes. */
import { join } from "node:path";
import { readFileSync, writeFileSync } from "node:fs";
import { randomUUID } from "node:crypto";
import { boxcert, freePort, portOpen, startBoxcert, StopWaiting, tempDir, waitFor, type Proc } from "./processes.ts";

export const ZONE = "boxcert.test";

export interface Issuer {
  url: string;
  store: string;
  keysDir: string;
  proc: Proc;
}

export async function startIssuerProcess(options: { dir?: string; lifetime?: string; tls?: { cert: string; key: string }; extra?: string[]; nodeArgs?: string[] } = {}): Promise<Issuer> {
  const dir = options.dir ?? tempDir("boxcert-issuer-");
  const port = await freePort();
  const store = join(dir, "registry.sqlite");
  const extra = options.extra ?? [];
  // One process unless the test asks for workers: tests read one process's log and signal one pid.
  const workers = extra.includes("--workers") ? [] : ["--workers", "1"];
  const args = ["issuer", "--zone", ZONE, "--store", store, "--listen", `127.0.0.1:${port}`, "--cert-lifetime", options.lifetime ?? "1h", ...workers, ...extra];
  if (options.tls) args.push("--tls-cert", options.tls.cert, "--tls-key", options.tls.key);
  else args.push("--plain-http");
  const proc = await startBoxcert(args, () => true, 30_000, options.nodeArgs);
  await waitFor("the issuer's port", () => portOpen(port), 30_000).catch((err: Error) => {
    throw new Error(`${err.message}\n${proc.output()}`);
  });
  return { url: `${options.tls ? "https" : "http"}://127.0.0.1:${port}`, store, keysDir: join(dir, "keys"), proc };
}

export async function admin(store: string, ...args: string[]): Promise<unknown> {
  const result = await boxcert(["admin", ...args, "--store", store, "--json"]);
  if (result.code !== 0) throw new Error(`boxcert admin ${args.join(" ")}: ${result.stderr}`);
  return JSON.parse(result.stdout);
}

/** A subscription with one database; returns the database UUID. */
export async function customer(store: string, code: string, state: string, seats: number, kind = "production"): Promise<string> {
  const uuid = randomUUID();
  await admin(store, "subscription", "add", code, "--state", state, "--seats", String(seats));
  await admin(store, "database", "add", uuid, "--subscription", code, "--kind", kind);
  return uuid;
}

export interface CertificateStatus {
  status: "ok" | "renewing" | "error" | "missing";
  errorCode: string | null;
  detail: string | null;
  subject: string | null;
  names: string[] | null;
  issuer: string | null;
  notBefore: string | null;
  notAfter: string | null;
  renewAfter: string | null;
}

export interface BoxStatus {
  name: string;
  identifier: string;
  ip: string;
  httpUrl: string;
  httpsUrl: string | null;
  server: string | null;
  logLevel: string;
  checking?: boolean;
  certificate: CertificateStatus;
}

export interface Box {
  dataDir: string;
  httpPort: number;
  httpsPort: number;
  httpUrl: string;
  proc: Proc;
  status(): Promise<BoxStatus>;
  /** "Check again" as the homepage does it: a POST with the page's CSRF cookie and token. */
  checkAgain(): Promise<void>;
  /** Waits until a check has ended and the certificate matches `done`. */
  until(what: string, done: (s: BoxStatus) => boolean, timeoutMs?: number): Promise<BoxStatus>;
}

export async function connect(dataDir: string, dbUuid: string, code: string, server = "http://erp.test:8069"): Promise<void> {
  const r = await boxcert(["box", "connect", "--data-dir", dataDir, "--server", server, "--db-uuid", dbUuid, "--enterprise-code", code]);
  if (r.code !== 0) throw new Error(`box connect: ${r.stderr}`);
}

/** Where the issuer's embedded CA keeps its root: the root every chain it hands out leads to. */
export function embeddedRoot(issuer: Issuer): string {
  return join(issuer.keysDir, "embedded-ca", "root.pem");
}

/** One PEM file holding the given ones, for --issuer-ca (the issuer's TLS root and the root of its chains may differ). */
function caFile(files: string[]): string {
  const file = join(tempDir("boxcert-issuer-ca-"), "issuer-ca.pem");
  writeFileSync(file, files.map((f) => readFileSync(f, "utf8")).join(""));
  return file;
}

/** `issuerCa`: the PEM files --issuer-ca gets, in one file. */
export async function startBox(options: { issuer: string; dataDir?: string; issuerCa?: string[]; extra?: string[] }): Promise<Box> {
  const dataDir = options.dataDir ?? tempDir("boxcert-box-");
  const httpPort = await freePort();
  const httpsPort = await freePort();
  const args = ["box", "--data-dir", dataDir, "--issuer", options.issuer, "--http-port", String(httpPort), "--https-port", String(httpsPort), "--ip", "127.0.0.1", "--listen-host", "127.0.0.1", ...(options.extra ?? [])];
  if (options.issuerCa) args.push("--issuer-ca", caFile(options.issuerCa));
  const httpUrl = `http://127.0.0.1:${httpPort}`;
  const proc = await startBoxcert(args, () => true);
  const status = async () => (await (await fetch(`${httpUrl}/api/status`)).json()) as BoxStatus;
  await waitFor("the box's homepage", async () => {
    if (proc.child.exitCode !== null) throw new StopWaiting(`the box exited with ${proc.child.exitCode}:\n${proc.output()}`);
    return (await fetch(`${httpUrl}/api/status`)).ok;
  }, 90_000);
  return {
    dataDir,
    httpPort,
    httpsPort,
    httpUrl,
    proc,
    status,
    checkAgain: async () => {
      const page = await fetch(`${httpUrl}/`);
      const cookie = (page.headers.get("set-cookie") ?? "").split(";")[0] ?? "";
      const token = /name="csrf" value="([^"]+)"/.exec(await page.text())?.[1];
      if (!token) throw new Error("the homepage has no CSRF token");
      const res = await fetch(`${httpUrl}/check`, {
        method: "POST",
        redirect: "manual",
        headers: { cookie, origin: httpUrl, "content-type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams({ csrf: token }).toString(),
      });
      if (res.status !== 303) throw new Error(`Check again: HTTP ${res.status}`);
    },
    until: (what, done, timeoutMs = 30_000) =>
      waitFor(what, async () => {
        const s = await status();
        return !s.checking && done(s) ? s : null;
      }, timeoutMs).catch((err: Error) => {
        throw new Error(`${err.message}\nbox output:\n${proc.output().slice(-3000)}`);
      }),
  };
}
