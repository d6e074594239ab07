/**
 * The database's identity, kept in its data folder (docs/erp-server.md "Data dir"):
 *
 *   database.json      {dbUuid, enterpriseCode, kind, createdAt, duplicatedFrom}   0600
 *   database-key.pem   the database key, ECDSA P-256, PKCS#8                       0600
 *
 * Both are made once, at the first start, and kept: the issuer records the key of a database's first
 * report and refuses any other for that UUID, so a key is never replaced silently. database.json is
 * written last and is the commit point: a key without it (a crash during creation) was never reported
 * and is made again.
 */
import { generateKeyPairSync, createPrivateKey, randomUUID, type KeyObject } from "node:crypto";
import { chmod, mkdir, readFile, readdir } from "node:fs/promises";
import { join } from "node:path";
import { writeFileAtomic } from "@boxcert/shared";
import { isDatabaseKind, type DatabaseKind } from "./wire.ts";
import { publicKeyBase64 } from "./signing.ts";

export interface DataPaths {
  dir: string;
  database: string;
  key: string;
  /** The boxes and pairing secrets (store.ts). */
  store: string;
  /** Held by the running process (data-lock.ts). */
  lock: string;
}

export function dataPaths(dir: string): DataPaths {
  return {
    dir,
    database: join(dir, "database.json"),
    key: join(dir, "database-key.pem"),
    store: join(dir, "boxes.json"),
    lock: join(dir, "erp.pid"),
  };
}

/** A data folder that cannot be used as it is; the message names the file and what is wrong. */
export class DataDirError extends Error {
  override readonly name = "DataDirError";
}

export interface DatabaseRecord {
  dbUuid: string;
  enterpriseCode: string;
  kind: DatabaseKind;
  createdAt: string;
  /** The UUID of the database this one was copied from (`boxcert erp duplicate`), else null. */
  duplicatedFrom: string | null;
}

export interface Database {
  readonly record: DatabaseRecord;
  readonly key: KeyObject;
  /** SPKI DER, base64: the `databaseKey` of every report. */
  readonly publicKey: string;
}

/** A subscription code as the box takes it: 1 to 200 printable characters without spaces. */
export function isEnterpriseCode(value: unknown): value is string {
  return typeof value === "string" && /^[\x21-\x7e]{1,200}$/.test(value);
}

export async function ensureDataDir(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await chmod(dir, 0o700);
}

async function readIfPresent(path: string): Promise<string | null> {
  try {
    return await readFile(path, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw new DataDirError(`${path}: cannot be read: ${(err as Error).message}`, { cause: err });
  }
}

function parseRecord(path: string, text: string): DatabaseRecord {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    // The parser's excerpt could quote the subscription code: only say where it is.
    throw new DataDirError(`${path}: not valid JSON; it is never replaced automatically`);
  }
  const r = (typeof raw === "object" && raw !== null ? raw : {}) as Record<string, unknown>;
  const valid =
    typeof r.dbUuid === "string" &&
    r.dbUuid.length > 0 &&
    isEnterpriseCode(r.enterpriseCode) &&
    isDatabaseKind(r.kind) &&
    typeof r.createdAt === "string" &&
    (r.duplicatedFrom === undefined || r.duplicatedFrom === null || typeof r.duplicatedFrom === "string");
  if (!valid) throw new DataDirError(`${path}: must hold dbUuid, enterpriseCode, kind (${"production, staging, development, duplicate"}) and createdAt`);
  return {
    dbUuid: r.dbUuid as string,
    enterpriseCode: r.enterpriseCode as string,
    kind: r.kind as DatabaseKind,
    createdAt: r.createdAt as string,
    duplicatedFrom: (r.duplicatedFrom as string | null | undefined) ?? null,
  };
}

function parseKey(path: string, pem: string): KeyObject {
  let key: KeyObject;
  try {
    key = createPrivateKey(pem);
  } catch (err) {
    throw new DataDirError(`${path}: the database key cannot be parsed (${(err as Error).message}); it is never replaced automatically`, { cause: err });
  }
  if (key.asymmetricKeyType !== "ec" || key.asymmetricKeyDetails?.namedCurve !== "prime256v1") {
    throw new DataDirError(`${path}: the database key is not an ECDSA P-256 key`);
  }
  return key;
}

function database(record: DatabaseRecord, key: KeyObject): Database {
  return { record, key, publicKey: publicKeyBase64(key) };
}

async function writeRecord(paths: DataPaths, record: DatabaseRecord): Promise<void> {
  await writeFileAtomic(paths.database, `${JSON.stringify(record, null, 2)}\n`, 0o600);
}

/** A new key pair and record, written key first (database.json is the commit point). */
export async function createDatabase(paths: DataPaths, record: DatabaseRecord): Promise<Database> {
  const { privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  await writeFileAtomic(paths.key, privateKey.export({ type: "pkcs8", format: "pem" }), 0o600);
  await writeRecord(paths, record);
  return database(record, privateKey);
}

/** The database of a data folder, or null when it has none yet. */
export async function readDatabase(paths: DataPaths): Promise<Database | null> {
  const text = await readIfPresent(paths.database);
  if (text === null) return null;
  const record = parseRecord(paths.database, text);
  const pem = await readIfPresent(paths.key);
  if (pem === null) throw new DataDirError(`${paths.key}: missing; the issuer knows this database by its key, so it is never made again for an existing database`);
  return database(record, parseKey(paths.key, pem));
}

export interface OpenOptions {
  /** Required at creation; when given later and different, the stored one is replaced. */
  enterpriseCode?: string;
  /** production at creation unless given; when given later and different, the stored one is replaced. */
  kind?: DatabaseKind;
  now: number;
}

export interface Opened {
  database: Database;
  created: boolean;
  /** The stored fields a flag changed at this start (for the log, without their values). */
  changed: Array<"kind" | "enterpriseCode">;
}

/** Opens the data folder's database, making it at the first start. */
export async function openDatabase(paths: DataPaths, options: OpenOptions): Promise<Opened> {
  await ensureDataDir(paths.dir);
  const existing = await readDatabase(paths);
  if (existing === null) {
    if (options.enterpriseCode === undefined) throw new DataDirError(`${paths.dir} holds no database yet: give --enterprise-code to create one`);
    const record: DatabaseRecord = {
      dbUuid: randomUUID(),
      enterpriseCode: options.enterpriseCode,
      kind: options.kind ?? "production",
      createdAt: new Date(options.now).toISOString(),
      duplicatedFrom: null,
    };
    return { database: await createDatabase(paths, record), created: true, changed: [] };
  }
  const changed: Opened["changed"] = [];
  const record = { ...existing.record };
  if (options.kind !== undefined && options.kind !== record.kind) {
    record.kind = options.kind;
    changed.push("kind");
  }
  if (options.enterpriseCode !== undefined && options.enterpriseCode !== record.enterpriseCode) {
    record.enterpriseCode = options.enterpriseCode;
    changed.push("enterpriseCode");
  }
  if (changed.length > 0) await writeRecord(paths, record);
  return { database: database(record, existing.key), created: false, changed };
}

/** Refuses a folder that holds anything: a copy never overwrites a database. */
export async function assertEmptyDir(dir: string): Promise<void> {
  let entries: string[];
  try {
    entries = await readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return;
    throw new DataDirError(`${dir}: cannot be read: ${(err as Error).message}`, { cause: err });
  }
  if (entries.length > 0) throw new DataDirError(`${dir} is not empty: a duplicate goes into a new folder`);
}
