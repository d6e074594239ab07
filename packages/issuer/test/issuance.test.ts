/**
 * The issuance path without HTTP: Issuance driven directly over a real SQLite store in a temporary folder,
 * with the embedded CA (or a tiny fake source where the CA must fail), and a clock the tests move.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomUUID } from "node:crypto";
import pino from "pino";
import type { CertificateResponse, EnrollResponse } from "@boxcert/shared";
import { openStore, RegistryOperations, type Store } from "@boxcert/store";
import { Issuance, type Outcome, type SignedInput } from "../src/issuance.ts";
import { issuanceRecords } from "../src/issuance-records.ts";
import { EmbeddedCa } from "../src/embedded-ca.ts";
import { SourceRefusedError, SourceUnavailableError, type CertificateSource, type IssueRequest, type IssuedCertificate } from "../src/certificate-source.ts";
import { credentials, makeCsr, makeTlsKey, scriptedBox, signBody, type ScriptedBox, type TlsKey } from "../../../test/support/box-client.ts";

const ZONE = "boxcert.test";
const DAY_MS = 86_400_000;

interface World {
  store: Store;
  operations: RegistryOperations;
  issuance: Issuance;
  /** The issuer's clock; tests move it. */
  clock: { now: number };
  ca: EmbeddedCa;
}

let sharedCa: EmbeddedCa | undefined;

async function world(options: { maxCertificatesPerWeek?: number; source?: CertificateSource } = {}): Promise<World> {
  const dir = mkdtempSync(join(tmpdir(), "boxcert-issuance-"));
  const store = await openStore(join(dir, "registry.sqlite"));
  // One CA for the whole file: making one costs more than every test here.
  sharedCa ??= await EmbeddedCa.loadOrCreate(join(dir, "keys"));
  const clock = { now: Date.parse("2026-03-02T10:00:00Z") };
  const issuance = new Issuance({
    records: issuanceRecords(store),
    source: options.source ?? sharedCa,
    zone: ZONE,
    lifetimeMs: 90 * DAY_MS,
    maxCertificatesPerWeek: options.maxCertificatesPerWeek ?? 10,
    clock: () => clock.now,
    logger: pino({ level: "silent" }),
    random: () => 0.5,
  });
  return { store, operations: new RegistryOperations(store), issuance, clock, ca: sharedCa };
}

/** A subscription with `seats` seats and one database of `kind`; returns the database UUID. */
async function customer(w: World, code: string, seats: number, kind = "production", state = "in_progress"): Promise<string> {
  const uuid = randomUUID();
  await w.operations.addSubscription({ code, state, seats });
  await w.operations.addDatabase({ uuid, subscription: code, kind });
  return uuid;
}

function signed<T extends object>(w: World, box: ScriptedBox, extra: T): SignedInput & T {
  const fields = { ...credentials(box, new Date(w.clock.now)), ...extra };
  const body = JSON.stringify(fields);
  return { ...fields, raw: Buffer.from(body), signature: signBody(box, body) };
}

function enroll(w: World, box: ScriptedBox): Promise<Outcome<EnrollResponse>> {
  return w.issuance.enroll(signed(w, box, {}));
}

async function certificate(w: World, box: ScriptedBox, label: string, key: TlsKey, names?: string[]): Promise<Outcome<CertificateResponse>> {
  const csr = await makeCsr(key, names ?? [`*.${label}.${ZONE}`, `${label}.${ZONE}`]);
  return w.issuance.certificate(signed(w, box, { label, csr }));
}

function ok<T>(outcome: Outcome<T>): T {
  assert.equal(outcome.kind, "ok", JSON.stringify(outcome));
  return (outcome as { body: T }).body;
}

async function enrolled(w: World, code = "S1", seats = 2): Promise<{ box: ScriptedBox; label: string; dbUuid: string }> {
  const dbUuid = await customer(w, code, seats);
  const box = scriptedBox(dbUuid, code);
  return { box, label: ok(await enroll(w, box)).label, dbUuid };
}

/** Every table the issuance path writes, as one string. */
async function tables(store: Store): Promise<string> {
  const all = await Promise.all((["subscriptions", "databases", "boxes", "certificates", "locks"] as const).map((t) => store.db.selectFrom(t).selectAll().execute()));
  return JSON.stringify(all);
}

test("enroll, then a first certificate for the names the box is owed", async () => {
  const w = await world();
  const { box, label } = await enrolled(w);
  assert.match(label, /^[a-z2-7]{16}$/);
  assert.equal(ok(await enroll(w, box)).label, label, "enrolling again is idempotent");
  const body = ok(await certificate(w, box, label, await makeTlsKey()));
  assert.deepEqual(body.names, [`*.${label}.${ZONE}`, `${label}.${ZONE}`]);
  assert.equal(body.reused, false);
  assert.ok(body.chain.includes(w.ca.intermediatePem().trim().split("\n")[1]!), "the chain ends with the intermediate");
  assert.ok(Date.parse(body.renewAfter) > w.clock.now && Date.parse(body.renewAfter) < Date.parse(body.notAfter));
  const rows = await w.operations.listCertificates({ label });
  assert.deepEqual(rows.map((r) => r.serial), [body.serial]);
  await w.store.close();
});

test("the same key before renewAfter gets the same certificate; a new key gets a new one", async () => {
  const w = await world();
  const { box, label } = await enrolled(w);
  const key = await makeTlsKey();
  const first = ok(await certificate(w, box, label, key));
  w.clock.now += DAY_MS;
  const again = ok(await certificate(w, box, label, key));
  assert.equal(again.serial, first.serial);
  assert.equal(again.reused, true);
  const other = ok(await certificate(w, box, label, await makeTlsKey()));
  assert.notEqual(other.serial, first.serial);
  assert.equal(other.reused, false);
  assert.equal((await w.operations.listCertificates({ label })).length, 2);
  await w.store.close();
});

test("past the weekly limit: rate_limited, with when to come back", async () => {
  const w = await world({ maxCertificatesPerWeek: 2 });
  const { box, label } = await enrolled(w);
  const firstAt = w.clock.now;
  ok(await certificate(w, box, label, await makeTlsKey()));
  w.clock.now += 3600_000;
  ok(await certificate(w, box, label, await makeTlsKey()));
  w.clock.now += 3600_000;
  const before = await tables(w.store);
  const limited = await certificate(w, box, label, await makeTlsKey());
  assert.equal(limited.kind, "error");
  assert.equal(limited.kind === "error" && limited.code, "rate_limited");
  const retryAfter = limited.kind === "error" ? limited.retryAfterSeconds! : 0;
  assert.equal(retryAfter, Math.ceil((firstAt + 7 * DAY_MS - w.clock.now) / 1000), "when the oldest certificate leaves the week");
  assert.equal(await tables(w.store), before, "nothing written");
  await w.store.close();
});

test("refusals: each reason, and nothing written", async () => {
  const w = await world();
  const production = await customer(w, "S1", 1);
  const staging = await customer(w, "S2", 2, "staging");
  const paused = await customer(w, "S3", 2, "production", "paused");
  const roomy = await customer(w, "S4", 2);
  const first = scriptedBox(production, "S1");
  const label = ok(await enroll(w, first)).label;
  const cases: Array<[string, Promise<Outcome<unknown>>]> = [
    ["unknown_database", enroll(w, scriptedBox(randomUUID(), "S1"))],
    ["database_not_production", enroll(w, scriptedBox(staging, "S2"))],
    ["subscription_not_in_progress", enroll(w, scriptedBox(paused, "S3"))],
    ["code_mismatch", enroll(w, scriptedBox(production, "WRONG"))],
    ["no_free_seat", enroll(w, scriptedBox(production, "S1"))],
    ["identity_mismatch", enroll(w, scriptedBox(production, "S1", first.identifier))],
    ["identity_mismatch", certificate(w, scriptedBox(production, "S1", first.identifier), label, await makeTlsKey())],
    ["box_not_enrolled", certificate(w, first, "aaaaaaaaaaaaaaaa", await makeTlsKey())],
    ["box_not_enrolled", certificate(w, scriptedBox(roomy, "S4"), label, await makeTlsKey())],
  ];
  const before = await tables(w.store);
  for (const [reason, outcome] of cases) {
    const answer = await outcome;
    assert.equal(answer.kind, "refused", `${reason}: ${JSON.stringify(answer)}`);
    assert.equal(answer.kind === "refused" && answer.reason, reason);
  }
  assert.equal(await tables(w.store), before, "no refusal writes anything");
  await w.store.close();
});

test("two boxes racing for the last seat: one gets it, the other no_free_seat", async () => {
  const w = await world();
  const dbUuid = await customer(w, "S1", 1);
  const outcomes = await Promise.all([enroll(w, scriptedBox(dbUuid, "S1")), enroll(w, scriptedBox(dbUuid, "S1"))]);
  assert.deepEqual(outcomes.map((o) => (o.kind === "refused" ? o.reason : o.kind)).sort(), ["no_free_seat", "ok"]);
  assert.equal((await w.operations.listBoxes()).length, 1);
  await w.store.close();
});

test("a bad CSR is bad_csr; a CSR for other names is csr_names_mismatch; neither writes", async () => {
  const w = await world();
  const { box, label } = await enrolled(w);
  const before = await tables(w.store);
  const garbage = await w.issuance.certificate(signed(w, box, { label, csr: "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n" }));
  assert.equal(garbage.kind === "error" && garbage.code, "bad_csr", JSON.stringify(garbage));
  const weak = await certificate(w, box, label, await makeTlsKey("RSA-1024"));
  assert.equal(weak.kind === "error" && weak.code, "bad_csr", JSON.stringify(weak));
  const foreign = await certificate(w, box, label, await makeTlsKey(), [`*.other.${ZONE}`, `other.${ZONE}`]);
  assert.equal(foreign.kind === "refused" && foreign.reason, "csr_names_mismatch", JSON.stringify(foreign));
  const one = await certificate(w, box, label, await makeTlsKey(), [`${label}.${ZONE}`]);
  assert.equal(one.kind === "refused" && one.reason, "csr_names_mismatch", JSON.stringify(one));
  assert.equal(await tables(w.store), before);
  await w.store.close();
});

/** A source that fails as it is told to. */
class FailingSource implements CertificateSource {
  readonly name = "failing";
  constructor(private readonly error: Error) {}
  async issue(_request: IssueRequest): Promise<IssuedCertificate> {
    throw this.error;
  }
}

test("a source that is unavailable answers ca_unavailable with Retry-After; one that refuses, ca_refused; neither writes", async () => {
  for (const [error, code, retryAfter] of [
    [new SourceUnavailableError("the CA is down", 42), "ca_unavailable", 42],
    [new SourceRefusedError("the CA says no", "urn:ietf:params:acme:error:caa"), "ca_refused", undefined],
  ] as const) {
    const w = await world({ source: new FailingSource(error) });
    const { box, label } = await enrolled(w);
    const before = await tables(w.store);
    const outcome = await certificate(w, box, label, await makeTlsKey());
    assert.equal(outcome.kind, "error");
    if (outcome.kind !== "error") continue;
    assert.equal(outcome.code, code);
    assert.equal(outcome.message, error.message);
    assert.equal(outcome.retryAfterSeconds, retryAfter);
    assert.equal(await tables(w.store), before);
    await w.store.close();
  }
});

test("a stale or badly signed request is turned down before the store is read", async () => {
  const w = await world();
  const { box, label } = await enrolled(w);
  const input = signed(w, box, {});
  w.clock.now += 11 * 60_000;
  const stale = await w.issuance.enroll(input);
  assert.equal(stale.kind === "error" && stale.code, "stale_request");
  const forged = { ...signed(w, box, { label, csr: "x" }), signature: signBody(scriptedBox(box.dbUuid, box.enterpriseCode), "{}") };
  const unsigned = await w.issuance.certificate(forged);
  assert.equal(unsigned.kind === "error" && unsigned.code, "bad_signature");
  await w.store.close();
});
