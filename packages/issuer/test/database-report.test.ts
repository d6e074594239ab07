/**
 * Databases reporting themselves (POST /v1/database, docs/erp.md): the decision on its own, then the issuer
 * over real HTTP on loopback, on a SQLite store in a temporary folder and on a real PostgreSQL started for
 * the test (test/support/postgres.ts), with a clock the tests move.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomUUID } from "node:crypto";
import pino from "pino";
import { DATABASE_PATH, SIGNATURE_HEADER, type DatabaseKind } from "@boxcert/shared";
import type { DatabaseReportFacts } from "@boxcert/store";
import { startIssuer, type RunningIssuer } from "../src/cli.ts";
import { decideReport, maskUuid } from "../src/database-report.ts";
import { enroll, post, scriptedBox } from "../../../test/support/box-client.ts";
import { report, reportFields, scriptedDatabase, signReport, type ScriptedDatabase } from "../../../test/support/database-client.ts";
import { startPostgres, type Postgres } from "../../../test/support/postgres.ts";

const ZONE = "boxcert.test";
const MINUTE_MS = 60_000;

describe("decideReport", () => {
  const subscription = { id: 1, state: "in_progress" as const };
  const known = (kind: DatabaseKind, databaseKey: string | null = "K", subscriptionId = 1) => ({ subscriptionId, kind, databaseKey });
  const decide = (facts: Partial<DatabaseReportFacts>, kind: DatabaseKind, databaseKey = "K") =>
    decideReport({ subscription, database: null, hasProduction: false, ...facts }, { kind, databaseKey });
  const kindOf = (decision: ReturnType<typeof decideReport>) => ("answer" in decision ? decision.answer.kind : decision.refusal.reason);

  test("a new database gets what it claims, production only while the subscription has none", () => {
    assert.equal(kindOf(decide({}, "production")), "production");
    assert.equal(kindOf(decide({ hasProduction: true }, "production")), "duplicate");
    for (const kind of ["staging", "development", "duplicate"] as const) assert.equal(kindOf(decide({ hasProduction: true }, kind)), kind);
  });

  test("a known database: lowered freely, raised to production only in a subscription without one", () => {
    const cases: Array<[DatabaseKind, DatabaseKind, boolean, DatabaseKind]> = [
      ["production", "production", true, "production"],
      ["production", "staging", true, "staging"],
      ["production", "development", true, "development"],
      ["production", "duplicate", true, "duplicate"],
      ["staging", "production", true, "staging"],
      ["duplicate", "production", true, "duplicate"],
      ["development", "production", false, "production"],
      ["duplicate", "staging", true, "staging"],
    ];
    for (const [recorded, claimed, hasProduction, expected] of cases) {
      assert.equal(kindOf(decide({ database: known(recorded), hasProduction }, claimed)), expected, `${recorded} claiming ${claimed}`);
    }
  });

  test("refusals: unknown code, another subscription's database, another key; a database without a key takes this one", () => {
    assert.equal(kindOf(decide({ subscription: null }, "production")), "unknown_subscription");
    assert.equal(kindOf(decide({ database: known("production", "K", 2) }, "production")), "code_mismatch");
    const mismatch = decide({ database: known("production", "OTHER") }, "production");
    assert.equal(kindOf(mismatch), "identity_mismatch");
    assert.match("refusal" in mismatch ? mismatch.refusal.message : "", /database key/);
    assert.equal(kindOf(decide({ database: known("staging", null) }, "staging", "NEW")), "staging");
  });

  test("the UUID in logs keeps its first and last four characters", () => {
    assert.equal(maskUuid("7F9C1234-0000-4000-8000-00000000ABCD"), "7f9c...abcd");
  });
});

interface Engine {
  name: string;
  /** The --store URL and --keys-dir of an issuer on this engine, and how to stop what was started. */
  start(): Promise<{ store: string; keysDir: string; stop(): void }>;
}

const ENGINES: Engine[] = [
  {
    name: "SQLite",
    async start() {
      const dir = mkdtempSync(join(tmpdir(), "boxcert-dbreport-"));
      return { store: join(dir, "registry.sqlite"), keysDir: join(dir, "keys"), stop() {} };
    },
  },
  {
    name: "PostgreSQL",
    async start() {
      const server: Postgres = await startPostgres();
      return { store: server.url, keysDir: join(mkdtempSync(join(tmpdir(), "boxcert-dbreport-")), "keys"), stop: () => server.stop() };
    },
  },
];

interface DatabaseRecord {
  uuid: string;
  kind: DatabaseKind;
  database_key: string | null;
  reported_at: string | null;
}

for (const engine of ENGINES) {
  describe(`POST /v1/database on ${engine.name}`, () => {
    let issuer: RunningIssuer;
    /** A second issuer on the same store, with its own connections: a fleet behind a load balancer. */
    let twin: RunningIssuer;
    let stopEngine: () => void;
    const clock = { now: Date.parse("2026-11-26T10:00:00.000Z") };
    const logs: string[] = [];

    before(async () => {
      const started = await engine.start();
      stopEngine = started.stop;
      const config = {
        store: started.store,
        keysDir: started.keysDir,
        zone: ZONE,
        ca: "embedded",
        listen: { host: "127.0.0.1", port: 0 },
        plainHttp: true,
        lifetimeMs: 3600_000,
        maxCertificatesPerWeek: 10,
        clock: () => clock.now,
      } as const;
      issuer = await startIssuer({ ...config, logger: pino({ level: "info" }, { write: (line: string) => void logs.push(line) }) });
      twin = await startIssuer({ ...config, logger: pino({ level: "silent" }) });
    });

    after(async () => {
      await twin?.close();
      await issuer?.close();
      stopEngine?.();
    });

    /** A new subscription (a code no other test uses); returns its code. */
    async function subscription(state = "in_progress", seats = 2): Promise<string> {
      const code = `SUB-${randomUUID().slice(0, 8)}`;
      await issuer.operations.addSubscription({ code, state, seats });
      return code;
    }

    const send = (database: ScriptedDatabase, kind: DatabaseKind, fields: Record<string, unknown> = {}) => report(issuer.url, database, kind, new Date(clock.now), fields);

    async function accepted(database: ScriptedDatabase, kind: DatabaseKind): Promise<{ kind: DatabaseKind; subscription: string }> {
      const answer = await send(database, kind);
      assert.equal(answer.status, 200, JSON.stringify(answer.json));
      return answer.json as unknown as { kind: DatabaseKind; subscription: string };
    }

    async function record(uuid: string): Promise<DatabaseRecord | undefined> {
      return issuer.store.db.selectFrom("databases").select(["uuid", "kind", "database_key", "reported_at"]).where("uuid", "=", uuid.toLowerCase()).executeTakeFirst();
    }

    async function snapshot(): Promise<string> {
      const db = issuer.store.db;
      const tables = await Promise.all((["subscriptions", "databases", "boxes"] as const).map((t) => db.selectFrom(t).selectAll().orderBy("id").execute()));
      return JSON.stringify(tables);
    }

    test("the first database claiming production is production; another UUID claiming it is duplicate, and its boxes are refused", async () => {
      const code = await subscription();
      const first = scriptedDatabase(code);
      const second = scriptedDatabase(code);
      assert.deepEqual(await accepted(first, "production"), { kind: "production", subscription: "in_progress" });
      assert.deepEqual(await accepted(second, "production"), { kind: "duplicate", subscription: "in_progress" });
      assert.equal((await record(first.dbUuid))?.database_key, first.spki, "the key of the first report is recorded");
      assert.equal((await record(second.dbUuid))?.kind, "duplicate");

      const box = scriptedBox(second.dbUuid, code);
      const refused = await enroll(issuer.url, box, new Date(clock.now));
      assert.equal(refused.status, 403);
      assert.equal(refused.json.refusal?.reason, "database_not_production");
      assert.match(refused.json.refusal!.message, /duplicate/);
      assert.equal((await enroll(issuer.url, scriptedBox(first.dbUuid, code), new Date(clock.now))).status, 200, "the production database's box enrolls");
    });

    test("20 first reports claiming production at once, through two issuers: exactly one production", async () => {
      const code = await subscription();
      const databases = Array.from({ length: 20 }, () => scriptedDatabase(code));
      const through = (i: number) => (i % 2 === 0 ? issuer : twin).url;
      const answers = await Promise.all(databases.map((d, i) => report(through(i), d, "production", new Date(clock.now))));
      assert.deepEqual(answers.map((a) => a.status), answers.map(() => 200));
      const kinds = answers.map((a) => a.json.kind).sort();
      assert.deepEqual(kinds, [...Array.from({ length: 19 }, () => "duplicate"), "production"]);
      const recorded = await Promise.all(databases.map((d) => record(d.dbUuid)));
      assert.equal(recorded.filter((r) => r?.kind === "production").length, 1);
      assert.equal(recorded.filter((r) => r?.kind === "duplicate").length, 19);
      const winner = databases[answers.findIndex((a) => a.json.kind === "production")]!;
      assert.equal((await record(winner.dbUuid))?.kind, "production", "the answer says what was recorded");
    });

    test("a report lowers a kind and never raises it, except in a subscription without a production database", async () => {
      const code = await subscription();
      const a = scriptedDatabase(code);
      const b = scriptedDatabase(code);
      assert.equal((await accepted(a, "production")).kind, "production");
      assert.equal((await accepted(b, "staging")).kind, "staging");
      assert.equal((await accepted(b, "production")).kind, "staging", "never raised while a is production");
      assert.equal((await accepted(b, "development")).kind, "development", "between the other kinds freely");
      assert.equal((await accepted(a, "production")).kind, "production", "production claiming production stays");
      assert.equal((await accepted(a, "duplicate")).kind, "duplicate", "lowered by its own report");
      assert.equal((await accepted(a, "staging")).kind, "staging");
      // Nobody is production now: the first claim takes it back.
      assert.equal((await accepted(b, "production")).kind, "production");
      assert.equal((await accepted(a, "production")).kind, "staging", "and the other stays what it was");
      assert.equal((await record(a.dbUuid))?.kind, "staging");
      assert.equal((await record(b.dbUuid))?.kind, "production");
    });

    test("trust on first use: the first report's key is the database's; another key is identity_mismatch and nothing changes", async () => {
      const code = await subscription();
      // Added by an operator: no key until the database reports.
      const added = scriptedDatabase(code);
      await issuer.operations.addDatabase({ uuid: added.dbUuid, subscription: code, kind: "production" });
      assert.equal((await record(added.dbUuid))?.database_key, null);
      assert.deepEqual(await accepted(added, "production"), { kind: "production", subscription: "in_progress" });
      assert.equal((await record(added.dbUuid))?.database_key, added.spki);

      const impostor = scriptedDatabase(code, added.dbUuid);
      const before = await snapshot();
      for (const kind of ["production", "duplicate"] as const) {
        const answer = await send(impostor, kind);
        assert.equal(answer.status, 403);
        assert.equal(answer.json.refusal?.reason, "identity_mismatch");
        assert.match(answer.json.refusal!.message, /database key/);
      }
      assert.equal(await snapshot(), before, "neither the kind, the key nor reported_at moved");
      assert.equal((await accepted(added, "production")).kind, "production", "the recorded key still reports");
    });

    test("refused and malformed reports get their status and write nothing", async () => {
      const code = await subscription();
      const other = await subscription();
      const known = scriptedDatabase(code);
      await accepted(known, "production");
      const fresh = scriptedDatabase(code);
      const before = await snapshot();
      const signed = (fields: Record<string, unknown>) => {
        const body = JSON.stringify({ ...reportFields(fresh, "production", new Date(clock.now)), ...fields });
        return post(issuer.url + DATABASE_PATH, body, { [SIGNATURE_HEADER]: signReport(fresh, body) });
      };
      const foreignKey = scriptedDatabase(code).spki;
      const cases: Array<[string, () => ReturnType<typeof post>, number, string]> = [
        ["unknown code", () => report(issuer.url, scriptedDatabase("NO-SUCH-CODE"), "production", new Date(clock.now)), 403, "unknown_subscription"],
        ["another subscription's database", () => send(known, "production", { enterpriseCode: other }), 403, "code_mismatch"],
        ["a known database under an unknown code", () => send(known, "production", { enterpriseCode: "NO-SUCH-CODE" }), 403, "unknown_subscription"],
        ["signed by another key", () => send(fresh, "production", { databaseKey: foreignKey }), 401, "bad_signature"],
        ["no signature", () => post(issuer.url + DATABASE_PATH, JSON.stringify(reportFields(fresh, "production", new Date(clock.now)))), 401, "bad_signature"],
        ["garbage signature", () => post(issuer.url + DATABASE_PATH, JSON.stringify(reportFields(fresh, "production", new Date(clock.now))), { [SIGNATURE_HEADER]: "AAAA" }), 401, "bad_signature"],
        ["11 minutes late", () => report(issuer.url, fresh, "production", new Date(clock.now - 11 * MINUTE_MS)), 401, "stale_request"],
        ["11 minutes early", () => report(issuer.url, fresh, "production", new Date(clock.now + 11 * MINUTE_MS)), 401, "stale_request"],
        ["not a date", () => signed({ timestamp: "yesterday" }), 400, "bad_request"],
        ["a key that is not P-256", () => signed({ databaseKey: Buffer.from("not a key").toString("base64") }), 400, "bad_identity_key"],
        ["invalid JSON", () => post(issuer.url + DATABASE_PATH, "{not json"), 400, "bad_json"],
        ["kind missing", () => signed({ kind: undefined }), 400, "bad_request"],
        ["unknown kind", () => signed({ kind: "prod" }), 400, "bad_request"],
        ["kind of another type", () => signed({ kind: 1 }), 400, "bad_request"],
        ["UUID not a UUID", () => signed({ dbUuid: "' OR 1=1 --" }), 400, "bad_request"],
        ["UUID with a trailing newline", () => signed({ dbUuid: `${randomUUID()}\n` }), 400, "bad_request"],
        ["code too long", () => signed({ enterpriseCode: "C".repeat(129) }), 400, "bad_request"],
        ["empty code", () => signed({ enterpriseCode: "" }), 400, "bad_request"],
        ["key too long", () => signed({ databaseKey: "A".repeat(257) }), 400, "bad_request"],
        ["key not base64", () => signed({ databaseKey: "<key>" }), 400, "bad_request"],
        ["an array body", () => post(issuer.url + DATABASE_PATH, "[]"), 400, "bad_request"],
        ["not JSON content", () => fetch(issuer.url + DATABASE_PATH, { method: "POST", body: "x", headers: { "content-type": "text/plain" } }).then(async (r) => ({ status: r.status, headers: r.headers, json: (await r.json()) as never })), 415, "unsupported_media_type"],
      ];
      for (const [name, run, status, code] of cases) {
        const answer = await run();
        assert.equal(answer.status, status, `${name}: ${JSON.stringify(answer.json)}`);
        assert.equal(answer.json.refusal?.reason ?? answer.json.error?.code, code, name);
      }
      assert.equal(await snapshot(), before, "nothing written");
      assert.equal(await record(fresh.dbUuid), undefined);
    });

    test("one new UUID reported under two subscription codes at once: one records it, the other is code_mismatch", async () => {
      const codes = [await subscription(), await subscription()];
      for (let round = 0; round < 5; round++) {
        const uuid = randomUUID();
        const pair = codes.map((code) => scriptedDatabase(code, uuid));
        const answers = await Promise.all([report(issuer.url, pair[0]!, "staging", new Date(clock.now)), report(twin.url, pair[1]!, "staging", new Date(clock.now))]);
        const statuses = answers.map((a) => a.status).sort();
        assert.deepEqual(statuses, [200, 403], JSON.stringify(answers.map((a) => a.json)));
        assert.equal(answers.find((a) => a.status === 403)!.json.refusal?.reason, "code_mismatch");
        const winner = pair[answers.findIndex((a) => a.status === 200)]!;
        assert.equal((await record(uuid))?.database_key, winner.spki);
      }
    });

    test("every accepted report moves reported_at; the answer carries the subscription's state", async () => {
      const code = await subscription("paused", 0);
      const database = scriptedDatabase(code);
      const upper = { ...database, dbUuid: database.dbUuid.toUpperCase() };
      assert.deepEqual(await accepted(upper, "development"), { kind: "development", subscription: "paused" });
      const first = await record(database.dbUuid);
      assert.equal(first?.uuid, database.dbUuid, "kept lowercase");
      assert.equal(first?.reported_at, new Date(clock.now).toISOString());
      clock.now += 3600_000;
      try {
        await issuer.operations.setSubscription(code, { state: "in_progress" });
        assert.deepEqual(await accepted(database, "development"), { kind: "development", subscription: "in_progress" });
        assert.equal((await record(database.dbUuid))?.reported_at, new Date(clock.now).toISOString());
        const listed = (await issuer.operations.listDatabases()).find((d) => d.uuid === database.dbUuid);
        assert.deepEqual([listed?.keyRecorded, listed?.reportedAt], [true, new Date(clock.now).toISOString()]);
      } finally {
        clock.now -= 3600_000;
      }
    });

    test("one log line per report, with the UUID masked and never the subscription code", async () => {
      const code = await subscription();
      const database = scriptedDatabase(code);
      const from = logs.length;
      await accepted(database, "production");
      await send(scriptedDatabase(code, database.dbUuid), "production");
      await report(issuer.url, database, "production", new Date(clock.now - 3600_000));
      const lines = logs.slice(from).map((l) => JSON.parse(l) as Record<string, unknown>);
      assert.deepEqual(
        lines.map((l) => [l.msg, l.database, l.kind ?? l.refusal ?? l.error]),
        [
          ["database reported", maskUuid(database.dbUuid), "production"],
          ["database report refused", maskUuid(database.dbUuid), "identity_mismatch"],
          ["database report rejected", maskUuid(database.dbUuid), "stale_request"],
        ],
      );
      assert.equal(lines[0]!.first, true);
      for (const line of logs.slice(from)) {
        assert.ok(!line.includes(code), `the code is logged: ${line}`);
        assert.ok(!line.includes(database.dbUuid), `the UUID is logged whole: ${line}`);
      }
    });
  });
}
