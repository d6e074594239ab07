/**
 * The database's boxes and pairing secrets: one small JSON file (boxes.json, 0600) in the data folder.
 *
 * Why a JSON file and not SQLite: the database holds a few dozen boxes (a subscription's seats) and a
 * few pairing secrets, written when a box registers (a few times a day each); a file rewritten whole is
 * simpler than a schema and keeps the erp free of native modules (better-sqlite3 compiles on install).
 *
 * Every change is one transaction: it runs on a copy of the state, one at a time in this process (a
 * promise queue), and is committed by writing the whole file atomically (writeFileAtomic: temporary
 * file, fsync, rename, fsync of the folder); only then does the copy become the state. A crash at any
 * moment leaves the old file or the new one, never a torn one, and a failed write leaves the state as
 * it was. One process per data folder (data-lock.ts) makes this the only writer.
 */
import { readdir, readFile, unlink } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { writeFileAtomic, type BoxRegistration } from "@boxcert/shared";

/**
 * A paired box: the facts of its last registration (the key in `identityKey` signs every later one; an
 * `httpPort` is absent in records of boxes that did not send it), when it paired and when it was last seen.
 */
export type BoxRecord = Omit<BoxRegistration, "timestamp" | "pairing"> & {
  pairedAt: string;
  lastSeen: string;
};

/** A pairing secret handed out and not used yet; only its SHA-256 is kept (the secret is in the token). */
export interface PairingRecord {
  hash: string;
  createdAt: string;
  expiresAt: string;
}

export interface StoreData {
  boxes: BoxRecord[];
  pairings: PairingRecord[];
}

const FORMAT_VERSION = 1;

export class StoreError extends Error {
  override readonly name = "StoreError";
}

/** What a transaction returns: its result, and whether the state changed (and must be written). */
export interface Change<T> {
  result: T;
  write: boolean;
}

function isNullableString(value: unknown): boolean {
  return value === null || typeof value === "string";
}

function isPort(value: unknown): boolean {
  return Number.isInteger(value) && (value as number) >= 1 && (value as number) <= 65535;
}

function isBoxRecord(value: unknown): value is BoxRecord {
  const b = value as Record<string, unknown>;
  return (
    typeof b === "object" &&
    b !== null &&
    ["identifier", "identityKey", "name", "ip", "version", "pairedAt", "lastSeen"].every((field) => typeof b[field] === "string") &&
    isNullableString(b.httpsUrl) &&
    isNullableString(b.certificateExpiry) &&
    (b.httpPort === undefined || isPort(b.httpPort))
  );
}

function isPairingRecord(value: unknown): value is PairingRecord {
  const p = value as Record<string, unknown>;
  return typeof p === "object" && p !== null && ["hash", "createdAt", "expiresAt"].every((field) => typeof p[field] === "string");
}

export function parseStore(path: string, text: string): StoreData {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new StoreError(`${path}: not valid JSON; it is never replaced automatically`);
  }
  const r = (typeof raw === "object" && raw !== null ? raw : {}) as Record<string, unknown>;
  if (r.version !== FORMAT_VERSION) throw new StoreError(`${path}: format version ${String(r.version)} is not ${FORMAT_VERSION}`);
  if (!Array.isArray(r.boxes) || !r.boxes.every(isBoxRecord)) throw new StoreError(`${path}: "boxes" is not a list of boxes`);
  if (!Array.isArray(r.pairings) || !r.pairings.every(isPairingRecord)) throw new StoreError(`${path}: "pairings" is not a list of pairing secrets`);
  return { boxes: r.boxes, pairings: r.pairings };
}

export function serializeStore(data: StoreData): string {
  return `${JSON.stringify({ version: FORMAT_VERSION, boxes: data.boxes, pairings: data.pairings }, null, 2)}\n`;
}

/** Temporary files of writes a crash interrupted (writeFileAtomic names them `.<name>.<random>.tmp`). */
async function removeInterruptedWrites(path: string): Promise<void> {
  const prefix = `.${basename(path)}.`;
  for (const entry of await readdir(dirname(path))) {
    if (entry.startsWith(prefix) && entry.endsWith(".tmp")) await unlink(join(dirname(path), entry)).catch(() => undefined);
  }
}

export async function readStoreFile(path: string): Promise<StoreData> {
  try {
    return parseStore(path, await readFile(path, "utf8"));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return { boxes: [], pairings: [] };
    if (err instanceof StoreError) throw err;
    throw new StoreError(`${path}: cannot be read: ${(err as Error).message}`, { cause: err });
  }
}

export class JsonStore {
  readonly path: string;
  #data: StoreData;
  #queue: Promise<unknown> = Promise.resolve();

  private constructor(path: string, data: StoreData) {
    this.path = path;
    this.#data = data;
  }

  static async open(path: string): Promise<JsonStore> {
    await removeInterruptedWrites(path);
    return new JsonStore(path, await readStoreFile(path));
  }

  /** The committed state. Read-only: changes go through change(). */
  get data(): Readonly<StoreData> {
    return this.#data;
  }

  /** Runs `fn` on a copy of the state after every earlier change; commits the copy when it says so. */
  change<T>(fn: (draft: StoreData) => Change<T>): Promise<T> {
    const run = async (): Promise<T> => {
      const draft = structuredClone(this.#data);
      const { result, write } = fn(draft);
      if (write) {
        await writeFileAtomic(this.path, serializeStore(draft), 0o600);
        this.#data = draft;
      }
      return result;
    };
    const next = this.#queue.then(run, run);
    this.#queue = next.catch(() => undefined);
    return next;
  }

  /** Resolves when every change asked for so far is done (a clean stop). */
  async settled(): Promise<void> {
    await this.#queue;
  }
}
