import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomUUID } from "node:crypto";
import { openStore } from "../src/store/db.ts";
import type { RegistryError } from "../src/registry.ts";
import { Registry } from "../src/registry.ts";

async function fresh() {
  const store = await openStore(join(mkdtempSync(join(tmpdir(), "boxcert-reg-")), "registry.sqlite"));
  return { store, registry: new Registry(store) };
}

test("migrations are versioned and run once; reopening keeps data", async () => {
  const dir = mkdtempSync(join(tmpdir(), "boxcert-reg-"));
  const path = join(dir, "r.sqlite");
  const a = await openStore(path);
  await new Registry(a).addSubscription({ code: "S1", state: "in_progress", seats: 1 });
  await a.close();
  const b = await openStore(path);
  assert.equal((await new Registry(b).listSubscriptions()).length, 1);
  const applied = await b.db.selectFrom("kysely_migration" as never).selectAll().execute();
  assert.equal(applied.length, 1);
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
  const { store, registry } = await fresh();
  await registry.addSubscription({ code: "S1", state: "in_progress", seats: 2 });
  const uuid = randomUUID();
  await registry.addDatabase({ uuid, subscription: "S1", kind: "production" });
  const a = await registry.enroll({ dbUuid: uuid, enterpriseCode: "S1", identifier: "box-a", identityKey: "KA" });
  const again = await registry.enroll({ dbUuid: uuid, enterpriseCode: "S1", identifier: "box-a", identityKey: "KA" });
  assert.equal(a.created, true);
  assert.equal(again.created, false);
  assert.equal(again.box!.label, a.box!.label);
  assert.match(a.box!.label, /^[a-z2-7]{16}$/);
  const b = await registry.enroll({ dbUuid: uuid, enterpriseCode: "S1", identifier: "box-b", identityKey: "KB" });
  assert.equal(b.box!.seat, 2);
  const c = await registry.enroll({ dbUuid: uuid, enterpriseCode: "S1", identifier: "box-c", identityKey: "KC" });
  assert.equal(c.eligibility.eligible, false);
  assert.equal((await registry.getSubscription("S1")).seatsTaken, 2);
  await registry.freeBox(a.box!.label);
  const c2 = await registry.enroll({ dbUuid: uuid, enterpriseCode: "S1", identifier: "box-c", identityKey: "KC" });
  assert.equal(c2.box!.seat, 1);
  assert.equal((await registry.listBoxes()).length, 2);
  assert.equal((await registry.listBoxes({ includeFreed: true })).length, 3);
  await assert.rejects(registry.freeBox(a.box!.label), /no active box/);
  await store.close();
});

test("concurrent enrollments never oversubscribe the last seat", async () => {
  const { store, registry } = await fresh();
  await registry.addSubscription({ code: "S1", state: "in_progress", seats: 3 });
  const uuid = randomUUID();
  await registry.addDatabase({ uuid, subscription: "S1", kind: "production" });
  const results = await Promise.all(
    Array.from({ length: 10 }, (_, i) => registry.enroll({ dbUuid: uuid, enterpriseCode: "S1", identifier: `box-${i}`, identityKey: `K${i}` })),
  );
  assert.equal(results.filter((r) => r.created).length, 3);
  const seats = (await registry.listBoxes()).map((b) => b.seat).sort();
  assert.deepEqual(seats, [1, 2, 3]);
  await store.close();
});

test("certificates: insert, state window, revoke", async () => {
  const { store, registry } = await fresh();
  await registry.addSubscription({ code: "S1", state: "in_progress", seats: 1 });
  const uuid = randomUUID();
  await registry.addDatabase({ uuid, subscription: "S1", kind: "production" });
  const { box } = await registry.enroll({ dbUuid: uuid, enterpriseCode: "S1", identifier: "b", identityKey: "K" });
  const now = new Date("2026-01-10T00:00:00Z");
  for (const [serial, day] of [["0a", 1], ["0b", 8]] as const) {
    await registry.insertCertificate({
      boxId: box!.id,
      serial,
      names: ["*.x.test", "x.test"],
      publicKeySha256: "pk",
      chainPem: "PEM",
      source: "embedded",
      notBefore: now,
      notAfter: new Date(now.getTime() + 86400_000),
      renewAfter: now,
      now: new Date(Date.UTC(2026, 0, day)),
    });
  }
  const state = await registry.certificateState(box!.id, new Date("2026-01-05T00:00:00Z"));
  assert.equal(state.issuedSince, 1);
  assert.equal(state.latest!.serial, "0b");
  await registry.revokeCertificate("0B");
  await assert.rejects(registry.revokeCertificate("0b"), /already revoked/);
  await assert.rejects(registry.revokeCertificate("ff"), /unknown certificate ff/);
  assert.equal((await registry.certificateState(box!.id, new Date(0))).latest!.serial, "0a");
  await store.close();
});
