/**
 * isStoreUnavailable(): which errors mean the store cannot be reached now (the issuer's 503
 * store_unavailable) and which are bugs or refused statements (500). The errors are made by the real
 * things where the test can: PostgreSQL shut down, a server that never answers, SQLite's write lock.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { createServer, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sql } from "kysely";
import Sqlite from "better-sqlite3";
import { openStore, POSTGRES_CONNECT_TIMEOUT_MS } from "../src/db.ts";
import { GroupCommit } from "../src/group-commit.ts";
import { isStoreUnavailable } from "../src/store-unavailable.ts";
import { startPostgres } from "../../../test/support/postgres.ts";
import { freePort } from "../../../test/support/processes.ts";

function coded(code: string, message = "x"): Error {
  return Object.assign(new Error(message), { code });
}

test("connection failures, PostgreSQL's shutdown and connection codes, SQLite's busy and I/O codes are unavailability", () => {
  const unavailable = [
    coded("ECONNREFUSED", "connect ECONNREFUSED 127.0.0.1:5432"),
    coded("ECONNRESET", "read ECONNRESET"),
    coded("ETIMEDOUT"),
    coded("57P01", "terminating connection due to administrator command"),
    coded("57P02", "terminating connection due to crash of another server process"),
    coded("57P03", "the database system is starting up"),
    coded("57P03", "the database system is shutting down"),
    coded("08006", "connection failure"),
    coded("08001"),
    coded("53300", "sorry, too many clients already"),
    coded("57014", "canceling statement due to statement timeout"),
    new Error("Connection terminated unexpectedly"),
    new Error("Connection terminated"),
    new Error("Connection terminated due to connection timeout"),
    new Error("timeout exceeded when trying to connect"),
    new Error("Query read timeout"),
    new Error("Client has encountered a connection error and is not queryable"),
    coded("SQLITE_BUSY", "database is locked"),
    coded("SQLITE_BUSY_SNAPSHOT"),
    coded("SQLITE_IOERR_WRITE", "disk I/O error"),
    coded("SQLITE_READONLY", "attempt to write a readonly database"),
    coded("SQLITE_FULL", "database or disk is full"),
    coded("SQLITE_CANTOPEN", "unable to open database file"),
    // Wrapped: a caller's own message around the driver's error, a connection tried on two addresses.
    new Error("reading the zone", { cause: coded("ECONNREFUSED") }),
    Object.assign(new AggregateError([coded("ECONNREFUSED"), coded("ECONNREFUSED")], ""), { code: undefined }),
  ];
  for (const err of unavailable) assert.equal(isStoreUnavailable(err), true, `${(err as { code?: string }).code ?? ""} ${err.message}`);
});

test("bugs, refused statements and non-errors are not unavailability", () => {
  const others: unknown[] = [
    new Error("Cannot read properties of undefined"),
    new TypeError("x is not a function"),
    coded("23505", "duplicate key value violates unique constraint"),
    coded("42P01", "relation does not exist"),
    coded("40001", "could not serialize access"),
    coded("SQLITE_CONSTRAINT_UNIQUE", "UNIQUE constraint failed"),
    coded("SQLITE_ERROR", "no such table"),
    coded("SQLITE_MISUSE"),
    coded("FST_ERR_CTP_BODY_TOO_LARGE"),
    null,
    undefined,
    "ECONNREFUSED",
    { code: 42 },
  ];
  for (const err of others) assert.equal(isStoreUnavailable(err), false, String((err as Error | null)?.message ?? err));
});

test("SQLite locked by another writer past its busy timeout: SQLITE_BUSY, unavailability", () => {
  const path = join(mkdtempSync(join(tmpdir(), "boxcert-busy-")), "registry.sqlite");
  const holder = new Sqlite(path);
  const other = new Sqlite(path);
  try {
    holder.exec("create table t (x integer)");
    other.pragma("busy_timeout = 0");
    holder.exec("begin immediate");
    let caught: unknown;
    try {
      other.exec("insert into t values (1)");
    } catch (err) {
      caught = err;
    }
    assert.match(String((caught as { code?: string }).code), /^SQLITE_BUSY/);
    assert.equal(isStoreUnavailable(caught), true);
    holder.exec("rollback");
  } finally {
    holder.close();
    other.close();
  }
});

test("a PostgreSQL server that accepts but never answers: the query ends after the connect timeout, as unavailability", async () => {
  const sockets: Socket[] = [];
  const silent = createServer((socket) => sockets.push(socket));
  const port = await freePort();
  await new Promise<void>((resolve) => silent.listen(port, "127.0.0.1", resolve));
  const started = Date.now();
  try {
    await assert.rejects(openStore(`postgres://boxcert@127.0.0.1:${port}/postgres`), (err: unknown) => {
      assert.equal(isStoreUnavailable(err), true, String(err));
      return true;
    });
    const waited = Date.now() - started;
    assert.ok(waited >= POSTGRES_CONNECT_TIMEOUT_MS - 100 && waited < POSTGRES_CONNECT_TIMEOUT_MS * 3, `ended after ${waited} ms`);
  } finally {
    for (const socket of sockets) socket.destroy();
    silent.close();
  }
});

test("PostgreSQL shut down under an open store: queries and a group commit's whole batch fail as unavailability; after start the pool reconnects", async () => {
  const server = await startPostgres();
  const store = await openStore(server.url, { onConnectionError: () => {} });
  try {
    await sql`create table t (x integer primary key)`.execute(store.db);
    const commits = new GroupCommit(store.db, async (trx, x: number) => {
      await sql`insert into t values (${x})`.execute(trx);
    });
    await Promise.all([1, 2, 3].map((x) => commits.add(x)));
    server.shutdown();
    await assert.rejects(sql`select 1`.execute(store.db), (err: unknown) => isStoreUnavailable(err) || assert.fail(String(err)));
    const outcomes = await Promise.allSettled([4, 5, 6].map((x) => commits.add(x)));
    for (const outcome of outcomes) {
      assert.equal(outcome.status, "rejected", "a write that was not committed is never resolved");
      assert.equal(isStoreUnavailable((outcome as PromiseRejectedResult).reason), true, String((outcome as PromiseRejectedResult).reason));
    }
    server.start();
    await commits.add(7);
    const rows = await sql<{ x: number }>`select x from t order by x`.execute(store.db);
    assert.deepEqual(rows.rows.map((r) => r.x), [1, 2, 3, 7]);
  } finally {
    await store.close();
    server.stop();
  }
});
