/**
 * Opens the store by URL: a SQLite file path by default, or a `postgres://` URL, behind one kysely query
 * layer; runs the versioned migrations at start.
 */
import { mkdirSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { CompiledQuery, Kysely, Migrator, PostgresDialect, SqliteAdapter, SqliteDialect, SqliteDriver, type DatabaseConnection, type Driver, type DialectAdapter } from "kysely";
import type { Database } from "./schema.ts";
import type { Database as BetterSqliteDatabase } from "better-sqlite3";
import type { PoolClient } from "pg";
import { migrationProvider } from "./migrations.ts";
import { startBackgroundCheckpoints, type BackgroundCheckpoints } from "./checkpoints.ts";
import { listenZoneChannel, type ZoneChangeListener } from "./zone-changes.ts";

export type Dialect = "sqlite" | "postgres";

export interface Store {
  db: Kysely<Database>;
  dialect: Dialect;
  /** Where the store is, for messages (a file path, or the PostgreSQL URL without its password). */
  location: string;
  /**
   * PostgreSQL: calls `onChange` at once after every commit that moves the zone version (LISTEN on a
   * connection of its own, reopened by itself when it drops; zone-changes.ts). Returns the function that
   * stops listening. SQLite: null (nothing to listen to; the caller polls).
   */
  listenZoneChanges(listener: ZoneChangeListener): (() => Promise<void>) | null;
  /** The schema's migrations in order, when each ran, and whether this open ran it. */
  migrations(): Promise<MigrationState[]>;
  close(): Promise<void>;
}

export interface MigrationState {
  name: string;
  executedAt: string | null;
  /** Run by this open of the store (the others were there already, or another process ran them). */
  ranNow: boolean;
}

type BetterSqlite = BetterSqliteDatabase;

/**
 * kysely's SQLite driver prepares every statement anew, which costs more than running it on the issuance
 * path; the issuer runs a handful of distinct statements, so prepared ones are kept by SQL text. kysely
 * uses one connection behind a mutex, so a statement is never run twice at once.
 */
function withStatementCache(sqlite: BetterSqlite): BetterSqlite {
  const statements = new Map<string, ReturnType<BetterSqlite["prepare"]>>();
  const LIMIT = 500;
  return new Proxy(sqlite, {
    get(target, property, receiver) {
      if (property === "prepare") {
        return (source: string) => {
          let statement = statements.get(source);
          if (!statement) {
            if (statements.size >= LIMIT) statements.clear();
            statement = target.prepare(source);
            statements.set(source, statement);
          }
          return statement;
        };
      }
      const value = Reflect.get(target, property, receiver) as unknown;
      return typeof value === "function" ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}

export function isPostgresUrl(url: string): boolean {
  return /^postgres(ql)?:\/\//.test(url);
}

function redact(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = "***";
    return u.toString();
  } catch {
    return "postgres://(unparseable URL)";
  }
}

/**
 * node-postgres's query_timeout fails a query but leaves it running on its connection, so the next query
 * there (kysely's ROLLBACK after the failed one, or another request's) waits behind it: on a hung server a
 * request would take two timeouts or more. The connection is closed instead, which fails what waits on it
 * at once; the pool replaces it.
 */
function closeOnQueryTimeout(client: PoolClient): void {
  const query = client.query.bind(client) as (...args: unknown[]) => unknown;
  (client as unknown as { query: (...args: unknown[]) => unknown }).query = (...args: unknown[]) => {
    const result = query(...args);
    if (result instanceof Promise) {
      result.catch((err: unknown) => {
        if ((err as Error | undefined)?.message === "Query read timeout") {
          (client as unknown as { connection?: { stream?: { destroy(): void } } }).connection?.stream?.destroy();
        }
      });
    }
    return result;
  };
}

/**
 * Migrations on SQLite, serialised across processes. kysely's SQLite adapter takes no migration lock and
 * runs no transaction (it assumes one connection in one process), so several processes opening a new
 * store at once could each run the first migration ("table subscriptions already exists"). Here the whole
 * run is one BEGIN IMMEDIATE transaction on the store's connection: the write lock is taken before the
 * migrations table is read, the other processes wait for it (busy_timeout) and then find every migration
 * done, and a failed migration rolls back whole (SQLite's DDL is transactional).
 */
class SqliteMigrationDialect extends SqliteDialect {
  constructor(private readonly database: BetterSqlite) {
    super({ database });
  }
  override createDriver(): Driver {
    return new ImmediateSqliteDriver({ database: this.database });
  }
  override createAdapter(): DialectAdapter {
    return new TransactionalSqliteAdapter();
  }
}

class ImmediateSqliteDriver extends SqliteDriver {
  override async beginTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw("begin immediate"));
  }
  /** The connection is the store's, which goes on after the migrations. */
  override async destroy(): Promise<void> {}
}

class TransactionalSqliteAdapter extends SqliteAdapter {
  override get supportsTransactionalDdl(): boolean {
    return true;
  }
}

export interface StoreOptions {
  /**
   * SQLite: checkpoint the WAL in a worker thread rather than in the commit that fills it (checkpoints.ts).
   * For the long-running writer (the issuer); short-lived commands do not need the thread.
   */
  backgroundCheckpoints?: boolean;
  /**
   * PostgreSQL: an idle pooled connection broke (the server restarted, or a proxy cut it). The pool drops
   * that connection and opens a new one at the next query; this only tells the caller, for its log.
   */
  onConnectionError?: (error: Error) => void;
}

/**
 * PostgreSQL: how long a query waits for a connection (a new one, or a free one of the pool) before it
 * fails. While the server is down or unreachable a request ends with this error (the issuer's 503
 * store_unavailable) instead of waiting for ever.
 */
export const POSTGRES_CONNECT_TIMEOUT_MS = 5_000;
/**
 * PostgreSQL: how long one statement may run, on the server (statement_timeout: a statement waiting for a
 * lock, a slow server) and on the client (query_timeout: a server or network that stopped answering).
 * A slow server slows answers; a stuck one ends them with an error after this long, never hangs them.
 * Migrations run on a connection of their own without it (one may rewrite a large table).
 */
export const POSTGRES_STATEMENT_TIMEOUT_MS = 10_000;

export async function openStore(url: string, options: StoreOptions = {}): Promise<Store> {
  let db: Kysely<Database>;
  let migrationDb: Kysely<Database>;
  let sqlite: BetterSqlite | undefined;
  let dialect: Dialect;
  let location: string;
  let poolClosing = () => {};
  let listenZoneChanges: Store["listenZoneChanges"] = () => null;
  if (isPostgresUrl(url)) {
    // pg is imported only here, so an SQLite-only issuer never loads it.
    const pg = (await import("pg")).default;
    dialect = "postgres";
    location = redact(url);
    const pool = new pg.Pool({
      connectionString: url,
      max: 10,
      connectionTimeoutMillis: POSTGRES_CONNECT_TIMEOUT_MS,
      statement_timeout: POSTGRES_STATEMENT_TIMEOUT_MS,
      // A little later than the server's own timeout, so a live server's error (57014) is the one seen.
      query_timeout: POSTGRES_STATEMENT_TIMEOUT_MS + 1_000,
      keepAlive: true,
    });
    // Without a listener, node-postgres rethrows an idle connection's error as an uncaught exception: a
    // PostgreSQL restart would end the process. Connections ending while the pool closes (the server's
    // "terminating connection" can arrive after pool.end() resolves) are expected and not reported.
    let closing = false;
    pool.on("error", (error) => {
      if (!closing) options.onConnectionError?.(error);
    });
    // The pool listens only to its idle connections: one checked out (kysely holds it for a transaction)
    // that breaks between two queries emits "error" with no listener, an uncaught exception that ends the
    // process under load. Its queries fail on their own (the issuer answers them 503), and the pool drops
    // it when it is released (it is no longer queryable); the listener only keeps the process up.
    pool.on("connect", (client) => {
      client.on("error", () => {});
      closeOnQueryTimeout(client);
    });
    poolClosing = () => {
      closing = true;
    };
    db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
    const migrationPool = new pg.Pool({ connectionString: url, max: 1, connectionTimeoutMillis: POSTGRES_CONNECT_TIMEOUT_MS });
    migrationPool.on("error", () => {});
    migrationDb = new Kysely<Database>({ dialect: new PostgresDialect({ pool: migrationPool }) });
    listenZoneChanges = (listener) => listenZoneChannel(pg.Client, url, listener);
  } else {
    const SqliteDatabase = (await import("better-sqlite3")).default;
    dialect = "sqlite";
    location = resolve(url);
    mkdirSync(dirname(location), { recursive: true });
    try {
      sqlite = new SqliteDatabase(location);
      // WAL lets the dns component read while the issuer writes; NORMAL sync in WAL keeps the database
      // consistent across crashes (a power loss may lose the last commits, never corrupt older ones).
      sqlite.pragma("journal_mode = WAL");
      sqlite.pragma("synchronous = NORMAL");
      sqlite.pragma("busy_timeout = 5000");
      sqlite.pragma("foreign_keys = ON");
    } catch (err) {
      throw new Error(`opening the SQLite store ${location}: ${(err as Error).message}`, { cause: err });
    }
    db = new Kysely<Database>({ dialect: new SqliteDialect({ database: withStatementCache(sqlite) }) });
    migrationDb = new Kysely<Database>({ dialect: new SqliteMigrationDialect(sqlite) });
  }
  const migrator = new Migrator({ db, provider: migrationProvider(dialect) });
  let migrated: Awaited<ReturnType<Migrator["migrateToLatest"]>>;
  try {
    migrated = await new Migrator({ db: migrationDb, provider: migrationProvider(dialect) }).migrateToLatest();
  } finally {
    await migrationDb.destroy();
  }
  const { error, results } = migrated;
  if (error) {
    poolClosing();
    await db.destroy();
    const failed = results?.find((r) => r.status === "Error")?.migrationName;
    throw new Error(`migrating the store ${location}${failed ? ` (migration ${failed})` : ""}: ${(error as Error).message}`, {
      cause: error,
    });
  }
  // kysely holds a lock (a row locked in PostgreSQL, SQLite's write lock) while it reads what ran and runs
  // the rest: issuers starting together, or `admin migrate` beside them, each run a migration at most once.
  const ranNow = new Set((results ?? []).filter((r) => r.status === "Success").map((r) => r.migrationName));
  let checkpoints: BackgroundCheckpoints | null = null;
  if (sqlite && options.backgroundCheckpoints) checkpoints = startBackgroundCheckpoints(sqlite, location);
  return {
    db,
    dialect,
    location,
    listenZoneChanges,
    async migrations() {
      return (await migrator.getMigrations()).map((m) => ({ name: m.name, executedAt: m.executedAt?.toISOString() ?? null, ranNow: ranNow.has(m.name) }));
    },
    async close() {
      // The worker's connection closes first, so the writer's close finds itself last and removes the WAL.
      await checkpoints?.stop();
      poolClosing();
      await db.destroy();
    },
  };
}
