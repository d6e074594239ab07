/**
 * The issuer's API while its store is unreachable: 503 store_unavailable with Retry-After, one warning per
 * outage (not one per request), and a certificate whose insert failed never leaves the issuer. The store
 * is a real SQLite file; its outage is the issuance records failing with the errors PostgreSQL's driver
 * throws (the real PostgreSQL outage is test/store-outage.test.ts).
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomUUID } from "node:crypto";
import { Writable } from "node:stream";
import pino from "pino";
import type { FastifyInstance } from "fastify";
import { openStore, RegistryOperations, type Store } from "@boxcert/store";
import { buildIssuerApp } from "../src/app.ts";
import { EmbeddedCa } from "../src/embedded-ca.ts";
import { issuanceRecords, type IssuanceRecords } from "../src/issuance-records.ts";
import { databaseReports } from "../src/database-report.ts";
import { STORE_RETRY_AFTER_S } from "../src/store-outage.ts";
import { scriptedBox, enroll, makeTlsKey, makeCsr, requestCertificate, type Answer } from "../../../test/support/box-client.ts";
import { report, scriptedDatabase } from "../../../test/support/database-client.ts";

const ZONE = "boxcert.test";
let store: Store;
let app: FastifyInstance;
let url: string;
const lines: Array<Record<string, unknown>> = [];
/** What the records do instead of their work: nothing (the store answers) or throw this. */
const failure: { all: (() => Error) | null; insert: (() => Error) | null } = { all: null, insert: null };
let dbUuid: string;

function refused(code: string, message: string): Error {
  return Object.assign(new Error(message), { code });
}

/** The issuance records, failing as an unreachable store does when told to. */
function failing(records: IssuanceRecords): IssuanceRecords {
  return new Proxy(records, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver) as unknown;
      if (typeof value !== "function") return value;
      return async (...args: unknown[]) => {
        if (failure.all) throw failure.all();
        if (property === "insertCertificate" && failure.insert) throw failure.insert();
        return (value as (...a: unknown[]) => Promise<unknown>).apply(target, args);
      };
    },
  });
}

before(async () => {
  const dir = mkdtempSync(join(tmpdir(), "boxcert-outage-"));
  store = await openStore(join(dir, "registry.sqlite"));
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split("\n").filter(Boolean)) lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  const logger = pino({ level: "info" }, sink);
  const realRecords = issuanceRecords(store);
  const reports = databaseReports(store);
  app = buildIssuerApp({
    records: failing(realRecords),
    databases: {
      report: (...args) => {
        if (failure.all) throw failure.all();
        return reports.report(...args);
      },
    },
    source: await EmbeddedCa.loadOrCreate(join(dir, "keys")),
    zone: ZONE,
    lifetimeMs: 3600_000,
    maxCertificatesPerWeek: 1000,
    clock: Date.now,
    logger,
  });
  await app.listen({ host: "127.0.0.1", port: 0 });
  const address = app.server.address();
  url = `http://127.0.0.1:${typeof address === "object" && address ? address.port : 0}`;
  const operations = new RegistryOperations(store);
  await operations.addSubscription({ code: "OUT-1", state: "in_progress", seats: 10 });
  dbUuid = randomUUID();
  await operations.addDatabase({ uuid: dbUuid, subscription: "OUT-1", kind: "production" });
});

after(async () => {
  await app.close();
  await store.close();
});

function assertUnavailable(answer: Answer): void {
  assert.equal(answer.status, 503, JSON.stringify(answer.json));
  assert.equal(answer.json.error?.code, "store_unavailable");
  assert.equal(answer.headers.get("retry-after"), String(STORE_RETRY_AFTER_S));
  assert.equal(answer.json.chain, undefined);
}

const logged = (msg: string) => lines.filter((l) => l.msg === msg);

test("store unreachable: every request 503 store_unavailable with Retry-After, one warning for the outage, one when it ends", async () => {
  const box = scriptedBox(dbUuid, "OUT-1");
  const { label } = (await enroll(url, box)).json as unknown as { label: string };
  const key = await makeTlsKey();
  const csr = await makeCsr(key, [`*.${label}.${ZONE}`, `${label}.${ZONE}`]);
  const before = lines.length;

  failure.all = () => refused("ECONNREFUSED", "connect ECONNREFUSED 127.0.0.1:5432");
  const answers = await Promise.all([
    ...Array.from({ length: 10 }, () => requestCertificate(url, box, label, csr)),
    ...Array.from({ length: 5 }, () => enroll(url, scriptedBox(dbUuid, "OUT-1"))),
    report(url, scriptedDatabase("OUT-1"), "production"),
  ]);
  failure.all = () => refused("57P01", "terminating connection due to administrator command");
  answers.push(await requestCertificate(url, box, label, csr));
  for (const answer of answers) assertUnavailable(answer);

  const during = lines.slice(before);
  assert.equal(during.filter((l) => l.msg === "the store is unreachable: requests are answered 503 store_unavailable until it answers again").length, 1, JSON.stringify(during));
  assert.equal(during.filter((l) => l.level === 50).length, 0, "no error lines: an outage is not a bug");
  assert.equal(during.length, 1, "one line for the outage, none per request");
  assert.equal(during[0]!.level, 40);
  assert.match(String(during[0]!.error), /ECONNREFUSED/);

  failure.all = null;
  const ok = await requestCertificate(url, box, label, csr);
  assert.equal(ok.status, 200, JSON.stringify(ok.json));
  const ended = logged("the store answers again");
  assert.equal(ended.length, 1);
  assert.equal(ended[0]!.answered503, answers.length);
  assert.equal(ended[0]!.event, "store_reachable");
});

test("the certificate's insert fails: the box gets 503 and not the certificate; its serial is logged; the next request gets one the store has", async () => {
  const box = scriptedBox(dbUuid, "OUT-1");
  const { label } = (await enroll(url, box)).json as unknown as { label: string };
  const csr = await makeCsr(await makeTlsKey(), [`*.${label}.${ZONE}`, `${label}.${ZONE}`]);
  failure.insert = () => new Error("Connection terminated unexpectedly");
  try {
    assertUnavailable(await requestCertificate(url, box, label, csr));
  } finally {
    failure.insert = null;
  }
  const dropped = logged("certificate signed but its commit not confirmed: not delivered").at(-1)!;
  assert.equal(dropped.label, label);
  assert.equal(dropped.level, 40);
  const serial = String(dropped.serial);
  assert.match(serial, /^[0-9a-f]+$/i);
  const stored = async (s: string) => (await store.db.selectFrom("certificates").select("serial").where("serial", "=", s).execute()).length;
  assert.equal(await stored(serial), 0, "the signed certificate was never recorded");

  const ok = await requestCertificate(url, box, label, csr);
  assert.equal(ok.status, 200, JSON.stringify(ok.json));
  assert.notEqual(ok.json.serial, serial);
  assert.equal(await stored(String(ok.json.serial)), 1);
});

test("any other failure stays a 500 internal_error, logged as an error", async () => {
  const box = scriptedBox(dbUuid, "OUT-1");
  failure.all = () => new TypeError("Cannot read properties of undefined (reading 'id')");
  try {
    const answer = await enroll(url, box);
    assert.equal(answer.status, 500);
    assert.equal(answer.json.error?.code, "internal_error");
    assert.equal(answer.headers.get("retry-after"), null);
  } finally {
    failure.all = null;
  }
  assert.equal(logged("issuer request failed").length, 1);
});
