/**
 * The homepage's pieces without a browser: the catalogue in both languages, language choice, the request
 * guard, the admin password, connection tokens, log download, and the routes through real sockets
 * (test/browser.test.ts drives the same pages in Chromium).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { writeFile, stat } from "node:fs/promises";
import { BOX_ERROR_CODES, BOX_ERRORS, BOX_ERRORS_IT, REFUSAL_REASONS, REFUSALS_IT } from "@boxcert/shared";
import { chooseLang } from "../src/web/i18n.ts";
import { messages } from "../src/messages/index.ts";
import { checkPost, checkRequest, CsrfTokens, guardChecks, hostOf, isOwnHost } from "../src/web/request-guard.ts";
import { AdminSessions, hashPassword } from "../src/web/admin-password.ts";
import { formatConnectionToken, parseConnectionToken, readConfig, updateConfig } from "../src/config.ts";
import { dataPaths } from "../src/data-dir.ts";
import { logDownloadName, readAllLogs } from "../src/logs.ts";
import { mask } from "../src/secrets.ts";
import { isBoxHostName } from "../src/web/status.ts";
import { startTestIssuer } from "./helpers/test-issuer.ts";
import { connectedDir, startBox, tempDir } from "./helpers/fixture.ts";

/** Every leaf of the catalogue, by path: strings, and functions called with sample arguments. */
function leaves(value: unknown, path = ""): Map<string, string> {
  const out = new Map<string, string>();
  if (typeof value === "string") out.set(path, value);
  else if (typeof value === "function") out.set(path, String((value as (...a: unknown[]) => unknown)("X", "Y")));
  else if (value && typeof value === "object") {
    for (const [k, v] of Object.entries(value)) for (const [p, s] of leaves(v, `${path}.${k}`)) out.set(p, s);
  }
  return out;
}

test("every string exists in English and Italian, and the Italian ones are translated", () => {
  const en = leaves(messages("en"));
  const it = leaves(messages("it"));
  assert.deepEqual([...it.keys()].sort(), [...en.keys()].sort());
  const same = [...en].filter(([k, v]) => v === it.get(k) && v.length > 12).map(([k]) => k);
  assert.deepEqual(same, [], "left in English");
  for (const code of BOX_ERROR_CODES) {
    assert.ok(BOX_ERRORS_IT[code].meaning !== BOX_ERRORS[code].meaning, code);
    assert.equal(BOX_ERRORS_IT[code].remedies.length, BOX_ERRORS[code].remedies.length, code);
  }
  for (const reason of REFUSAL_REASONS) assert.ok(REFUSALS_IT[reason].length > 10, reason);
});

test("the language: ?lang, then the cookie, then Accept-Language by q, else English", () => {
  assert.equal(chooseLang({ query: "it", cookie: "en", acceptLanguage: "en" }), "it");
  assert.equal(chooseLang({ query: "fr", cookie: "it" }), "it");
  assert.equal(chooseLang({ acceptLanguage: "it-IT,it;q=0.9,en;q=0.8" }), "it");
  assert.equal(chooseLang({ acceptLanguage: "fr-FR, en;q=0.5, it;q=0.7" }), "it");
  assert.equal(chooseLang({ acceptLanguage: "de, it;q=0" }), "en");
  assert.equal(chooseLang({}), "en");
});

test("the request guard's policy: every POST fully but the POS test (Host and the paired Origin), the Host of every other route but /api/ping, 404s never", () => {
  const all = { host: true, originAndToken: true, pairedOrigin: false };
  const none = { host: false, originAndToken: false, pairedOrigin: false };
  const hostOnly = { host: true, originAndToken: false, pairedOrigin: false };
  const paired = { host: true, originAndToken: false, pairedOrigin: true };
  for (const route of ["/check", "/credential", "/credential/clear", "/log-level", "/connect", "/admin-password", "/login", "/logout"]) {
    assert.deepEqual(guardChecks("POST", route), all, route);
  }
  for (const route of ["/", "/diagnostics", "/api/status", "/api/diagnostics", "/static/:file", "/logs/download"]) {
    assert.deepEqual(guardChecks("GET", route), hostOnly, route);
    assert.deepEqual(guardChecks("HEAD", route), hostOnly, route);
  }
  assert.deepEqual(guardChecks("POST", "/api/pos/test"), paired);
  assert.deepEqual(guardChecks("OPTIONS", "/api/pos/test"), hostOnly, "its preflight: the Host");
  assert.deepEqual(guardChecks("OPTIONS", "/api/status"), hostOnly);
  assert.deepEqual(guardChecks("GET", "/api/ping"), none);
  assert.deepEqual(guardChecks("OPTIONS", "/api/ping"), none);
  assert.deepEqual(guardChecks("POST", undefined), none, "no route: a 404");
});

test("the request guard: the POS test needs the paired database's Origin, present, and the box's Host", () => {
  const csrf = new CsrfTokens();
  const hosts = { machineName: "ShopBox", isBoxName: () => false };
  const checks = guardChecks("POST", "/api/pos/test");
  const erp = "https://erp.example";
  const base = { scheme: "https" as const, hostHeader: "192.168.1.42:8443", origin: erp, cookie: undefined, token: undefined, csrf, hosts, pairedOrigin: erp };
  assert.equal(checkRequest(checks, base), null, "the paired origin, no CSRF token: allowed");
  assert.equal(checkRequest(checks, { ...base, origin: undefined }), "unpaired-origin", "no Origin");
  assert.equal(checkRequest(checks, { ...base, origin: "https://evil.example" }), "unpaired-origin");
  assert.equal(checkRequest(checks, { ...base, origin: "https://erp.example:444" }), "unpaired-origin", "another port is another origin");
  assert.equal(checkRequest(checks, { ...base, pairedOrigin: null }), "unpaired-origin", "not paired: no origin will do");
  assert.equal(checkRequest(checks, { ...base, origin: "null", pairedOrigin: null }), "unpaired-origin");
  assert.equal(checkRequest(checks, { ...base, hostHeader: "evil.example" }), "foreign-host", "DNS rebinding");
});

test("the box's own HTTPS names: its addresses encoded under its label and zone, exactly", () => {
  const https = { label: "abcdefghijklmnop", zone: "boxcert.test", host: "192-168-1-42.abcdefghijklmnop.boxcert.test", port: 8443 };
  const addresses = ["192.168.1.42", "10.0.0.7", "fd00::1"];
  assert.ok(isBoxHostName("192-168-1-42.abcdefghijklmnop.boxcert.test", https, addresses));
  assert.ok(isBoxHostName("10-0-0-7.ABCDEFGHIJKLMNOP.boxcert.test", https, addresses), "another of its addresses, any case");
  assert.ok(isBoxHostName("fd00-0-0-0-0-0-0-1.abcdefghijklmnop.boxcert.test", https, addresses), "IPv6 in another spelling");
  assert.ok(!isBoxHostName("192-168-1-43.abcdefghijklmnop.boxcert.test", https, addresses), "an address that is not the box's");
  assert.ok(!isBoxHostName("evil.abcdefghijklmnop.boxcert.test", https, addresses), "a name under the wildcard that encodes no address");
  assert.ok(!isBoxHostName("a.192-168-1-42.abcdefghijklmnop.boxcert.test", https, addresses));
  assert.ok(!isBoxHostName("abcdefghijklmnop.boxcert.test", https, addresses));
  assert.ok(!isBoxHostName("192-168-1-42.abcdefghijklmnop.boxcert.test.evil.example", https, addresses));
  assert.ok(!isBoxHostName("192-168-1-42.abcdefghijklmnop.boxcert.test", null, addresses), "no certificate, no name");
});

test("the request guard: Host, Origin and the CSRF token", () => {
  const csrf = new CsrfTokens();
  const cookie = csrf.newCookieValue();
  const own = "192-168-1-42.abcdefghijklmnop.boxcert.test";
  const hosts = { machineName: "ShopBox", isBoxName: (host: string) => host === own };
  const base = { scheme: "http" as const, hostHeader: "192.168.1.42:8069", origin: "http://192.168.1.42:8069", cookie, token: csrf.tokenFor(cookie), csrf, hosts, pairedOrigin: null };
  assert.equal(checkPost(base), null);
  assert.equal(checkPost({ ...base, origin: undefined }), null, "no Origin: the token decides");
  assert.equal(checkPost({ ...base, origin: "http://evil.example" }), "foreign-origin");
  assert.equal(checkPost({ ...base, origin: "https://192.168.1.42:8069" }), "foreign-origin", "another scheme is another origin");
  assert.equal(checkPost({ ...base, origin: "null" }), "foreign-origin");
  assert.equal(checkPost({ ...base, token: undefined }), "csrf");
  assert.equal(checkPost({ ...base, token: new CsrfTokens().tokenFor(cookie) }), "csrf", "another process's token");
  assert.equal(checkPost({ ...base, hostHeader: "evil.example:8069", origin: "http://evil.example:8069" }), "foreign-host", "DNS rebinding");
  assert.equal(hostOf("[fd00::1]:8443"), "fd00::1");
  assert.ok(isOwnHost(own, hosts));
  assert.ok(isOwnHost("shopbox.local", hosts));
  assert.ok(isOwnHost("localhost", hosts));
  assert.ok(isOwnHost("fd00::1", hosts));
  assert.ok(!isOwnHost("a.b.abcdefghijklmnop.boxcert.test", hosts));
  assert.ok(!isOwnHost("boxcert.test", hosts));
  assert.ok(!isOwnHost(null, hosts));
});

test("the admin password: scrypt, checked in constant time; sessions end when it changes; failures are limited", async () => {
  const stored = await hashPassword("correct horse");
  let now = 0;
  const sessions = new AdminSessions(() => now);
  const client = "192.168.1.7";
  assert.equal((await sessions.tryPassword(client, "correct horse", stored)).outcome, "right");
  assert.equal((await sessions.tryPassword(client, "correct hors", stored)).outcome, "wrong");
  assert.ok(!JSON.stringify(stored).includes("correct"));
  const id = sessions.open();
  assert.ok(sessions.valid(id));
  sessions.closeAll();
  assert.ok(!sessions.valid(id));
  for (let i = 0; i < 4; i++) assert.equal((await sessions.tryPassword(client, "wrong", stored)).outcome, "wrong");
  assert.deepEqual(await sessions.tryPassword(client, "correct horse", stored), { outcome: "too-many", retryAfterS: 60 });
  now += 61_000;
  assert.equal((await sessions.tryPassword(client, "correct horse", stored)).outcome, "right");
});

test("connection tokens, masks and the log download", async (t) => {
  const token = formatConnectionToken({ server: "https://erp.example", dbUuid: "U-1", enterpriseCode: "C-1" });
  assert.deepEqual(parseConnectionToken(` ${token}\n`), { server: "https://erp.example/", dbUuid: "U-1", enterpriseCode: "C-1" });
  assert.throws(() => parseConnectionToken("boxcert1.!!!"), /damaged/);
  assert.throws(() => parseConnectionToken(formatConnectionToken({ server: "ftp://x", dbUuid: "U", enterpriseCode: "C" })), /http/);
  assert.equal(mask("SUB-BROWSER-7731", { start: 0, end: 2 }), "••••••••31");
  assert.equal(mask("short", { start: 4, end: 4 }), "••••••••");
  assert.equal(logDownloadName("Caisse 1 / bar", Date.parse("2026-11-26T07:20:01.123Z")), "boxcert-Caisse-1-bar-2026-11-26T072001Z.log");

  const temp = await tempDir();
  t.after(temp.cleanup);
  const log = `${temp.dir}/box.log`;
  await writeFile(`${log}.2`, "oldest\n");
  await writeFile(`${log}.1`, "older\n");
  await writeFile(log, "newest\n");
  assert.equal((await readAllLogs(log)).toString(), "oldest\nolder\nnewest\n");
});

async function form(url: string, fields: Record<string, string>, headers: Record<string, string>): Promise<Response> {
  return fetch(url, {
    method: "POST",
    redirect: "manual",
    headers: { "content-type": "application/x-www-form-urlencoded", ...headers },
    body: new URLSearchParams(fields).toString(),
  });
}

test("the routes: pages in both languages, assets cached, POSTs guarded, bad input a 400, settings applied", async (t) => {
  const issuer = await startTestIssuer();
  const temp = await connectedDir();
  // The diagnostics ask a port where nothing listens instead of the machine's resolvers.
  const { box, ports, paths, stop } = await startBox({ issuerUrl: issuer.url, lanResolvers: ["127.0.0.1:9"], zoneDns: ["127.0.0.1:9"] }, temp.dir);
  t.after(async () => {
    await stop();
    await issuer.close();
    await temp.cleanup();
  });
  await box.checkNow();
  const base = `http://127.0.0.1:${ports.httpPort}`;
  const home = await fetch(`${base}/`, { headers: { "accept-language": "it-IT,it;q=0.9" } });
  const html = await home.text();
  assert.match(html, /<html lang="it">/);
  assert.ok(html.includes(messages("it").pages.checkAgain));
  assert.ok(!html.includes("SECRET-CODE-42"), "the code is never on the page");
  const csp = home.headers.get("content-security-policy") ?? "";
  assert.match(csp, /script-src 'nonce-[^']+'; connect-src 'self' https:\/\/127-0-0-1\.[a-z2-7]+\.boxcert\.test:\d+;/);
  assert.equal(home.headers.get("access-control-allow-origin"), null);
  const cookie = (home.headers.get("set-cookie") ?? "").split(";")[0] as string;
  const token = /name="csrf" value="([^"]+)"/.exec(html)?.[1] as string;
  const headers = { cookie, origin: base };

  const css = /href="(\/static\/box\.css\?v=[0-9a-f]+)"/.exec(html)?.[1] as string;
  const cssRes = await fetch(base + css);
  assert.equal(cssRes.status, 200);
  assert.match(cssRes.headers.get("cache-control") ?? "", /immutable/);
  assert.equal((await fetch(base + css, { headers: { "if-none-match": cssRes.headers.get("etag") ?? "" } })).status, 304);

  const bad = await form(`${base}/log-level`, { csrf: token, level: "loud" }, { ...headers, "accept-language": "it" });
  assert.equal(bad.status, 400);
  assert.match(await bad.text(), /Il livello log deve essere/);
  const badCredential = await form(`${base}/credential`, { csrf: token, dbUuid: "has space", enterpriseCode: "C" }, headers);
  assert.equal(badCredential.status, 400);
  assert.match(await badCredential.text(), /database UUID must be/);
  const badConnect = await form(`${base}/connect`, { csrf: token, token: "nonsense" }, headers);
  assert.equal(badConnect.status, 400);
  const garbage = await fetch(`${base}/log-level`, { method: "POST", headers: { ...headers, "content-type": "application/json" }, body: "{not json" });
  assert.equal(garbage.status, 400, "a body that is not a form: 400, no crash");
  const objects = await fetch(`${base}/credential`, {
    method: "POST",
    headers: { ...headers, "content-type": "application/json" },
    body: JSON.stringify({ csrf: token, dbUuid: { a: 1 }, enterpriseCode: ["x"] }),
  });
  assert.equal(objects.status, 400, "fields that are not strings are missing fields");
  assert.equal((await fetch(`${base}/static/__proto__`)).status, 404);
  assert.equal((await fetch(`${base}/static/constructor`)).status, 404);

  const set = await form(`${base}/log-level`, { csrf: token, level: "warning" }, headers);
  assert.equal(set.status, 303);
  assert.equal(box.status().logLevel, "warning");
  assert.equal((await readConfig(paths))?.logLevel, "warning");
  assert.equal((await stat(paths.config)).mode & 0o777, 0o600);

  const refused = await form(`${base}/log-level`, { csrf: token, level: "debug" }, { ...headers, origin: "http://evil.example" });
  assert.equal(refused.status, 403);
  assert.match(await refused.text(), /another site/);
  assert.equal(box.status().logLevel, "warning");

  const preflight = await fetch(`${base}/api/ping`, { method: "OPTIONS", headers: { origin: "https://erp.example", "access-control-request-method": "GET", "access-control-request-private-network": "true" } });
  assert.equal(preflight.status, 204);
  assert.equal(preflight.headers.get("access-control-allow-private-network"), "true");
  assert.equal(preflight.headers.get("access-control-allow-origin"), "*");

  // The diagnostics run at most once every 10 s: a second request gets the same report.
  const first = (await (await fetch(`${base}/api/diagnostics`)).json()) as { checkedAt: string; hostname: string; zone: string };
  const second = (await (await fetch(`${base}/api/diagnostics`)).json()) as { checkedAt: string };
  assert.equal(second.checkedAt, first.checkedAt);
  assert.equal(first.zone, "boxcert.test");
  assert.equal(first.hostname, new URL(box.status().httpsUrl!).hostname);
  const page = await (await fetch(`${base}/diagnostics?lang=it`)).text();
  assert.match(page, /<html lang="it">/);
  assert.ok(page.includes('id="diagnostics"'));

  const logs = await fetch(`${base}/logs/download`);
  assert.match(logs.headers.get("content-disposition") ?? "", /^attachment; filename="boxcert-[^"]+\.log"$/);
  const text = await logs.text();
  assert.ok(text.includes('"event":"log_level"'));
  assert.ok(!text.includes("SECRET-CODE-42"));
});

test("changes from the page and the agent at once: no update is lost", async (t) => {
  const temp = await connectedDir();
  t.after(temp.cleanup);
  const paths = dataPaths(temp.dir);
  await Promise.all([
    updateConfig(paths, { logLevel: "debug" }),
    updateConfig(paths, { name: "till-2" }),
    updateConfig(paths, { dbUuid: "db-7", enterpriseCode: "C-7" }),
    updateConfig(paths, { label: "abcdefghijklmnop", zone: "boxcert.test", enrolledFor: "db-7" }),
  ]);
  const config = await readConfig(paths);
  assert.deepEqual(
    [config?.logLevel, config?.name, config?.dbUuid, config?.label, config?.server],
    ["debug", "till-2", "db-7", "abcdefghijklmnop", "https://erp.example/"],
  );
});
