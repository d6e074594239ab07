/**
 * The database reports itself to the issuer (docs/erp.md "POST /v1/database"): at start, signed with its
 * key over the exact body, over HTTPS verified against --issuer-ca; a failure is retried with the backoff
 * and shown on the IoT page, and so is the kind the issuer records.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { createPublicKey } from "node:crypto";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { classifyAnswer, REPORT_INTERVAL_MS } from "../src/issuer-report.ts";
import { ENTERPRISE_CODE, PASSWORD, startTestErp, testPki } from "./helpers/fixture.ts";
import { startFakeIssuer } from "./helpers/fake-issuer.ts";
import { Browser } from "./helpers/browser.ts";

const FAST_RETRY = { initialMs: 50, maxMs: 200, factor: 2, jitter: 0 };

async function waitFor<T>(what: string, fn: () => T | undefined | null | false, timeoutMs = 10_000): Promise<T> {
  const started = Date.now();
  for (;;) {
    const value = fn();
    if (value) return value;
    if (Date.now() - started > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

test("at start the database reports its UUID, code, kind and key, signed; the IoT page shows the kind the issuer records", async (t) => {
  const { ca, tls } = await testPki();
  const issuer = await startFakeIssuer(tls, () => ({ status: 200, body: { kind: "duplicate", subscription: "in_progress" } }));
  t.after(() => issuer.close());
  const fixture = await startTestErp({ issuerUrl: new URL(issuer.url), issuerCa: ca.pem, kind: "staging" });
  t.after(() => fixture.stop());
  const [report] = await waitFor("the first report", () => (issuer.reports.length > 0 ? issuer.reports : null));
  assert.ok(report!.signatureValid, "signed with the key it carries, over the exact body");
  const { record } = fixture.erp.database;
  assert.deepEqual(Object.keys(report!.body), ["dbUuid", "enterpriseCode", "kind", "databaseKey", "timestamp"]);
  assert.equal(report!.body.dbUuid, record.dbUuid);
  assert.equal(report!.body.enterpriseCode, ENTERPRISE_CODE);
  assert.equal(report!.body.kind, "staging");
  assert.ok(Math.abs(Date.parse(String(report!.body.timestamp)) - Date.now()) < 60_000);
  // The key reported is the one kept in the data folder.
  const kept = createPublicKey(await readFile(join(fixture.dir, "database-key.pem"), "utf8")).export({ type: "spki", format: "der" }).toString("base64");
  assert.equal(report!.body.databaseKey, kept);

  await waitFor("the recorded kind", () => fixture.erp.reporter.status().recorded);
  const browser = new Browser(fixture.target);
  await browser.login(PASSWORD);
  const page = await browser.get("/iot");
  assert.match(page.text, /id="declared-kind">staging</);
  assert.match(page.text, /id="recorded-kind" data-kind="duplicate">The issuer records this database as duplicate \(subscription in_progress;/);
  assert.match(page.text, /get no HTTPS certificate/);
  const italian = await browser.get("/iot?lang=it");
  assert.match(italian.text, /L&#39;emittente registra questo database come duplicato/);
});

test("a failed report is logged, shown on the page and retried with the backoff until the issuer answers", async (t) => {
  const { ca, tls } = await testPki();
  let up = false;
  const issuer = await startFakeIssuer(tls, () =>
    up ? { status: 200, body: { kind: "production", subscription: "in_progress" } } : { status: 503, body: { error: { code: "unavailable", message: "down for maintenance" } } },
  );
  t.after(() => issuer.close());
  const fixture = await startTestErp({ issuerUrl: new URL(issuer.url), issuerCa: ca.pem, reportBackoff: FAST_RETRY, reportIntervalMs: 3600_000 });
  t.after(() => fixture.stop());
  await waitFor("a retry", () => issuer.reports.length >= 2);
  const browser = new Browser(fixture.target);
  await browser.login(PASSWORD);
  const failedPage = (await browser.get("/iot")).text;
  assert.match(failedPage, /id="report-failure">The last report to the issuer failed: the issuer answered HTTP 503: down for maintenance \(unavailable\)\. Next attempt:/);
  assert.ok(!failedPage.includes('id="recorded-kind"'), "no kind recorded yet");

  up = true;
  await waitFor("a report answered", () => fixture.erp.reporter.status().recorded);
  assert.equal(fixture.erp.reporter.status().failure, null);
  assert.ok(issuer.reports.every((r) => r.signatureValid));
  const failures = fixture.log.lines().filter((line) => line.event === "issuer_report_failed");
  assert.equal(failures.length, issuer.reports.length - 1, "every report but the last failed, and each failure was logged");
  assert.match(String(failures[0]!.detail), /HTTP 503/);
  assert.ok(fixture.log.lines().some((line) => line.event === "issuer_report" && line.recorded === "production"));
  assert.ok(!fixture.log.text().includes(ENTERPRISE_CODE), "the subscription code is never logged");
  assert.match((await browser.get("/iot")).text, /The issuer records this database as production/);
});

test("after an answered report the next comes at the report interval (a day by default), signed again", async (t) => {
  assert.equal(REPORT_INTERVAL_MS, 24 * 3600_000, "daily");
  const { ca, tls } = await testPki();
  const issuer = await startFakeIssuer(tls, () => ({ status: 200, body: { kind: "production", subscription: "in_progress" } }));
  t.after(() => issuer.close());
  const intervalMs = 400;
  const fixture = await startTestErp({ issuerUrl: new URL(issuer.url), issuerCa: ca.pem, reportIntervalMs: intervalMs });
  t.after(() => fixture.stop());
  const reports = await waitFor("three reports", () => (issuer.reports.length >= 3 ? issuer.reports.slice(0, 3) : null));
  assert.ok(reports.every((r) => r.signatureValid), "each report signed");
  const times = reports.map((r) => Date.parse(String(r.body.timestamp)));
  for (let i = 1; i < times.length; i++) {
    // Not sooner than the interval after an answered report (the backoff is for failures only).
    assert.ok(times[i]! - times[i - 1]! >= intervalMs - 50, `report ${i + 1} came ${times[i]! - times[i - 1]!} ms after the previous one`);
  }
  assert.equal(fixture.log.lines().filter((line) => line.event === "issuer_report_failed").length, 0);
});

test("the issuer's TLS is verified: without its CA the report fails as untrusted and nothing is sent", async (t) => {
  const { tls } = await testPki();
  const issuer = await startFakeIssuer(tls, () => ({ status: 200, body: { kind: "production", subscription: "in_progress" } }));
  t.after(() => issuer.close());
  const fixture = await startTestErp({ issuerUrl: new URL(issuer.url) });
  t.after(() => fixture.stop());
  const failure = await waitFor("a failure", () => fixture.erp.reporter.status().failure);
  assert.match(failure.detail, /not trusted.*--issuer-ca/);
  assert.equal(issuer.reports.length, 0);
});

test("the issuer's answers are classified: a refusal, an error body, a 200 without a kind, Retry-After", () => {
  const now = Date.now();
  assert.deepEqual(classifyAnswer({ status: 200, text: '{"kind":"production","subscription":"paused"}', retryAfter: null }, now), { ok: true, kind: "production", subscription: "paused" });
  const refused = classifyAnswer({ status: 403, text: '{"refusal":{"reason":"unknown_subscription","message":"no such code"}}', retryAfter: null }, now);
  assert.deepEqual(refused, { ok: false, detail: "the issuer refused the report: unknown_subscription (no such code)", retryAfterMs: null });
  const mismatch = classifyAnswer({ status: 403, text: '{"error":{"code":"identity_mismatch","message":"another key"}}', retryAfter: "120" }, now);
  assert.deepEqual(mismatch, { ok: false, detail: "the issuer answered HTTP 403: another key (identity_mismatch)", retryAfterMs: 120_000 });
  const odd = classifyAnswer({ status: 200, text: '{"kind":"boss"}', retryAfter: null }, now);
  assert.equal(odd.ok, false);
  assert.match((odd as { detail: string }).detail, /without kind and subscription/);
  assert.equal((classifyAnswer({ status: 502, text: "<html>", retryAfter: null }, now) as { detail: string }).detail, "the issuer answered HTTP 502");
});
