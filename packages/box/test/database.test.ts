/**
 * The box's side of pairing with its database (docs/erp.md), over real sockets: a connection token's
 * pairing secret, the registration it allows (helpers/test-database.ts verifies each signature), when the
 * box registers again, what it shows and logs, and the CORS the paired database's POS page gets.
 */
import { test } from "node:test";
import type { TestContext } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import { randomBytes } from "node:crypto";
import { readFile, stat, writeFile } from "node:fs/promises";
import { escapeHtml } from "@boxcert/shared";
import { ConfigError, connectionPatch, formatConnectionToken, parseConnectionToken, readConfig, updateConfig } from "../src/config.ts";
import type { BoxConfig, Connection } from "../src/config.ts";
import { dataPaths, ensureDataDir } from "../src/data-dir.ts";
import { readAllLogs } from "../src/logs.ts";
import { messages } from "../src/messages/index.ts";
import type { BoxOptions } from "../src/box.ts";
import type { BoxStatus } from "../src/web/status.ts";
import { startTestIssuer } from "./helpers/test-issuer.ts";
import type { TestIssuer } from "./helpers/test-issuer.ts";
import { startTestDatabase } from "./helpers/test-database.ts";
import type { TestDatabase } from "./helpers/test-database.ts";
import { connectedDir, startBox, tempDir } from "./helpers/fixture.ts";
import type { BoxFixture } from "./helpers/fixture.ts";

const CODE = "SECRET-CODE-42";
const DB_UUID = "5f0c1e2a-8b7d-4c3e-9a1f-0b2c3d4e5f60";
const VERSION = (JSON.parse(await readFile(new URL("../package.json", import.meta.url), "utf8")) as { version: string }).version;
/** Retries within a test's patience (the box's default waits minutes). */
const FAST_BACKOFF = { initialMs: 100, maxMs: 400, factor: 2, jitter: 0 };

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** One request with exactly these headers (fetch would not let a test choose the Host). */
function request(port: number, path: string, options: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: "127.0.0.1", port, path, method: options.method ?? "GET", headers: options.headers ?? {}, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (chunk: Buffer) => chunks.push(chunk));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString("utf8") }));
    });
    req.on("error", reject);
    req.end(options.body);
  });
}

/**
 * Connects the box from its homepage's Connect dialog, as an installer pasting the token would (and
 * saving anyway when the page asks about an http:// address).
 */
async function connectFromHomepage(port: number, token: string): Promise<Answer> {
  const home = await request(port, "/");
  const cookie = String(home.headers["set-cookie"]?.[0] ?? "").split(";")[0] as string;
  const csrf = /name="csrf" value="([^"]+)"/.exec(home.body)?.[1] as string;
  return request(port, "/connect", {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded", cookie, origin: `http://127.0.0.1:${port}` },
    body: new URLSearchParams({ csrf, token, ...(parseConnectionToken(token).server.startsWith("http:") ? { confirm: "yes" } : {}) }).toString(),
  });
}

async function logText(fixture: BoxFixture): Promise<string> {
  return (await readAllLogs(fixture.paths.log)).toString("utf8");
}

function logEvents(text: string, event: string): Array<Record<string, unknown>> {
  return text
    .split("\n")
    .filter((line) => line !== "")
    .map((line) => JSON.parse(line) as Record<string, unknown>)
    .filter((line) => line.event === event);
}

async function apiStatus(port: number, headers: Record<string, string> = {}): Promise<BoxStatus> {
  return JSON.parse((await request(port, "/api/status", { headers })).body) as BoxStatus;
}

interface Setup {
  issuer: TestIssuer;
  database: TestDatabase;
  dir: string;
  /** Starts (or starts again) the box on the folder; stopped after the test. */
  start(options?: Partial<BoxOptions>): Promise<BoxFixture>;
}

/** An issuer, a database over verified TLS, an empty data folder; the box started by the test. */
async function setup(t: TestContext, database?: TestDatabase): Promise<Setup> {
  const issuer = await startTestIssuer();
  const db = database ?? (await startTestDatabase({ tls: true }));
  const temp = await tempDir();
  const running: BoxFixture[] = [];
  t.after(async () => {
    for (const fixture of running) await fixture.box.stop();
    await issuer.close();
    await db.close();
    await temp.cleanup();
  });
  return {
    issuer,
    database: db,
    dir: temp.dir,
    start: async (options = {}) => {
      for (const fixture of running.splice(0)) await fixture.box.stop();
      const fixture = await startBox({ issuerUrl: issuer.url, ...(db.ca ? { databaseCa: db.ca.pem } : {}), ...options }, temp.dir);
      running.push(fixture);
      return fixture;
    },
  };
}

function tokenFor(database: TestDatabase, pairingSecret?: string): string {
  return formatConnectionToken({ server: database.url, dbUuid: DB_UUID, enterpriseCode: CODE, ...(pairingSecret ? { pairingSecret } : {}) });
}

/** A box connected by a token with a fresh pairing secret, the connect's check and registration ended. */
async function pairedBox(s: Setup, options: Partial<BoxOptions> = {}): Promise<BoxFixture & { secret: string }> {
  const fixture = await s.start(options);
  const secret = s.database.issuePairing();
  const connected = await connectFromHomepage(fixture.ports.httpPort, tokenFor(s.database, secret));
  assert.equal(connected.status, 303);
  assert.equal(connected.headers.location, "/?notice=connected-paired");
  await fixture.box.checkNow();
  return { ...fixture, secret };
}

function assertNoSecrets(text: string, secrets: string[]): void {
  for (const secret of secrets) assert.ok(!text.includes(secret), `a secret is in the log: ${secret.slice(0, 3)}…`);
}

test("a connection token's pairing secret: parsed and validated, saved by a connect, dropped by a connect without one", async (t) => {
  const secret = randomBytes(32).toString("base64url");
  const connection = { server: "https://erp.example", dbUuid: DB_UUID, enterpriseCode: CODE, pairingSecret: secret };
  assert.deepEqual(parseConnectionToken(formatConnectionToken(connection)), { ...connection, server: "https://erp.example/" });
  const raw = (fields: Record<string, unknown>): string => `boxcert1.${Buffer.from(JSON.stringify({ server: "https://erp.example/", dbUuid: "U", enterpriseCode: "C", ...fields })).toString("base64url")}`;
  assert.equal(parseConnectionToken(raw({ pairing: null })).pairingSecret, undefined, "null: an older token");
  for (const bad of ["short", "x".repeat(129), `${"a".repeat(20)}+/=`, 42, { secret }]) {
    assert.throws(
      () => parseConnectionToken(raw({ pairing: bad })),
      (err: Error) => err instanceof ConfigError && /pairing secret is not valid/.test(err.message) && !err.message.includes(String(bad)),
      JSON.stringify(bad),
    );
  }
  assert.equal(parseConnectionToken(raw({ pairing: "a".repeat(16) })).pairingSecret, "a".repeat(16));
  assert.equal(parseConnectionToken(raw({ pairing: "a".repeat(128) })).pairingSecret, "a".repeat(128));

  const temp = await tempDir();
  t.after(temp.cleanup);
  const paths = dataPaths(temp.dir);
  await ensureDataDir(paths);
  const connect = (c: Connection) => updateConfig(paths, (current) => connectionPatch(c, current));
  assert.equal((await connect(parseConnectionToken(formatConnectionToken(connection)))).pairingSecret, secret);
  assert.equal((await stat(paths.config)).mode & 0o777, 0o600);
  const { pairingSecret: _, ...withoutPairing } = connection;
  assert.equal((await connect({ ...withoutPairing, server: "https://other.example/" })).pairingSecret, null, "no stale secret for another server");

  // A registration with https://erp.example ends when the box is connected to another origin, not before.
  await updateConfig(paths, { server: "https://erp.example/", pairedOrigin: "https://erp.example", registeredFingerprint: "fp", registeredAt: new Date().toISOString() });
  const same = await connect({ ...withoutPairing, server: "https://erp.example/shop/" });
  assert.deepEqual([same.pairedOrigin, same.registeredFingerprint], ["https://erp.example", "fp"], "same origin: still paired");
  const other = await connect({ ...withoutPairing, server: "https://erp2.example/" });
  assert.deepEqual([other.pairedOrigin, other.registeredFingerprint, other.registeredAt], [null, null, null]);

  // config.json is validated: a bad secret or origin is an error that does not repeat the value.
  const good = (await readConfig(paths)) as BoxConfig;
  for (const [field, value] of [["pairingSecret", "not a secret!"], ["pairedOrigin", "https://erp.example/path"], ["registeredAt", "yesterday"]] as const) {
    await writeFile(paths.config, JSON.stringify({ ...good, [field]: value }));
    await assert.rejects(readConfig(paths), (err: Error) => err instanceof ConfigError && err.message.includes(`"${field}"`) && !err.message.includes(value), field);
  }
});

test("a token with a pairing secret: the box registers with it once, then without it when its IP changes, and not when nothing changed", async (t) => {
  const s = await setup(t);
  const fixture = await pairedBox(s);
  const [first] = s.database.registrations;
  assert.equal(s.database.registrations.length, 1);
  assert.equal(first?.status, 200);
  const status = fixture.box.status();
  const config = (await readConfig(fixture.paths)) as BoxConfig;
  assert.deepEqual(first?.body, {
    identifier: config.identifier,
    identityKey: s.database.keyOf(config.identifier),
    name: config.name,
    ip: "127.0.0.1",
    httpsUrl: status.httpsUrl,
    certificateExpiry: status.certificate.notAfter,
    version: VERSION,
    httpPort: fixture.ports.httpPort,
    timestamp: first?.body.timestamp,
    pairing: fixture.secret,
  });
  assert.ok(status.httpsUrl !== null && status.certificate.notAfter !== null, "registered with its certificate");
  assert.equal(config.pairingSecret, null, "the secret is gone once used");
  assert.equal(config.pairedOrigin, s.database.origin);
  assert.ok(config.registeredFingerprint && config.registeredAt);
  assert.deepEqual(status.database, { registered: true, registeredAt: config.registeredAt, error: null });
  assert.deepEqual((await apiStatus(fixture.ports.httpPort)).database, status.database);
  const home = (await request(fixture.ports.httpPort, "/")).body;
  assert.match(home, /id="registration" data-state="registered">Registered with the database \(last: \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC\)/);
  const line = logEvents(await logText(fixture), "database_registered")[0];
  assert.equal(line?.paired, true);
  assert.equal(line?.dbUuid, "5f0c••••••••5f60", "the database UUID masked");

  await fixture.box.checkNow("periodic");
  assert.equal(s.database.registrations.length, 1, "nothing changed: no registration after a check");
  // A box restarts on its own ports (its HTTPS address is a registered fact).
  const ports = { httpPort: fixture.ports.httpPort, httpsPort: fixture.ports.httpsPort };
  const again = await s.start(ports);
  await again.box.checkNow();
  assert.equal(s.database.registrations.length, 1, "nor after a restart");

  const moved = await s.start({ ...ports, ip: "127.0.0.2" });
  await moved.box.checkNow();
  assert.equal(s.database.registrations.length, 2);
  const second = s.database.registrations[1];
  assert.equal(second?.status, 200, "verified against the key the first registration recorded");
  assert.equal(second?.body.ip, "127.0.0.2");
  assert.match(String(second?.body.httpsUrl), /^https:\/\/127-0-0-2\./);
  assert.equal(second?.body.pairing, undefined, "later registrations carry no secret");
  assertNoSecrets(await logText(moved), [fixture.secret, CODE]);
});

test("a renewed certificate is registered again with its new expiry", async (t) => {
  const s = await setup(t);
  const fixture = await pairedBox(s);
  const before = fixture.box.status().certificate.notAfter;
  s.issuer.lifetimeMs += 86_400_000;
  s.issuer.revokeAll();
  const status = await fixture.box.checkNow("periodic");
  assert.notEqual(status.certificate.notAfter, before, "the issuer handed out another certificate");
  assert.deepEqual(
    s.database.registrations.map((r) => [r.status, r.body.certificateExpiry]),
    [[200, before], [200, status.certificate.notAfter]],
  );
});

test("a refused pairing secret is shown on the homepage and in /api/status, and not retried", async (t) => {
  const s = await setup(t);
  const fixture = await s.start();
  const unknown = randomBytes(32).toString("base64url");
  assert.equal((await connectFromHomepage(fixture.ports.httpPort, tokenFor(s.database, unknown))).status, 303);
  await fixture.box.checkNow();
  assert.deepEqual(s.database.registrations.map((r) => r.status), [403]);
  const { database } = await apiStatus(fixture.ports.httpPort);
  assert.equal(database.registered, false);
  assert.equal(database.error, "the database refused the registration (pairing_invalid): unknown, used or expired pairing secret");
  for (const lang of ["en", "it"] as const) {
    const home = (await request(fixture.ports.httpPort, `/?lang=${lang}`)).body;
    assert.ok(home.includes('data-state="refused"'), lang);
    assert.ok(home.includes(escapeHtml(messages(lang).pages.registrationPairingInvalid)), lang);
  }
  const failed = logEvents(await logText(fixture), "database_registration_failed");
  assert.deepEqual(failed.map((line) => [line.code, line.retryInMs]), [["pairing_invalid", null]]);

  await fixture.box.checkNow("periodic");
  await fixture.box.checkNow("periodic");
  assert.equal(s.database.registrations.length, 1, "not retried");
  assert.equal((await readConfig(fixture.paths))?.pairingSecret, unknown, "kept until a connect brings another");
  assertNoSecrets(await logText(fixture), [unknown, CODE]);

  // A new token from the IoT page pairs the box.
  assert.equal((await connectFromHomepage(fixture.ports.httpPort, tokenFor(s.database, s.database.issuePairing()))).status, 303);
  assert.equal((await fixture.box.checkNow()).database.registered, true);
});

test("a failed registration is retried later, and shown meanwhile", async (t) => {
  const s = await setup(t);
  let calls = 0;
  s.database.override = () => (++calls === 1 ? { status: 503, body: { error: { code: "maintenance", message: "back soon" } }, headers: { "retry-after": "0" } } : null);
  const fixture = await pairedBox(s, { registrationBackoff: FAST_BACKOFF });
  const status = fixture.box.status();
  assert.equal(status.database.registered, false);
  assert.equal(status.database.error, `registering with ${s.database.origin}: the database answered HTTP 503 Service Unavailable: back soon (maintenance)`);
  assert.match((await request(fixture.ports.httpPort, "/")).body, /data-state="failed"/);
  for (let i = 0; i < 500 && !fixture.box.status().database.registered; i++) await new Promise((resolve) => setTimeout(resolve, 20));
  assert.deepEqual(s.database.registrations.map((r) => r.status), [503, 200]);
  assert.equal(s.database.registrations[1]?.body.pairing, fixture.secret, "the retry is still the first registration");
  assert.deepEqual(fixture.box.status().database.error, null);
  const failed = logEvents(await logText(fixture), "database_registration_failed");
  assert.equal(failed[0]?.retryInMs, FAST_BACKOFF.initialMs);
});

test("the pairing secret and the subscription code never reach the log, even when the database repeats the secret", async (t) => {
  const s = await setup(t);
  s.database.override = (body) => ({ status: 403, body: { error: { code: "unknown_box", message: `no box for ${String(body.pairing)}` } } });
  const fixture = await pairedBox(s, { registrationBackoff: FAST_BACKOFF });
  assert.equal(s.database.registrations[0]?.body.pairing, fixture.secret);
  const error = fixture.box.status().database.error ?? "";
  assert.equal(error, "the database refused the registration (unknown_box): no box for [redacted]");
  await fixture.box.stop();
  const text = await logText(fixture);
  assert.ok(text.includes('"event":"database_registration_failed"'));
  assertNoSecrets(text, [fixture.secret, CODE]);
});

test("the database's TLS is verified: without --database-ca its certificate is not trusted; http:// is warned about", async (t) => {
  const s = await setup(t);
  const fixture = await s.start({ databaseCa: undefined });
  await connectFromHomepage(fixture.ports.httpPort, tokenFor(s.database, s.database.issuePairing()));
  const { database } = await fixture.box.checkNow();
  assert.equal(s.database.registrations.length, 0);
  assert.match(database.error ?? "", /^registering with https:\/\/127\.0\.0\.1:\d+: certificate not trusted/);

  const plain = await startTestDatabase();
  const p = await setup(t, plain);
  const box = await pairedBox(p);
  assert.equal(box.box.status().database.registered, true);
  assert.equal(logEvents(await logText(box), "database_plaintext").length, 1);
});

test("connected without a pairing secret (the Credential fallback): not registered, and the homepage says why", async (t) => {
  const issuer = await startTestIssuer();
  const temp = await connectedDir();
  const fixture = await startBox({ issuerUrl: issuer.url }, temp.dir);
  t.after(async () => {
    await fixture.stop();
    await issuer.close();
    await temp.cleanup();
  });
  const status = await fixture.box.checkNow();
  assert.equal(status.certificate.status, "ok");
  assert.deepEqual(Object.keys(status.database).sort(), ["error", "registered", "registeredAt"]);
  assert.equal(status.database.registered, false);
  assert.match(status.database.error ?? "", /^not paired: the box was connected without a pairing secret/);
  for (const lang of ["en", "it"] as const) {
    const home = (await request(fixture.ports.httpPort, `/?lang=${lang}`)).body;
    assert.ok(home.includes(`data-state="not-paired"`), lang);
    assert.ok(home.includes(escapeHtml(messages(lang).pages.registrationNotPaired)), lang);
  }
});

test("CORS for the paired database: its origin gets the headers and the preflights, any other none; the POS test counts and logs", async (t) => {
  const s = await setup(t);
  const fixture = await s.start();
  const port = fixture.ports.httpPort;
  const erp = s.database.origin;
  const evil = "https://evil.example";
  const posTest = (origin: string | null, body = JSON.stringify({ note: "till 1 prints" }), headers: Record<string, string> = {}) =>
    request(port, "/api/pos/test", { method: "POST", headers: { "content-type": "application/json", ...(origin ? { origin } : {}), ...headers }, body });

  // Not paired yet: no origin is trusted.
  assert.equal((await request(port, "/api/status", { headers: { origin: erp } })).headers["access-control-allow-origin"], undefined);
  assert.equal((await posTest(erp)).status, 403, "not paired: refused");

  await connectFromHomepage(port, tokenFor(s.database, s.database.issuePairing()));
  assert.equal((await fixture.box.checkNow()).database.registered, true);

  const status = await request(port, "/api/status", { headers: { origin: erp } });
  assert.equal(status.status, 200);
  assert.equal(status.headers["access-control-allow-origin"], erp);
  assert.equal(status.headers.vary, "Origin");
  const foreign = await request(port, "/api/status", { headers: { origin: evil } });
  assert.equal(foreign.headers["access-control-allow-origin"], undefined, "another origin: no CORS header");
  assert.equal(foreign.headers.vary, "Origin");
  assert.equal((await request(port, "/", { headers: { origin: erp } })).headers["access-control-allow-origin"], undefined, "the pages stay the box's own");
  assert.equal((await request(port, "/api/diagnostics", { headers: { origin: erp } })).headers["access-control-allow-origin"], undefined);

  const preflight = (origin: string, path: string, method: string) =>
    request(port, path, {
      method: "OPTIONS",
      headers: { origin, "access-control-request-method": method, "access-control-request-headers": "content-type", "access-control-request-private-network": "true" },
    });
  for (const [path, method] of [["/api/status", "GET"], ["/api/pos/test", "POST"]] as const) {
    const ok = await preflight(erp, path, method);
    assert.equal(ok.status, 204, path);
    assert.equal(ok.headers["access-control-allow-origin"], erp, path);
    assert.equal(ok.headers["access-control-allow-methods"], method, path);
    assert.equal(ok.headers["access-control-allow-headers"], "content-type", path);
    assert.equal(ok.headers["access-control-allow-private-network"], "true", path);
    const refused = await preflight(evil, path, method);
    assert.equal(refused.status, 403, path);
    for (const header of ["access-control-allow-origin", "access-control-allow-methods", "access-control-allow-private-network"]) {
      assert.equal(refused.headers[header], undefined, `${path} ${header}`);
    }
    assert.equal((await preflight(erp, path, "DELETE")).status, 403, `${path}: another method`);
  }
  const ping = await request(port, "/api/ping", { headers: { origin: evil } });
  assert.equal(ping.headers["access-control-allow-origin"], "*", "/api/ping stays open to every origin");

  const first = await posTest(erp);
  assert.equal(first.status, 200);
  assert.equal(first.headers["access-control-allow-origin"], erp);
  const answer = JSON.parse(first.body) as { ok: boolean; at: string; count: number };
  assert.equal(answer.ok, true);
  assert.equal(answer.count, 1);
  assert.ok(Math.abs(Date.parse(answer.at) - Date.now()) < 60_000, answer.at);
  const other = await posTest(evil);
  assert.equal(other.status, 403, "another origin's POST");
  assert.equal(other.headers["access-control-allow-origin"], undefined);
  assert.equal((await posTest(null)).status, 403, "a POST without Origin");
  assert.equal((await posTest(erp, undefined, { host: "attacker.example" })).status, 403, "a foreign Host, even with the paired Origin");
  assert.equal((await posTest(erp, JSON.stringify({ note: "x".repeat(201) }))).status, 400, "a note over 200 characters");
  assert.equal((await posTest(erp, JSON.stringify({ note: { text: "x" } }))).status, 400, "a note that is not a string");
  assert.equal((await posTest(erp, "not json")).status, 400, "a body that is not JSON");
  const https = await request(port, "/api/pos/test", { method: "POST", headers: { "content-type": "application/json", origin: erp }, body: JSON.stringify({ note: "x".repeat(200) }) });
  assert.equal((JSON.parse(https.body) as { count: number }).count, 2, "only the answered requests are counted");

  const lines = logEvents(await logText(fixture), "pos_test");
  assert.deepEqual(lines.map((line) => [line.note, line.origin, line.count]), [["till 1 prints", erp, 1], ["x".repeat(200), erp, 2]]);
  const refusals = logEvents(await logText(fixture), "request_refused").filter((line) => line.path === "/api/pos/test");
  assert.ok(refusals.some((line) => line.why === "unpaired-origin" && line.origin === evil), "refusals are logged like the others");

  // Connected to another database's server: the pairing ends with it.
  await updateConfig(fixture.paths, (current) => connectionPatch({ server: "https://erp2.example/", dbUuid: DB_UUID, enterpriseCode: CODE }, current));
  await fixture.box.checkNow();
  assert.equal((await request(port, "/api/status", { headers: { origin: erp } })).headers["access-control-allow-origin"], undefined);
  assert.equal((await posTest(erp)).status, 403);
});

test("the POS test's log lines are bounded like the refusals: a few a minute, then one summary", async (t) => {
  const s = await setup(t);
  const fixture = await pairedBox(s);
  const port = fixture.ports.httpPort;
  const sent = 25;
  for (let i = 1; i <= sent; i++) {
    const answer = await request(port, "/api/pos/test", { method: "POST", headers: { "content-type": "application/json", origin: s.database.origin }, body: JSON.stringify({ note: `n${i}` }) });
    assert.equal((JSON.parse(answer.body) as { count: number }).count, i, "every request counted");
  }
  await fixture.box.stop();
  const text = await logText(fixture);
  const lines = logEvents(text, "pos_test");
  const summaries = logEvents(text, "pos_tests_summary");
  assert.equal(lines.length, 10);
  assert.equal(lines.length + summaries.reduce((sum, line) => sum + (line.count as number), 0), sent, "every request accounted for");
});
