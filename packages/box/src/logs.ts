/**
 * The box's log: pino, one JSON event a line, to logs/box.log (and stdout when run from the command line),
 * rotated by size: box.log -> box.log.1 -> ... -> box.log.3.
 *
 * The rotation is hand-written (thirty lines) rather than pino-roll or a transport: those need packages a
 * box does not have, and a worker thread, while a box logs a few lines a minute. Writes are synchronous so
 * a line is on disk before the event it tells of goes on, and a crash loses nothing already logged.
 *
 * Secrets never reach the log: the subscription code and keys are redacted wherever they appear.
 */
import { closeSync, fstatSync, openSync, renameSync, writeSync, rmSync } from "node:fs";
import { readFile } from "node:fs/promises";
import pino from "pino";
import type { Logger } from "pino";
import { pinoLevel } from "@boxcert/shared";
import type { LogLevel } from "@boxcert/shared";

export const LOG_MAX_BYTES = 1024 * 1024;
export const LOG_KEEP = 3;

export class RotatingFile {
  #path: string;
  #maxBytes: number;
  #keep: number;
  #fd: number;
  #size: number;
  #closed = false;

  constructor(path: string, maxBytes = LOG_MAX_BYTES, keep = LOG_KEEP) {
    this.#path = path;
    this.#maxBytes = maxBytes;
    this.#keep = keep;
    this.#fd = openSync(path, "a", 0o600);
    this.#size = fstatSync(this.#fd).size;
  }

  write(line: string): boolean {
    // A line logged after close (a late server event during shutdown) is dropped, not a crash.
    if (this.#closed) return true;
    const bytes = Buffer.from(line);
    if (this.#size > 0 && this.#size + bytes.length > this.#maxBytes) this.#rotate();
    let offset = 0;
    while (offset < bytes.length) offset += writeSync(this.#fd, bytes, offset);
    this.#size += bytes.length;
    return true;
  }

  #rotate(): void {
    closeSync(this.#fd);
    rmSync(`${this.#path}.${this.#keep}`, { force: true });
    for (let i = this.#keep - 1; i >= 1; i--) {
      try {
        renameSync(`${this.#path}.${i}`, `${this.#path}.${i + 1}`);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
      }
    }
    renameSync(this.#path, `${this.#path}.1`);
    this.#fd = openSync(this.#path, "a", 0o600);
    this.#size = 0;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    closeSync(this.#fd);
  }
}

/** Field paths that may hold a secret; pino replaces their values. */
export const REDACT_PATHS = [
  "enterpriseCode",
  "*.enterpriseCode",
  "config.enterpriseCode",
  "key",
  "*.key",
  "privateKey",
  "*.privateKey",
  "csr",
  "*.csr",
  "password",
  "*.password",
  "adminPassword",
  "*.adminPassword",
  "pairing",
  "*.pairing",
  "pairingSecret",
  "*.pairingSecret",
];

export interface BoxLog {
  logger: Logger;
  close(): void;
}

export function createBoxLog(options: { file: string; level: LogLevel; stdout: boolean; base?: Record<string, unknown> }): BoxLog {
  const file = new RotatingFile(options.file);
  const streams: pino.StreamEntry[] = [{ level: "trace", stream: file }];
  if (options.stdout) streams.push({ level: "trace", stream: process.stdout });
  const logger = pino(
    {
      level: pinoLevel(options.level),
      base: options.base ?? null,
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: REDACT_PATHS, censor: "[redacted]" },
    },
    pino.multistream(streams),
  );
  return { logger, close: () => file.close() };
}

/** The log files that exist, oldest first: box.log.3, box.log.2, box.log.1, box.log. */
export function logFilesOldestFirst(path: string, keep = LOG_KEEP): string[] {
  const rotated = Array.from({ length: keep }, (_, i) => `${path}.${keep - i}`);
  return [...rotated, path];
}

/**
 * Every line the box still has, oldest first, as one text (Download logs). A file rotated away between
 * listing and reading is skipped: its lines are in the next one.
 */
export async function readAllLogs(path: string, keep = LOG_KEEP): Promise<Buffer> {
  const parts: Buffer[] = [];
  for (const file of logFilesOldestFirst(path, keep)) {
    try {
      parts.push(await readFile(file));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
    }
  }
  return Buffer.concat(parts);
}

/** `boxcert-<name>-<timestamp>.log`, the name reduced to characters safe in a file name. */
export function logDownloadName(boxName: string, now: number): string {
  const safe = boxName.normalize("NFKD").replace(/[^A-Za-z0-9._-]+/g, "-").replace(/^-+|-+$/g, "").slice(0, 60) || "box";
  const stamp = new Date(now).toISOString().replace(/\.\d+Z$/, "Z").replace(/:/g, "");
  return `boxcert-${safe}-${stamp}.log`;
}
