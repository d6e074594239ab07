import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomUUID } from "node:crypto";
import { openStore } from "../src/db.ts";
import type { RegistryError } from "../src/registry-error.ts";
import { RegistryOperations } from "../src/operations.ts";
import { IssuanceQueries, type EnrollmentRequest } from "../src/issuance-queries.ts";

/**
 * Operators' actions and the issuance path's queries on one store. Seats are decided here in their simplest
 * form, the lowest free seat of a known database (the issuer's eligibility.ts decides the rest).
 */
function enrollTaking(queries: IssuanceQueries, request: EnrollmentRequest & { enterpriseCode: string }, now = new Date()) {
  return queries.enroll(request, now, (facts) => {
    const seats = facts.subscription?.code === request.enterpriseCode ? facts.subscription.iotBoxSeats : 0;
    let seat: number | null = null;
    for (let s = 1; s <= seats && seat === null; s++) if (!facts.takenSeats.includes(s)) seat = s;
    return { seat, result: { eligible: facts.box !== null || seat !== null } };
  });
}

async function fresh() {
  const store = await openStore(join(mkdtempSync(join(tmpdir(), "boxcert-reg-")), "registry.sqlite"));
  const queries = new IssuanceQueries(store);
  return { store, registry: new RegistryOperations(store), queries, enroll: (request: EnrollmentRequest & { enterpriseCode: string }, now?: Date) => enrollTaking(queries, request, now) };
}

test("migrations are versioned and run once; reopening keeps data", async () => {
  const dir = mkdtempSync(join(tmpdir(), "boxcert-reg-"));
  const path = join(dir, "r.sqlite");
  const a = await openStore(path);
  await new RegistryOperations(a).addSubscription({ code: "S1", state: "in_progress", seats: 1 });
  await a.close();
  const b = await openStore(path);
  assert.equal((await new RegistryOperations(b).listSubscriptions()).length, 1);
  const applied = await b.db.selectFrom("kysely_migration" as never).selectAll().execute();
  assert.deepEqual(
    applied.map((m) => (m as { name: string }).name),
    ["0001_registry", "0002_zone", "0003_locks", "0004_caa_identities", "0005_database_reports", "0006_zone_notify"],
  );
  await b.close();
});

test("subscriptions and databases: add, set, list, clear errors", async () => {
  const { store, registry } = await fresh();
  const sub = await registry.addSubscription({ code: "S1", state: "in_progress", seats: 2 });
  assert.deepEqual([sub.code, sub.state, sub.iotBoxSeats, sub.seatsTaken], ["S1", "in_progress", 2, 0]);
  await assert.rejects(registry.addSubscription({ code: "S1", state: "draft", seats: 0 }), (e: RegistryError) => e.code === "conflict");
  await assert.rejects(registry.addSubscription({ code: "S2", state: "running", seats: 0 }), /unknown subscription state "running"/);
  await assert.rejects(registry.setSubscription("NOPE", { state: "paused" }), /unknown subscription NOPE/);
  assert.equal((await registry.setSubscription("S1", { state: "paused" })).state, "paused");
  const uuid = randomUUID();
  await assert.rejects(registry.addDatabase({ uuid, subscription: "NOPE", kind: "production" }), /unknown subscription NOPE/);
  await assert.rejects(registry.addDatabase({ uuid: "not-a-uuid", subscription: "S1", kind: "production" }), /not a UUID/);
  await assert.rejects(registry.addDatabase({ uuid, subscription: "S1", kind: "prod" }), /unknown database kind "prod"/);
  assert.equal((await registry.addDatabase({ uuid: uuid.toUpperCase(), subscription: "S1", kind: "production" })).uuid, uuid);
  assert.equal((await registry.setDatabase(uuid, { kind: "staging" })).kind, "staging");
  assert.equal((await registry.listDatabases()).length, 1);
  await store.close();
});

test("enroll takes seats in order, is idempotent per identifier, and frees", async () => {
  const { store, registry, enroll } = await fresh();
  await registry.addSubscription({ code: "S1", state: "in_progress", seats: 2 });
  const uuid = randomUUID();
  await registry.addDatabase({ uuid, subscription: "S1", kind: "production" });
  const a = await enroll({ dbUuid: uuid, enterpriseCode: "S1", identifier: "box-a", identityKey: "KA" });
  const again = await enroll({ dbUuid: uuid, enterpriseCode: "S1", identifier: "box-a", identityKey: "KA" });
  assert.equal(a.created, true);
  assert.equal(again.created, false);
  assert.equal(again.box!.label, a.box!.label);
  assert.match(a.box!.label, /^[a-z2-7]{16}$/);
  const b = await enroll({ dbUuid: uuid, enterpriseCode: "S1", identifier: "box-b", identityKey: "KB" });
  assert.equal(b.box!.seat, 2);
  const c = await enroll({ dbUuid: uuid, enterpriseCode: "S1", identifier: "box-c", identityKey: "KC" });
  assert.equal(c.result.eligible, false);
  assert.equal((await registry.getSubscription("S1")).seatsTaken, 2);
  await registry.freeBox(a.box!.label);
  const c2 = await enroll({ dbUuid: uuid, enterpriseCode: "S1", identifier: "box-c", identityKey: "KC" });
  assert.equal(c2.box!.seat, 1);
  assert.equal((await registry.listBoxes()).length, 2);
  assert.equal((await registry.listBoxes({ includeFreed: true })).length, 3);
  await assert.rejects(registry.freeBox(a.box!.label), /no active box/);
  await store.close();
});

test("concurrent enrollments never oversubscribe the last seat", async () => {
  const { store, registry, enroll } = await fresh();
  await registry.addSubscription({ code: "S1", state: "in_progress", seats: 3 });
  const uuid = randomUUID();
  await registry.addDatabase({ uuid, subscription: "S1", kind: "production" });
  const results = await Promise.all(
    Array.from({ length: 10 }, (_, i) => enroll({ dbUuid: uuid, enterpriseCode: "S1", identifier: `box-${i}`, identityKey: `K${i}` })),
  );
  assert.equal(results.filter((r) => r.created).length, 3);
  const seats = (await registry.listBoxes()).map((b) => b.seat).sort();
  assert.deepEqual(seats, [1, 2, 3]);
  await store.close();
});

test("certificates: insert, state window, revoke", async () => {
  const { store, registry, queries, enroll } = await fresh();
  await registry.addSubscription({ code: "S1", state: "in_progress", seats: 1 });
  const uuid = randomUUID();
  await registry.addDatabase({ uuid, subscription: "S1", kind: "production" });
  const { box } = await enroll({ dbUuid: uuid, enterpriseCode: "S1", identifier: "b", identityKey: "K" });
  const now = new Date("2026-01-10T00:00:00Z");
  for (const [serial, day] of [["0a", 1], ["0b", 8]] as const) {
    await queries.insertCertificate({
      boxId: box!.id,
      serial,
      names: ["*.x.test", "x.test"],
      publicKeySha256: `pk-${serial}`,
      chainPem: `PEM ${serial}`,
      source: "embedded",
      notBefore: now,
      notAfter: new Date(now.getTime() + 86400_000),
      renewAfter: now,
      now: new Date(Date.UTC(2026, 0, day)),
    });
  }
  const state = await queries.issuanceState(uuid, "b", new Date("2026-01-05T00:00:00Z"));
  assert.equal(state.issuedSince, 1);
  assert.equal(state.oldestSince, "2026-01-08T00:00:00.000Z");
  assert.equal(state.latest!.publicKeySha256, "pk-0b");
  assert.equal(state.latest!.notAfter, "2026-01-11T00:00:00.000Z");
  const latest = await queries.storedCertificate(state.latest!.id);
  assert.deepEqual(latest, {
    serial: "0b",
    names: ["*.x.test", "x.test"],
    chainPem: "PEM 0b",
    notBefore: now.toISOString(),
    notAfter: "2026-01-11T00:00:00.000Z",
    renewAfter: now.toISOString(),
    publicKeySha256: "pk-0b",
    source: "embedded",
  });
  await registry.revokeCertificate("0B");
  await assert.rejects(registry.revokeCertificate("0b"), /already revoked/);
  await assert.rejects(registry.revokeCertificate("ff"), /unknown certificate ff/);
  assert.equal(await queries.storedCertificate(state.latest!.id), null);
  const after = await queries.issuanceState(uuid, "b", new Date(0));
  assert.equal(after.latest!.publicKeySha256, "pk-0a");
  assert.equal(after.issuedSince, 2, "revoked certificates still count against the rate limit");
  assert.equal(after.oldestSince, "2026-01-01T00:00:00.000Z");
  await store.close();
});

test("issuance state: the eligibility facts are eligibilityFacts()'s, for every kind of box", async () => {
  const { store, registry, queries, enroll } = await fresh();
  await registry.addSubscription({ code: "S1", state: "in_progress", seats: 3 });
  const uuid = randomUUID();
  await registry.addDatabase({ uuid, subscription: "S1", kind: "production" });
  await enroll({ dbUuid: uuid, enterpriseCode: "S1", identifier: "a", identityKey: "KA" });
  const freed = await enroll({ dbUuid: uuid, enterpriseCode: "S1", identifier: "f", identityKey: "KF" });
  await registry.freeBox(freed.box!.label);
  for (const [dbUuid, identifier] of [[uuid, "a"], [uuid.toUpperCase(), "a"], [uuid, "f"], [uuid, "new"], [randomUUID(), "a"]] as const) {
    const state = await queries.issuanceState(dbUuid, identifier, new Date(0));
    assert.deepEqual(state.facts, await queries.eligibilityFacts(dbUuid, identifier), `${dbUuid} ${identifier}`);
    assert.equal(state.latest, null);
    assert.equal(state.issuedSince, 0);
    assert.equal(state.oldestSince, null);
  }
  const enrolled = await queries.issuanceState(uuid, "a", new Date(0));
  assert.equal(enrolled.facts.box!.identityKey, "KA");
  assert.deepEqual((await queries.issuanceState(uuid, "new", new Date(0))).facts.takenSeats, [1]);
  await store.close();
});

test("insertCertificate moves last_seen_at only when asked, in the same commit", async () => {
  const { store, registry, queries, enroll } = await fresh();
  await registry.addSubscription({ code: "S1", state: "in_progress", seats: 1 });
  const uuid = randomUUID();
  await registry.addDatabase({ uuid, subscription: "S1", kind: "production" });
  const enrolledAt = new Date("2026-01-01T00:00:00Z");
  const { box } = await enroll({ dbUuid: uuid, enterpriseCode: "S1", identifier: "b", identityKey: "K" }, enrolledAt);
  const certificate = (serial: string, now: Date) => ({
    boxId: box!.id,
    serial,
    names: ["*.x.test", "x.test"],
    publicKeySha256: "pk",
    chainPem: "PEM",
    source: "embedded",
    notBefore: now,
    notAfter: new Date(now.getTime() + 86400_000),
    renewAfter: now,
    now,
  });
  await queries.insertCertificate(certificate("01", new Date("2026-01-02T00:00:00Z")));
  assert.equal((await queries.issuanceState(uuid, "b", new Date(0))).lastSeenAt, enrolledAt.toISOString());
  await queries.insertCertificate(certificate("02", new Date("2026-01-03T00:00:00Z")), { touchBox: true });
  assert.equal((await queries.issuanceState(uuid, "b", new Date(0))).lastSeenAt, "2026-01-03T00:00:00.000Z");
  assert.equal((await registry.listBoxes())[0]!.lastSeenAt, "2026-01-03T00:00:00.000Z");
  // A failed insert (serial taken) does not move it either.
  await assert.rejects(queries.insertCertificate(certificate("02", new Date("2026-01-04T00:00:00Z")), { touchBox: true }), /UNIQUE/);
  assert.equal((await queries.issuanceState(uuid, "b", new Date(0))).lastSeenAt, "2026-01-03T00:00:00.000Z");
  await store.close();
});
