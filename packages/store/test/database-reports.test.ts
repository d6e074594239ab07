/**
 * What databases' reports changed in the store, on SQLite and on a real PostgreSQL started for the test:
 * migration 0005 on a store made at the version before, the report's locked read-decide-write, and the
 * operators' rule that a subscription has at most one production database.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomUUID } from "node:crypto";
import { Kysely, Migrator, PostgresDialect, SqliteDialect, sql } from "kysely";
import SqliteDatabase from "better-sqlite3";
import pg from "pg";
import { openStore, type Dialect, type Store } from "../src/db.ts";
import { migrationProvider } from "../src/migrations.ts";
import { RegistryOperations } from "../src/operations.ts";
import { DatabaseReportQueries, type DatabaseReportFacts } from "../src/database-report-queries.ts";
import type { Database, DatabaseKind } from "../src/schema.ts";
import { lockSubscription } from "../src/subscription-lock.ts";
import { startPostgres, type Postgres } from "../../../test/support/postgres.ts";

const PREVIOUS_VERSION = "0004_caa_identities";

interface Engine {
  dialect: Dialect;
  /** A URL of an empty store of this engine. */
  emptyStore(): Promise<string>;
}

let postgres: Postgres | undefined;
let postgresDatabases = 0;

const ENGINES: Engine[] = [
  {
    dialect: "sqlite",
    async emptyStore() {
      return join(mkdtempSync(join(tmpdir(), "boxcert-dbreports-")), "registry.sqlite");
    },
  },
  {
    dialect: "postgres",
    async emptyStore() {
      postgres ??= await startPostgres();
      // A database per test, so each starts from an empty schema.
      const name = `t${++postgresDatabases}`;
      const admin = new pg.Client({ connectionString: postgres.url });
      await admin.connect();
      await admin.query(`CREATE DATABASE ${name}`);
      await admin.end();
      return postgres.url.replace(/\/postgres$/, `/${name}`);
    },
  },
];

after(() => postgres?.stop());

/** A store migrated only up to `version`, as an issuer of that version left it. */
async function storeAtVersion(url: string, dialect: Dialect, version: string): Promise<Kysely<Database>> {
  const db =
    dialect === "postgres"
      ? new Kysely<Database>({ dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: url, max: 2 }) }) })
      : new Kysely<Database>({ dialect: new SqliteDialect({ database: new SqliteDatabase(url) }) });
  const { error } = await new Migrator({ db, provider: migrationProvider(dialect) }).migrateTo(version);
  if (error) throw error;
  return db;
}

/** A decision that records what is claimed: the rules are the issuer's (its database-report.test.ts). */
function recordClaim(kind: DatabaseKind, seen: DatabaseReportFacts[]) {
  return (facts: DatabaseReportFacts) => {
    seen.push(facts);
    return { kind: facts.subscription ? kind : null, result: facts };
  };
}

for (const engine of ENGINES) {
  describe(`database reports in the store on ${engine.dialect}`, () => {
    let store: Store;
    let registry: RegistryOperations;

    before(async () => {
      store = await openStore(await engine.emptyStore());
      registry = new RegistryOperations(store);
    });
    after(() => store?.close());

    test("a store made at the previous schema version keeps its rows, and its databases have no key and no report yet", async () => {
      const url = await engine.emptyStore();
      const old = await storeAtVersion(url, engine.dialect, PREVIOUS_VERSION);
      const uuid = randomUUID();
      // Without the new columns: what the previous version wrote.
      const oldDb = old as unknown as Kysely<{ subscriptions: Database["subscriptions"]; databases: Omit<Database["databases"], "database_key" | "reported_at">; boxes: Database["boxes"] }>;
      const { id: subscriptionId } = await oldDb.insertInto("subscriptions").values({ code: "OLD-1", state: "in_progress", iot_box_seats: 2, created_at: "2026-01-01T00:00:00.000Z" }).returning("id").executeTakeFirstOrThrow();
      const { id: databaseId } = await oldDb.insertInto("databases").values({ uuid, subscription_id: subscriptionId, kind: "production", created_at: "2026-01-02T00:00:00.000Z" }).returning("id").executeTakeFirstOrThrow();
      await oldDb.insertInto("boxes").values({ database_id: databaseId, identifier: "b", label: "oldlabel", identity_key: "K", seat: 1, created_at: "2026-01-03T00:00:00.000Z", last_seen_at: "2026-01-03T00:00:00.000Z" }).execute();
      await old.destroy();

      const migrated = await openStore(url);
      try {
        const operations = new RegistryOperations(migrated);
        assert.deepEqual(await operations.listDatabases(), [
          { uuid, subscription: "OLD-1", kind: "production", keyRecorded: false, reportedAt: null, createdAt: "2026-01-02T00:00:00.000Z" },
        ]);
        assert.deepEqual((await operations.listSubscriptions()).map((s) => [s.code, s.seatsTaken]), [["OLD-1", 1]]);
        assert.deepEqual((await operations.listBoxes()).map((b) => [b.label, b.database]), [["oldlabel", uuid]]);
        const applied = await migrated.db.selectFrom("kysely_migration" as never).select("name" as never).execute();
        assert.deepEqual((applied as Array<{ name: string }>).map((m) => m.name).at(-1), "0006_zone_notify");
        // The operator-added database records the key of its first report.
        const seen: DatabaseReportFacts[] = [];
        await new DatabaseReportQueries(migrated).report({ dbUuid: uuid, enterpriseCode: "OLD-1", databaseKey: "KEY" }, new Date("2026-02-01T00:00:00Z"), recordClaim("production", seen));
        assert.deepEqual(seen[0]!.database, { subscriptionId, kind: "production", databaseKey: null });
        assert.deepEqual((await operations.getDatabase(uuid)).reportedAt, "2026-02-01T00:00:00.000Z");
      } finally {
        await migrated.close();
      }
    });

    test("a report reads its facts and writes the decided kind, key and time; a refusal writes nothing", async () => {
      const code = `S-${randomUUID()}`;
      await registry.addSubscription({ code, state: "paused", seats: 0 });
      const queries = new DatabaseReportQueries(store);
      const uuid = randomUUID();
      const seen: DatabaseReportFacts[] = [];
      const at = new Date("2026-03-01T00:00:00Z");
      await queries.report({ dbUuid: uuid.toUpperCase(), enterpriseCode: code, databaseKey: "K1" }, at, recordClaim("staging", seen));
      assert.deepEqual(seen[0]!.database, null);
      assert.equal(seen[0]!.subscription?.state, "paused");
      assert.equal(seen[0]!.hasProduction, false);
      assert.deepEqual(await registry.getDatabase(uuid), { uuid, subscription: code, kind: "staging", keyRecorded: true, reportedAt: at.toISOString(), createdAt: at.toISOString() });
      await queries.report({ dbUuid: uuid, enterpriseCode: code, databaseKey: "K1" }, new Date("2026-03-02T00:00:00Z"), recordClaim("production", seen));
      assert.equal(seen[1]!.database?.databaseKey, "K1");
      assert.equal(seen[1]!.hasProduction, false);
      assert.equal((await registry.getDatabase(uuid)).kind, "production");
      await queries.report({ dbUuid: randomUUID(), enterpriseCode: code, databaseKey: "K2" }, at, recordClaim("staging", seen));
      assert.equal(seen[2]!.hasProduction, true);
      const before = await registry.listDatabases();
      const refused = await queries.report({ dbUuid: randomUUID(), enterpriseCode: "NO-SUCH", databaseKey: "K3" }, at, recordClaim("production", seen));
      assert.equal(refused.subscription, null);
      await queries.report({ dbUuid: uuid, enterpriseCode: code, databaseKey: "K4" }, at, () => ({ kind: null, result: null }));
      assert.deepEqual(await registry.listDatabases(), before, "nothing written");
    });

    test("a subscription has at most one production database: add and set refuse a second one", async () => {
      const code = `S-${randomUUID()}`;
      const other = `S-${randomUUID()}`;
      await registry.addSubscription({ code, state: "in_progress", seats: 1 });
      await registry.addSubscription({ code: other, state: "in_progress", seats: 1 });
      const [a, b, c] = [randomUUID(), randomUUID(), randomUUID()] as [string, string, string];
      await registry.addDatabase({ uuid: a, subscription: code, kind: "production" });
      const refusal = new RegExp(`subscription ${code} already has a production database \\(${a}\\); a subscription has at most one`);
      await assert.rejects(registry.addDatabase({ uuid: b, subscription: code, kind: "production" }), (e: Error & { code?: string }) => refusal.test(e.message) && e.code === "conflict");
      await registry.addDatabase({ uuid: b, subscription: code, kind: "duplicate" });
      await assert.rejects(registry.setDatabase(b, { kind: "production" }), refusal);
      await registry.addDatabase({ uuid: c, subscription: other, kind: "production" });
      await assert.rejects(registry.setDatabase(c, { subscription: code }), refusal, "moving a production database in");
      await assert.rejects(registry.setDatabase(randomUUID(), { kind: "staging" }), /unknown database/);
      await assert.rejects(registry.setDatabase(b, { subscription: "NO-SUCH" }), /unknown subscription NO-SUCH/);
      assert.equal((await registry.setDatabase(a, { kind: "production" })).kind, "production", "the production one stays production");
      // The operator decides: the other one's kind first, then this one.
      await registry.setDatabase(a, { kind: "duplicate" });
      assert.equal((await registry.setDatabase(b, { kind: "production" })).kind, "production");
      assert.deepEqual(
        (await registry.listDatabases()).filter((d) => [a, b, c].includes(d.uuid)).map((d) => [d.uuid, d.subscription, d.kind]).sort(),
        [[a, code, "duplicate"], [b, code, "production"], [c, other, "production"]].sort(),
      );
      await assert.rejects(registry.addDatabase({ uuid: a, subscription: other, kind: "staging" }), /already exists/);
    });

    test("concurrent operators and reports: one production database", async () => {
      const code = `S-${randomUUID()}`;
      await registry.addSubscription({ code, state: "in_progress", seats: 1 });
      const queries = new DatabaseReportQueries(store);
      const production = (facts: DatabaseReportFacts) => ({ kind: facts.hasProduction ? ("duplicate" as const) : ("production" as const), result: null });
      const outcomes = await Promise.allSettled([
        ...Array.from({ length: 10 }, () => registry.addDatabase({ uuid: randomUUID(), subscription: code, kind: "production" })),
        ...Array.from({ length: 10 }, () => queries.report({ dbUuid: randomUUID(), enterpriseCode: code, databaseKey: "K" }, new Date(), production)),
      ]);
      for (const outcome of outcomes) if (outcome.status === "rejected") assert.match(String(outcome.reason), /at most one/);
      const kinds = (await registry.listDatabases()).filter((d) => d.subscription === code).map((d) => d.kind);
      assert.equal(kinds.filter((k) => k === "production").length, 1, kinds.join(","));
    });
  });
}

// PostgreSQL only: on SQLite, a second connection in this process would block the thread (better-sqlite3 is
// synchronous) while the lock's holder needs that thread to commit; test/database-report.test.ts runs
// issuer processes on one SQLite file instead.
describe("the subscription's lock on PostgreSQL", () => {
  let store: Store;
  let registry: RegistryOperations;
  before(async () => {
    store = await openStore(await ENGINES.find((e) => e.dialect === "postgres")!.emptyStore());
    registry = new RegistryOperations(store);
  });
  after(() => store?.close());

  /** Each prepares what it needs before the lock is held, and returns what then contends for it. */
  const contenders: Array<[string, (code: string) => Promise<() => Promise<unknown>>]> = [
    ["admin database add", async (code) => () => registry.addDatabase({ uuid: randomUUID(), subscription: code, kind: "production" })],
    ["admin database set", async (code) => {
      const uuid = randomUUID();
      await registry.addDatabase({ uuid, subscription: code, kind: "staging" });
      return () => registry.setDatabase(uuid, { kind: "production" });
    }],
    ["a report", async (code) => () =>
      new DatabaseReportQueries(store).report({ dbUuid: randomUUID(), enterpriseCode: code, databaseKey: "K" }, new Date(), (facts) => {
        if (facts.hasProduction) throw new Error("at most one: the report saw the production database");
        return { kind: "production", result: null };
      })],
  ];

  for (const [name, prepare] of contenders) {
    test(`${name} waits for the subscription's lock, then sees the production database its holder added`, async () => {
      const code = `S-${randomUUID()}`;
      await registry.addSubscription({ code, state: "in_progress", seats: 1 });
      const outcome = await contendWithHeldLock(store, code, await prepare(code));
      assert.equal(outcome.status, "rejected", `${name} did not wait for the lock`);
      assert.match(String((outcome as PromiseRejectedResult).reason), /at most one/);
    });
  }
});

/**
 * Holds `code`'s subscription lock in a transaction that has added an uncommitted production database,
 * starts `contend`, and commits once the contender waits for a lock or has finished without waiting.
 */
async function contendWithHeldLock(store: Store, code: string, contend: () => Promise<unknown>): Promise<PromiseSettledResult<unknown>> {
  let locked!: () => void;
  let release!: () => void;
  const holding = new Promise<void>((resolve) => (locked = resolve));
  const released = new Promise<void>((resolve) => (release = resolve));
  const holder = store.db.transaction().execute(async (trx) => {
    const subscription = await lockSubscription(trx, store.dialect, { code });
    await trx.insertInto("databases").values({ uuid: randomUUID(), subscription_id: subscription!.id, kind: "production", created_at: new Date().toISOString() }).execute();
    locked();
    await released;
  });
  await holding;
  let settled = false;
  const contender = Promise.allSettled([contend()]).then(([outcome]) => ((settled = true), outcome!));
  while (!settled && !(await someoneWaitsForALock(store))) await new Promise((resolve) => setTimeout(resolve, 10));
  release();
  await holder;
  return contender;
}

async function someoneWaitsForALock(store: Store): Promise<boolean> {
  const { rows } = await sql<{ n: string }>`SELECT count(*) AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock'`.execute(store.db);
  return Number(rows[0]!.n) > 0;
}
