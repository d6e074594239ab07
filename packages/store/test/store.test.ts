/**
 * The store's hot-path machinery: queries compiled once, group commit, WAL checkpoints in a worker. The
 * issuance path through them also runs on a real PostgreSQL started for the test (or on the empty
 * database BOXCERT_TEST_POSTGRES_URL names).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, statSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomUUID } from "node:crypto";
import { sql } from "kysely";
import { openStore, type Store } from "../src/db.ts";
import { PreparedQuery } from "../src/prepared.ts";
import { GroupCommit } from "../src/group-commit.ts";
import { RegistryOperations } from "../src/operations.ts";
import { IssuanceQueries, type NewCertificate } from "../src/issuance-queries.ts";
import { startPostgres } from "../../../test/support/postgres.ts";
import { ZoneRecords } from "../src/zone-records.ts";

function sqlitePath(): string {
  return join(mkdtempSync(join(tmpdir(), "boxcert-store-")), "registry.sqlite");
}

test("a prepared query binds each value where kysely put it, whatever the clause order", async () => {
  const store = await openStore(sqlitePath());
  await store.db.insertInto("subscriptions").values({ code: "S1", state: "in_progress", iot_box_seats: 3, created_at: "2026-01-01" }).execute();
  await store.db.insertInto("subscriptions").values({ code: "S2", state: "paused", iot_box_seats: 5, created_at: "2026-01-02" }).execute();
  // The select list's value comes first in the SQL text, the where clause's after, the limit's last.
  const query = PreparedQuery.build(["code", "extra"], (v: { code: string; extra: number }) =>
    store.db
      .selectFrom("subscriptions")
      .select((eb) => ["code", "iot_box_seats", eb.val(v.extra).as("extra")])
      .where("code", "=", v.code)
      .limit(1),
  );
  assert.match(query.sql, /^select .* \? as "extra" from .* where "code" = \? limit \?$/);
  assert.deepEqual((await query.execute(store.db, { code: "S2", extra: 7 })).rows, [{ code: "S2", iot_box_seats: 5, extra: 7 }]);
  assert.deepEqual((await query.execute(store.db, { code: "S1", extra: 8 })).rows, [{ code: "S1", iot_box_seats: 3, extra: 8 }]);
  assert.deepEqual((await query.execute(store.db, { code: "nope", extra: 9 })).rows, []);
  assert.throws(
    () => PreparedQuery.build(["code", "unused"], (v: { code: string; unused: string }) => store.db.selectFrom("subscriptions").select("id").where("code", "=", v.code)),
    /never uses unused/,
  );
  await store.close();
});

test("group commit: concurrent writes share one transaction; a failing one fails alone", async () => {
  const store = await openStore(sqlitePath());
  const transactions: number[] = [];
  const commits = new GroupCommit(store.db, async (trx, code: string) => {
    const id = Number((await sql<{ id: number }>`select count(*) as id from subscriptions`.execute(trx)).rows[0]!.id);
    transactions.push(id);
    await trx.insertInto("subscriptions").values({ code, state: "in_progress", iot_box_seats: 1, created_at: "2026-01-01" }).execute();
  });
  await Promise.all(["A", "B", "C"].map((code) => commits.add(code)));
  assert.deepEqual(transactions, [0, 1, 2], "each write sees the ones before it in the batch");
  const outcomes = await Promise.allSettled(["D", "A", "E"].map((code) => commits.add(code)));
  assert.deepEqual(outcomes.map((o) => o.status), ["fulfilled", "rejected", "fulfilled"]);
  assert.match(String((outcomes[1] as PromiseRejectedResult).reason), /UNIQUE/);
  const codes = (await store.db.selectFrom("subscriptions").select("code").orderBy("code").execute()).map((r) => r.code);
  assert.deepEqual(codes, ["A", "B", "C", "D", "E"]);
  await commits.add("F");
  assert.equal((await store.db.selectFrom("subscriptions").select("code").where("code", "=", "F").execute()).length, 1);
  await store.close();
});

test("background checkpoints copy the WAL into the database file; closing removes the WAL", async () => {
  const path = sqlitePath();
  const store = await openStore(path, { backgroundCheckpoints: true });
  const before = statSync(path).size;
  // Far fewer pages than the writer's own automatic checkpoint threshold: only the worker copies them.
  for (let i = 0; i < 20; i++) {
    await store.db
      .insertInto("subscriptions")
      .values({ code: `S${i}`, state: "in_progress", iot_box_seats: 1, created_at: "x".repeat(3000) })
      .execute();
  }
  const deadline = Date.now() + 10_000;
  while (statSync(path).size <= before && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  assert.ok(statSync(path).size > before, "the database file grew without the writer checkpointing");
  await store.close();
  assert.equal(existsSync(`${path}-wal`), false, "the WAL is removed once both connections are closed");
  const reopened = await openStore(path);
  assert.equal((await reopened.db.selectFrom("subscriptions").select("code").execute()).length, 20);
  await reopened.close();
});

test("the certificate path's statements run on PostgreSQL too", async () => {
  // A real server started for this test (test/support/postgres.ts); BOXCERT_TEST_POSTGRES_URL uses another.
  const server = process.env.BOXCERT_TEST_POSTGRES_URL ? null : await startPostgres();
  const store: Store = await openStore(process.env.BOXCERT_TEST_POSTGRES_URL ?? server!.url);
  try {
    const registry = new RegistryOperations(store);
    const queries = new IssuanceQueries(store);
    const code = `PG-${randomUUID()}`;
    await registry.addSubscription({ code, state: "in_progress", seats: 2 });
    const uuid = randomUUID();
    await registry.addDatabase({ uuid, subscription: code, kind: "production" });
    const enrolledAt = new Date("2026-01-01T00:00:00Z");
    // The seat decision is the issuer's; here the first seat, taken under the subscription's row lock.
    const { box } = await queries.enroll({ dbUuid: uuid, identifier: "b", identityKey: "K" }, enrolledAt, (facts) => ({ seat: facts.box ? null : 1, result: null }));
    const notEnrolled = await queries.issuanceState(uuid, "other", new Date(0));
    assert.deepEqual(notEnrolled.facts, await queries.eligibilityFacts(uuid, "other"));
    assert.deepEqual(notEnrolled.facts.takenSeats, [1]);
    const certificate = (serial: string, day: number): NewCertificate => ({
      boxId: box!.id,
      serial,
      names: ["*.x.test", "x.test"],
      publicKeySha256: `pk-${serial}`,
      chainPem: `PEM ${serial}`,
      source: "embedded",
      notBefore: new Date(Date.UTC(2026, 0, day)),
      notAfter: new Date(Date.UTC(2026, 0, day + 1)),
      renewAfter: new Date(Date.UTC(2026, 0, day)),
      now: new Date(Date.UTC(2026, 0, day)),
    });
    const serial = () => randomUUID().replaceAll("-", "");
    const [a, b, c] = [serial(), serial(), serial()];
    await Promise.all([queries.insertCertificate(certificate(a, 2)), queries.insertCertificate(certificate(b, 3), { touchBox: true })]);
    await assert.rejects(queries.insertCertificate(certificate(a, 4)), /duplicate key|unique/i);
    await queries.insertCertificate(certificate(c, 5));
    const state = await queries.issuanceState(uuid.toUpperCase(), "b", new Date(Date.UTC(2026, 0, 3)));
    assert.deepEqual(state.facts, await queries.eligibilityFacts(uuid, "b"));
    assert.equal(state.issuedSince, 2);
    assert.equal(state.oldestSince, "2026-01-03T00:00:00.000Z");
    assert.equal(state.lastSeenAt, "2026-01-03T00:00:00.000Z");
    assert.equal(state.latest!.publicKeySha256, `pk-${c}`);
    assert.equal((await queries.storedCertificate(state.latest!.id))!.serial, c);
    await registry.revokeCertificate(c);
    assert.equal(await queries.storedCertificate(state.latest!.id), null);
    assert.equal((await queries.issuanceState(uuid, "b", new Date(0))).latest!.publicKeySha256, `pk-${b}`);
    // Two issuer processes record a certificate for one box and key at once: one row; the other is told it.
    const other = await openStore(process.env.BOXCERT_TEST_POSTGRES_URL ?? server!.url);
    try {
      const seen = (await queries.issuanceState(uuid, "b", new Date(0))).latest!.id;
      const racing = (s: string): NewCertificate => ({ ...certificate(s, 6), publicKeySha256: "pk-race", latestIdSeen: seen });
      const answers = await Promise.all([queries.insertCertificate(racing(serial())), new IssuanceQueries(other).insertCertificate(racing(serial()))]);
      const rows = await store.db.selectFrom("certificates").select("serial").where("public_key_sha256", "=", "pk-race").execute();
      assert.equal(rows.length, 1, "one certificate recorded");
      assert.deepEqual(answers.map((answer) => (answer === null ? "recorded" : answer.serial)).sort(), ["recorded", rows[0]!.serial].sort());
      // Without the caller's view (latestIdSeen absent) nothing is checked: a tool may record what it likes.
      assert.equal(await queries.insertCertificate({ ...racing(serial()), latestIdSeen: undefined }), null);
    } finally {
      await other.close();
    }
    // The zone version triggers (plpgsql) move on box changes that dns answers from, and only those.
    const records = new ZoneRecords(store.db);
    const before = await records.version();
    await queries.insertCertificate({ boxId: box!.id, serial: "ff01", names: ["a", "b"], publicKeySha256: "x", chainPem: "P", source: "embedded", notBefore: enrolledAt, notAfter: enrolledAt, renewAfter: enrolledAt, now: enrolledAt }, { touchBox: true });
    assert.equal(await records.version(), before, "last_seen_at does not move the zone");
    await records.addChallenge(box!.label, "value-1");
    await registry.revokeBox(box!.label);
    const snapshot = await records.snapshot();
    assert.equal(snapshot.version, before + 2);
    assert.deepEqual(snapshot.challenges.get(box!.label), ["value-1"]);
    assert.ok(!snapshot.activeLabels.has(box!.label));
  } finally {
    await store.close();
    server?.stop();
  }
});

test("PostgreSQL restarted under an open store: the broken idle connections are reported, not thrown, and the next query works", async () => {
  const server = await startPostgres();
  const broken: string[] = [];
  const store = await openStore(server.url, { onConnectionError: (error) => broken.push(error.message) });
  try {
    // Several idle connections in the pool, as a busy issuer has.
    await Promise.all(Array.from({ length: 4 }, () => sql`select pg_sleep(0.05)`.execute(store.db)));
    server.restart();
    // Without the pool's error listener node-postgres throws these as uncaught exceptions and the process ends.
    const deadline = Date.now() + 5000;
    while (broken.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.ok(broken.length > 0, "the pool reported its broken connections");
    assert.match(broken[0]!, /terminat/i);
    const { rows } = await sql<{ one: number }>`select 1 as one`.execute(store.db);
    assert.equal(rows[0]!.one, 1);
  } finally {
    await store.close();
    server.stop();
  }
});
