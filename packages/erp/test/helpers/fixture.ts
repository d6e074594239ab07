/** A database on loopback over real HTTPS (a test CA made here), in a temporary folder, with its log kept. */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import pino from "pino";
import { startErp, type ErpOptions, type RunningErp } from "../../src/erp.ts";
import { makeCa, serverTls, type ServerTls, type TestCa } from "./pki.ts";

export interface TestPki {
  ca: TestCa;
  tls: ServerTls;
}

let pki: Promise<TestPki> | null = null;

/** One CA and server certificate per test file. */
export function testPki(): Promise<TestPki> {
  pki ??= makeCa("boxcert erp test CA").then(async (ca) => ({ ca, tls: await serverTls(ca) }));
  return pki;
}

export async function tempDir(prefix = "boxcert-erp-"): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

export interface LogCapture {
  logger: pino.Logger;
  lines: () => Array<Record<string, unknown>>;
  text: () => string;
}

export function captureLog(): LogCapture {
  let text = "";
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      text += chunk.toString();
      done();
    },
  });
  return {
    logger: pino({ level: "debug" }, stream),
    lines: () => text.split("\n").filter(Boolean).map((line) => JSON.parse(line) as Record<string, unknown>),
    text: () => text,
  };
}

export interface TestErp {
  erp: RunningErp;
  /** What a box or a browser needs to reach it: its URL and the CA to verify it. */
  target: { url: string; ca: string };
  dir: string;
  log: LogCapture;
  stop(): Promise<void>;
}

/** An issuer nobody answers at: reports fail quietly into their backoff (tests that are not about them). */
export const NO_ISSUER = new URL("http://127.0.0.1:1/");

export const ENTERPRISE_CODE = "SECRET-CODE-42";
export const PASSWORD = "correct horse battery";

/** Starts a database in `dir` (a new temporary folder, removed by stop(), when not given). */
export async function startTestErp(options: Partial<ErpOptions> = {}, dir?: string): Promise<TestErp> {
  const { ca, tls } = await testPki();
  const temp = dir ? null : await tempDir();
  const dataDir = dir ?? temp!.dir;
  const log = captureLog();
  const erp = await startErp({
    dataDir,
    issuerUrl: NO_ISSUER,
    listen: { host: "127.0.0.1", port: 0 },
    tls,
    enterpriseCode: ENTERPRISE_CODE,
    zone: "boxcert.test",
    password: PASSWORD,
    logger: log.logger,
    ...options,
  });
  return {
    erp,
    target: { url: erp.publicUrl.toString(), ca: ca.pem },
    dir: dataDir,
    log,
    stop: async () => {
      await erp.close();
      await temp?.cleanup();
    },
  };
}
