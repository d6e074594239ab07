/**
 * The registration with the database on its own (src/database/registration.ts): the pure decision of
 * when one is owed, and the schedule over a fake clock and timers against a small database on a real
 * socket (helpers/test-database.ts): a retry after the backoff and not before, the daily registration,
 * one at a time, a refused pairing secret never sent again.
 */
import { test } from "node:test";
import type { TestContext } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import pino from "pino";
import { readConfig, updateConfig } from "../src/config.ts";
import type { BoxConfig } from "../src/config.ts";
import { dataPaths, ensureDataDir } from "../src/data-dir.ts";
import { loadOrCreateIdentity } from "../src/certificate/identity.ts";
import {
  DatabaseRegistration,
  factsFingerprint,
  nextDailyDelay,
  registeredPatch,
  registrationOwed,
  REGISTRATION_INTERVAL_MS,
} from "../src/database/registration.ts";
import type { RegisteredFacts } from "../src/database/registration.ts";
import type { Timers } from "../src/clock.ts";
import { startTestDatabase } from "./helpers/test-database.ts";
import type { TestDatabase } from "./helpers/test-database.ts";
import { tempDir } from "./helpers/fixture.ts";

const HOUR = 3600_000;
const FACTS: RegisteredFacts = { name: "till-1", ip: "192.168.1.42", httpsUrl: null, certificateExpiry: null, version: "0.1.0", httpPort: 8069 };
const SECRET = randomBytes(32).toString("base64url");

/** Time that moves only when told; timers fire in order as it passes. */
class FakeTime {
  now = Date.now();
  #timers: { at: number; fn: () => void; id: number }[] = [];
  #next = 1;
  clock = (): number => this.now;
  timers: Timers = {
    setTimeout: (fn, ms) => {
      const id = this.#next++;
      this.#timers.push({ at: this.now + ms, fn, id });
      return id;
    },
    clearTimeout: (id) => {
      this.#timers = this.#timers.filter((t) => t.id !== id);
    },
  };
  /** When the earliest pending timer fires, in ms from now; null when none is pending. */
  get nextIn(): number | null {
    const at = Math.min(...this.#timers.map((t) => t.at));
    return Number.isFinite(at) ? at - this.now : null;
  }
  /** Moves time forward, firing the timers due on the way (each callback then runs to its first await). */
  advance(ms: number): void {
    const target = this.now + ms;
    for (;;) {
      const due = this.#timers.filter((t) => t.at <= target).sort((a, b) => a.at - b.at)[0];
      if (!due) break;
      this.#timers = this.#timers.filter((t) => t !== due);
      this.now = due.at;
      due.fn();
    }
    this.now = target;
  }
}

const config = (patch: Partial<BoxConfig>): BoxConfig => ({
  identifier: "c9d633c8-0000-4000-8000-000000000001",
  name: "till-1",
  server: "https://erp.example/",
  dbUuid: "db-1",
  enterpriseCode: "SECRET-CODE-42",
  logLevel: "info",
  label: null,
  zone: null,
  enrolledFor: null,
  expectedZone: null,
  zonePin: null,
  adminPassword: null,
  pairingSecret: null,
  pairedOrigin: null,
  registeredFingerprint: null,
  registeredAt: null,
  ...patch,
});

test("when a registration is owed: a held secret, then changed facts or a day since the last; never without a pairing", () => {
  const now = Date.parse("2026-11-26T10:00:00Z");
  const fingerprint = factsFingerprint(FACTS);
  const registered = { pairedOrigin: "https://erp.example", registeredFingerprint: fingerprint, registeredAt: new Date(now - HOUR).toISOString() };
  const owed = (patch: Partial<BoxConfig>, refusedSecret: string | null = null) => registrationOwed({ config: config(patch), fingerprint, now, refusedSecret });
  assert.equal(owed({}), null, "connected without a pairing secret: cannot register");
  assert.equal(owed({ server: null, pairingSecret: SECRET }), null, "not connected");
  assert.deepEqual(owed({ pairingSecret: SECRET }), { pairing: SECRET, why: "pairing" });
  assert.equal(owed({ pairingSecret: SECRET }, SECRET), null, "a refused secret is not sent again");
  assert.equal(owed(registered), null, "registered an hour ago, nothing changed");
  assert.deepEqual(owed({ ...registered, registeredFingerprint: "other" }), { pairing: null, why: "facts changed" });
  assert.deepEqual(owed({ ...registered, registeredAt: new Date(now - REGISTRATION_INTERVAL_MS).toISOString() }), { pairing: null, why: "daily" });
  assert.equal(owed({ ...registered, server: "https://other.example/" }), null, "registered with another server's database");
  assert.deepEqual(owed({ ...registered, pairingSecret: SECRET }), { pairing: SECRET, why: "pairing" }, "a new pairing with the same database");
  assert.equal(nextDailyDelay(config(registered), now), REGISTRATION_INTERVAL_MS - HOUR);
  assert.equal(nextDailyDelay(config({}), now), null);
  assert.notEqual(factsFingerprint({ ...FACTS, ip: "192.168.1.43" }), fingerprint);
  assert.notEqual(factsFingerprint({ ...FACTS, certificateExpiry: "2027-02-24T10:00:00.000Z" }), fingerprint);
  assert.notEqual(factsFingerprint({ ...FACTS, httpPort: 8080 }), fingerprint, "the HTTP port is a registered fact");
});

test("what a success saves: the origin, the fingerprint, the time; the secret only when it is still the one sent", () => {
  const done = { server: "https://erp.example/", pairing: SECRET, fingerprint: "fp", at: "2026-11-26T10:00:00.000Z" };
  const saved = { pairedOrigin: "https://erp.example", registeredFingerprint: "fp", registeredAt: done.at };
  assert.deepEqual(registeredPatch(config({ pairingSecret: SECRET }), done), { ...saved, pairingSecret: null });
  const newer = randomBytes(32).toString("base64url");
  assert.deepEqual(registeredPatch(config({ pairingSecret: newer }), done), saved, "a connect meanwhile brought another secret: kept");
  assert.deepEqual(registeredPatch(config({ server: "https://other.example/", pairingSecret: SECRET }), done), {}, "connected elsewhere meanwhile");
});

interface Harness {
  time: FakeTime;
  registration: DatabaseRegistration;
  database: TestDatabase;
  config(): Promise<BoxConfig>;
  facts: RegisteredFacts;
}

/** A registration over a temporary data folder connected to a test database, on fake time. */
async function harness(t: TestContext, patch: (database: TestDatabase) => Partial<BoxConfig>): Promise<Harness> {
  const time = new FakeTime();
  const database = await startTestDatabase({ clock: time.clock });
  const temp = await tempDir();
  const paths = dataPaths(temp.dir);
  await ensureDataDir(paths);
  await updateConfig(paths, { server: database.url, dbUuid: "db-1", enterpriseCode: "SECRET-CODE-42", ...patch(database) });
  const facts = { ...FACTS };
  const registration = new DatabaseRegistration({
    identity: await loadOrCreateIdentity(paths),
    clock: time.clock,
    timers: time.timers,
    logger: pino({ level: "silent" }),
    random: () => 0.5,
    config: async () => (await readConfig(paths)) as BoxConfig,
    changeConfig: (update) => updateConfig(paths, update),
    facts: () => facts,
  });
  t.after(async () => {
    await registration.stop();
    await database.close();
    await temp.cleanup();
  });
  return { time, registration, database, config: async () => (await readConfig(paths)) as BoxConfig, facts };
}

test("a failure is retried after the backoff, not at every check; then the daily registration", async (t) => {
  const h = await harness(t, (database) => ({ pairingSecret: database.issuePairing() }));
  let unavailable = true;
  h.database.override = () => (unavailable ? { status: 503, body: { error: { code: "maintenance", message: "back soon" } } } : null);
  h.registration.nudge();
  await h.registration.settled();
  assert.equal(h.database.registrations.length, 1);
  assert.deepEqual(h.registration.view(await h.config()).problem, {
    kind: "failed",
    detail: `registering with ${h.database.origin}: the database answered HTTP 503 Service Unavailable: back soon (maintenance)`,
  });
  assert.equal(h.time.nextIn, 60_000, "RENEWAL_BACKOFF's first step (no jitter)");

  h.registration.nudge();
  await h.registration.settled();
  assert.equal(h.database.registrations.length, 1, "a check during the backoff does not retry the same registration");

  unavailable = false;
  h.time.advance(60_000);
  await h.registration.settled();
  assert.equal(h.database.registrations.length, 2, "retried when the backoff ran out");
  assert.equal(h.database.registrations[1]?.status, 200);
  assert.ok(typeof h.database.registrations[1]?.body.pairing === "string", "still the first registration: with the secret");
  const saved = await h.config();
  assert.equal(saved.pairingSecret, null);
  assert.equal(saved.pairedOrigin, h.database.origin);
  assert.deepEqual(h.registration.view(saved), { registered: true, registeredAt: saved.registeredAt, pairingHeld: false, problem: null });

  assert.equal(h.time.nextIn, REGISTRATION_INTERVAL_MS, "the next one a day later");
  h.time.advance(REGISTRATION_INTERVAL_MS - 1);
  await h.registration.settled();
  assert.equal(h.database.registrations.length, 2);
  h.time.advance(1);
  await h.registration.settled();
  assert.equal(h.database.registrations.length, 3, "the daily registration");
  assert.equal(h.database.registrations[2]?.status, 200);
  assert.equal(h.database.registrations[2]?.body.pairing, undefined);
});

test("a check that changes a fact during the backoff registers it at once", async (t) => {
  const h = await harness(t, (database) => ({ pairingSecret: database.issuePairing() }));
  let calls = 0;
  h.database.override = () => (++calls === 1 ? { status: 500, body: {} } : null);
  h.registration.nudge();
  await h.registration.settled();
  h.facts.ip = "192.168.1.43";
  h.registration.nudge();
  await h.registration.settled();
  assert.deepEqual(h.database.registrations.map((r) => [r.status, r.body.ip]), [[500, "192.168.1.42"], [200, "192.168.1.43"]]);
});

test("never two registrations at once: a nudge during one makes it look again when it ends", async (t) => {
  const h = await harness(t, (database) => ({ pairingSecret: database.issuePairing() }));
  let changed = false;
  // While the first registration is at the database: the name changes and two checks end.
  h.database.override = () => {
    if (!changed) {
      changed = true;
      h.facts.name = "till-2";
      h.registration.nudge();
      h.registration.nudge();
    }
    return null;
  };
  h.registration.nudge();
  await h.registration.settled();
  assert.equal(h.database.maxInFlight, 1);
  assert.deepEqual(
    h.database.registrations.map((r) => [r.body.name, typeof r.body.pairing]),
    [["till-1", "string"], ["till-2", "undefined"]],
    "the first with the secret, then the changed name without it",
  );
});

test("a pairing secret the database refuses is not sent again, and no retry is planned", async (t) => {
  const h = await harness(t, () => ({ pairingSecret: SECRET }));
  h.registration.nudge();
  await h.registration.settled();
  assert.equal(h.database.registrations[0]?.status, 403);
  const held = await h.config();
  assert.deepEqual(h.registration.view(held).problem, { kind: "refused", code: "pairing_invalid", detail: "unknown, used or expired pairing secret" });
  assert.equal(h.time.nextIn, null, "no retry planned");
  h.registration.nudge();
  await h.registration.settled();
  h.time.advance(REGISTRATION_INTERVAL_MS * 2);
  await h.registration.settled();
  assert.equal(h.database.registrations.length, 1, "not retried");
});

test("a 200 that does not say registered is a failure; a longer Retry-After than the backoff is honoured", async (t) => {
  const h = await harness(t, (database) => ({ pairingSecret: database.issuePairing() }));
  h.database.override = () => ({ status: 200, body: { ok: true }, headers: { "retry-after": "3600" } });
  h.registration.nudge();
  await h.registration.settled();
  const config = await h.config();
  assert.notEqual(config.pairingSecret, null, "not taken for a registration");
  assert.deepEqual(h.registration.view(config).problem, {
    kind: "failed",
    detail: `registering with ${h.database.origin}: the database answered HTTP 200 without {"registered": true}`,
  });
  assert.equal(h.time.nextIn, HOUR, "the database's Retry-After, an hour, over the backoff's minute");
});
