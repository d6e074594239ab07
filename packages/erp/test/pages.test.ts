/**
 * The IoT and POS test pages over real HTTPS (docs/erp-server.md "Pages"): the login they need, CSRF on
 * every POST, the box list with days left in English and Italian, Connect a box, the POS page's script,
 * and the security headers.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { parseConnectionToken } from "../src/pairing.ts";
import { ENTERPRISE_CODE, PASSWORD, startTestErp, type TestErp } from "./helpers/fixture.ts";
import { Browser } from "./helpers/browser.ts";
import { FakeBox } from "./helpers/fake-box.ts";

const DAY_MS = 86_400_000;

async function loggedIn(fixture: TestErp): Promise<Browser> {
  const browser = new Browser(fixture.target);
  const answer = await browser.login(PASSWORD);
  assert.equal(answer.status, 303, answer.text);
  assert.equal(answer.headers.location, "/iot");
  return browser;
}

/** Connect a box on the IoT page; the token shown. */
async function connectToken(browser: Browser): Promise<string> {
  const page = await browser.get("/iot");
  const answer = await browser.post("/iot/connect", { csrf: Browser.csrfOf(page) });
  assert.equal(answer.status, 200, answer.text);
  const match = /id="token" readonly value="([^"]+)"/.exec(answer.text);
  assert.ok(match, "the token is shown in a readonly field");
  assert.match(answer.text, /id="copy-token" data-copy="token"/);
  return match[1]!;
}

test("the pages need a login: a page goes to the login form, a POST is refused, the session cookie is strict", async (t) => {
  const fixture = await startTestErp();
  t.after(() => fixture.stop());
  const browser = new Browser(fixture.target);
  for (const path of ["/iot", "/pos"]) {
    const answer = await browser.get(path);
    assert.equal(answer.status, 303, path);
    assert.equal(answer.headers.location, `/login?next=${encodeURIComponent(path)}`);
  }
  const loginPage = await browser.get("/login");
  assert.equal(loginPage.status, 200);
  assert.ok(!loginPage.text.includes(ENTERPRISE_CODE));
  const refused = await browser.post("/iot/connect", { csrf: Browser.csrfOf(loginPage) });
  assert.equal(refused.status, 403);
  assert.match(refused.text, /Log in first/);

  const wrong = await browser.post("/login", { csrf: Browser.csrfOf(loginPage), password: "not the password" });
  assert.equal(wrong.status, 403);
  assert.match(wrong.text, /Wrong password/);

  const right = await browser.post("/login", { csrf: Browser.csrfOf(loginPage), password: PASSWORD, next: "/pos" });
  assert.equal(right.status, 303);
  assert.equal(right.headers.location, "/pos");
  const session = (right.headers["set-cookie"] ?? []).find((c) => c.startsWith("boxcert_erp_session="));
  assert.ok(session);
  for (const attribute of ["HttpOnly", "Secure", "SameSite=Strict"]) assert.ok(session.includes(attribute), `${attribute} in ${session}`);
  const page = await browser.get("/iot");
  assert.equal(page.status, 200);
  assert.match(page.text, /id="db-uuid"/);

  const logout = await browser.post("/logout", { csrf: Browser.csrfOf(page) });
  assert.equal(logout.status, 303);
  assert.equal((await browser.get("/iot")).status, 303, "logged out");
  assert.ok(!fixture.log.text().includes(PASSWORD), "the password is never logged");
});

test("password guesses are limited per address: the sixth in a minute is 429 with Retry-After", async (t) => {
  const fixture = await startTestErp();
  t.after(() => fixture.stop());
  const browser = new Browser(fixture.target);
  const csrf = Browser.csrfOf(await browser.get("/login"));
  const statuses: number[] = [];
  for (let i = 0; i < 6; i++) statuses.push((await browser.post("/login", { csrf, password: `guess-${i}-wrong` })).status);
  assert.deepEqual(statuses, [403, 403, 403, 403, 403, 429]);
  const limited = await browser.post("/login", { csrf, password: PASSWORD });
  assert.equal(limited.status, 429, "even the right password waits");
  assert.ok(Number(limited.headers["retry-after"]) > 0);
});

test("CSRF on every POST: no token, a wrong token, another site's Origin, a foreign Host are refused", async (t) => {
  const fixture = await startTestErp();
  t.after(() => fixture.stop());
  const browser = await loggedIn(fixture);
  const csrf = Browser.csrfOf(await browser.get("/iot"));
  const before = fixture.erp.store.data.pairings.length;
  for (const path of ["/iot/connect", "/logout", "/login"]) {
    const none = await browser.post(path, {});
    assert.equal(none.status, 403, `${path} without a token`);
    assert.match(none.text, /security token is missing or expired/);
    assert.equal((await browser.post(path, { csrf: `${csrf}x` })).status, 403, `${path} with a wrong token`);
    const foreign = await browser.post(path, { csrf }, { origin: "https://evil.example" });
    assert.equal(foreign.status, 403, `${path} from another site`);
    assert.match(foreign.text, /came from another site/);
    const rebinding = await browser.post(path, { csrf }, { headers: { host: "evil.example" }, origin: "https://evil.example" });
    assert.equal(rebinding.status, 403, `${path} sent to a foreign name`);
  }
  assert.equal(fixture.erp.store.data.pairings.length, before, "no refused POST made a pairing secret");
  assert.equal((await browser.get("/iot")).status, 200, "still logged in: the refused /logout did nothing");
  const foreignGet = await browser.get("/iot", { host: "evil.example" });
  assert.equal(foreignGet.status, 403, "a page read through a rebinding name");
  // The token of the page is accepted with or without an Origin (clients that send none).
  assert.equal((await browser.post("/iot/connect", { csrf }, { origin: null })).status, 200);
});

test("Connect a box makes a token that parses back, with a new secret each time", async (t) => {
  const fixture = await startTestErp();
  t.after(() => fixture.stop());
  const browser = await loggedIn(fixture);
  const token = await connectToken(browser);
  assert.ok(token.startsWith("boxcert1."));
  const decoded = JSON.parse(Buffer.from(token.slice("boxcert1.".length), "base64url").toString("utf8")) as Record<string, unknown>;
  assert.deepEqual(Object.keys(decoded), ["server", "dbUuid", "enterpriseCode", "zone", "pairing"]);
  const parsed = parseConnectionToken(token);
  assert.equal(parsed.server, fixture.erp.publicUrl.toString());
  assert.equal(parsed.dbUuid, fixture.erp.database.record.dbUuid);
  assert.equal(parsed.enterpriseCode, ENTERPRISE_CODE);
  assert.equal(parsed.zone, "boxcert.test");
  assert.equal(Buffer.from(parsed.pairing, "base64url").length, 32);
  const second = parseConnectionToken(await connectToken(browser));
  assert.notEqual(second.pairing, parsed.pairing);
  assert.equal(fixture.erp.store.data.pairings.length, 2);
  // The token pairs a box.
  const box = new FakeBox();
  assert.equal((await box.send(fixture.target, box.body(Date.now(), { pairing: parsed.pairing }))).status, 200);
  assert.ok(!fixture.log.text().includes(ENTERPRISE_CODE), "the subscription code is never logged");
  assert.ok(!fixture.log.text().includes(parsed.pairing), "a pairing secret is never logged");
});

test("the IoT page lists a registered box with its HTTPS address, days left and Download logs, in English and Italian", async (t) => {
  const now = Date.now();
  const fixture = await startTestErp({ clock: () => now });
  t.after(() => fixture.stop());
  const browser = await loggedIn(fixture);
  assert.match((await browser.get("/iot")).text, /id="no-boxes"/);
  const box = new FakeBox();
  const pairing = parseConnectionToken(await connectToken(browser)).pairing;
  const body = box.body(now, { name: "Till <1>", pairing, certificateExpiry: new Date(now + 41 * DAY_MS + 3600_000).toISOString() });
  assert.equal((await box.send(fixture.target, body)).status, 200);

  const english = await browser.get("/iot", { "accept-language": "en-GB,en;q=0.9" });
  assert.match(english.text, /<td class="name">Till &lt;1&gt;<\/td>/, "the name is escaped");
  assert.ok(english.text.includes(`<a href="${body.httpsUrl as string}" rel="noreferrer" target="_blank">`));
  assert.match(english.text, /class="days-left">41 days left</);
  // Last seen (the registration's time) and the box's version, in their columns.
  const seen = new Date(now).toISOString().replace("T", " ").replace(/:\d\d\.\d+Z$/, " UTC");
  assert.ok(english.text.includes(`<td>${seen}</td><td>${body.version as string}</td>`), `last seen ${seen} and the version`);
  assert.ok(english.text.includes(`data-url="${body.httpsUrl as string}">Download logs</button>`));
  assert.match(english.text, /data-unreachable="The box cannot be reached from this device/);
  assert.match(english.text, /<script nonce="[^"]+" src="\/static\/iot\.js\?v=[0-9a-f]+"><\/script>/);

  const italian = await browser.get("/iot", { "accept-language": "it-IT,it;q=0.9,en;q=0.5" });
  assert.match(italian.text, /<html lang="it">/);
  assert.match(italian.text, /class="days-left">mancano 41 giorni</);
  assert.match(italian.text, /Scarica registri/);
  const switched = await browser.get("/iot?lang=it", { "accept-language": "en" });
  assert.match(switched.text, /mancano 41 giorni/);
  assert.equal(browser.cookies.get("boxcert_erp_lang"), "it", "the switch is remembered");
  assert.match((await browser.get("/iot?lang=__proto__")).text, /mancano 41 giorni/, "an unknown language is ignored");
});

/** The page's one nonce: every script tag carries it, and the CSP names it. */
function scriptNonce(html: string, csp: string): string {
  const nonces = [...html.matchAll(/<script\b([^>]*)>/g)].map((tag) => /\snonce="([^"]+)"/.exec(tag[1]!)?.[1]);
  assert.equal(nonces.length, 2, "an import map and the module");
  const [nonce] = nonces;
  assert.ok(nonce && nonces.every((n) => n === nonce), "every script has the page's nonce");
  assert.match(csp, new RegExp(`script-src 'nonce-${nonce.replace(/[+/=]/g, "\\$&")}';`));
  return nonce;
}

test("the POS page calls each box through @boxcert/web: each row carries its HTTPS address, IP and HTTP port", async (t) => {
  const fixture = await startTestErp();
  t.after(() => fixture.stop());
  const browser = await loggedIn(fixture);
  const box = new FakeBox();
  const pairing = parseConnectionToken(await connectToken(browser)).pairing;
  assert.equal((await box.send(fixture.target, box.body(Date.now(), { pairing, httpPort: 8080 }))).status, 200);
  const older = new FakeBox();
  const olderPairing = parseConnectionToken(await connectToken(browser)).pairing;
  const olderUrl = "https://192-168-1-43.k3vq7mxa2bfnw4ds.boxcert.test/";
  assert.equal((await older.send(fixture.target, older.body(Date.now(), { pairing: olderPairing, name: "Till 2", ip: "192.168.1.43", httpsUrl: olderUrl }))).status, 200);
  const withoutCertificate = new FakeBox();
  const second = parseConnectionToken(await connectToken(browser)).pairing;
  assert.equal((await withoutCertificate.send(fixture.target, withoutCertificate.body(Date.now(), { pairing: second, name: "Scale", ip: "192.168.1.44", httpsUrl: null, certificateExpiry: null, httpPort: 81 }))).status, 200);

  const page = await browser.get("/pos");
  assert.equal(page.status, 200);
  const url = "https://192-168-1-42.k3vq7mxa2bfnw4ds.boxcert.test:8443/";
  assert.ok(page.text.includes(`<tr data-identifier="${box.identifier}" data-https-url="${url}" data-ip="192.168.1.42" data-http-port="8080">`), "the registered port");
  assert.ok(page.text.includes(`<tr data-identifier="${older.identifier}" data-https-url="${olderUrl}" data-ip="192.168.1.43" data-http-port="8069">`), "a box that sent no port: the box's default");
  assert.ok(page.text.includes('<button type="button" data-call="status">Call the box</button>'));
  assert.ok(page.text.includes('<button type="button" class="secondary" data-call="test">Test request</button>'));
  assert.ok(!page.text.includes("Scale"), "a box without an HTTPS address cannot be called");
  assert.match(page.text, /<table class="pos" data-lang="en"[^>]* data-via-https="over HTTPS by name" data-degraded="degraded: over the box&#39;s IP address"/);
  assert.match(page.text, /<div class="problem" aria-live="polite" hidden><p class="message"><\/p><p class="advice-title">What to do:<\/p><ol class="advice"><\/ol><\/div>/);

  const csp = String(page.headers["content-security-policy"]);
  const nonce = scriptNonce(page.text, csp);
  const web = /"@boxcert\/web":"(\/static\/boxcert-web\.js\?v=[0-9a-f]+)"/.exec(page.text)?.[1];
  assert.ok(page.text.includes(`<script type="importmap" nonce="${nonce}">{"imports":{"@boxcert/web":"${web}"}}</script>`), "the import map names the module's versioned URL");
  const pos = /<script type="module" nonce="[^"]+" src="(\/static\/pos\.js\?v=[0-9a-f]+)"><\/script>/.exec(page.text)?.[1];
  assert.ok(pos, "the page's script is an ES module, its own static file");
  for (const directive of ["default-src 'none'", "frame-ancestors 'none'", "form-action 'self'", "base-uri 'none'"]) assert.ok(csp.includes(directive), directive);
  assert.equal(page.headers["x-frame-options"], "DENY");
  assert.equal(page.headers["cache-control"], "no-store");
  assert.equal(page.headers["x-content-type-options"], "nosniff");

  const script = await browser.get(pos);
  assert.equal(script.status, 200);
  assert.match(String(script.headers["content-type"]), /^text\/javascript/);
  assert.match(script.text, /^import \{ boxClient, BoxUnreachableError \} from "@boxcert\/web";$/m);
  assert.match(script.text, /\.reach\(\)/);
  assert.match(script.text, /api\/status/);
  assert.match(script.text, /api\/pos\/test/);
  assert.match(script.text, /note: "POS test"/);
  assert.equal((await browser.get("/static/toString")).status, 404);

  const it = await browser.get("/pos?lang=it");
  assert.match(it.text, /<table class="pos" data-lang="it"[^>]* data-degraded="modalità ridotta: tramite l&#39;indirizzo IP del sistema IoT"/);
  assert.match(it.text, /<p class="advice-title">Cosa fare:<\/p>/);
});

test("the POS page's CSP lets it reach exactly the boxes: HTTPS by name, and plain HTTP by IP and by name at the registered port", async (t) => {
  const fixture = await startTestErp();
  t.after(() => fixture.stop());
  const browser = await loggedIn(fixture);
  const box = new FakeBox();
  const pairing = parseConnectionToken(await connectToken(browser)).pairing;
  assert.equal((await box.send(fixture.target, box.body(Date.now(), { pairing, httpPort: 80 }))).status, 200);
  const v6 = new FakeBox();
  const v6Pairing = parseConnectionToken(await connectToken(browser)).pairing;
  const v6Url = "https://fd00--42.k3vq7mxa2bfnw4ds.boxcert.test/";
  assert.equal((await v6.send(fixture.target, v6.body(Date.now(), { pairing: v6Pairing, ip: "fd00::42", httpsUrl: v6Url, httpPort: 8069 }))).status, 200);
  const scale = new FakeBox();
  const scalePairing = parseConnectionToken(await connectToken(browser)).pairing;
  assert.equal((await scale.send(fixture.target, scale.body(Date.now(), { pairing: scalePairing, ip: "192.168.1.44", httpsUrl: null, certificateExpiry: null, httpPort: 81 }))).status, 200);

  const csp = String((await browser.get("/pos")).headers["content-security-policy"]);
  const connect = /connect-src ([^;]+);/.exec(csp)?.[1]?.split(" ");
  assert.deepEqual(connect, [
    "'self'",
    "http://192-168-1-42.k3vq7mxa2bfnw4ds.boxcert.test",
    "http://192.168.1.42",
    "http://[fd00::42]:8069",
    "http://fd00--42.k3vq7mxa2bfnw4ds.boxcert.test:8069",
    "https://192-168-1-42.k3vq7mxa2bfnw4ds.boxcert.test:8443",
    "https://fd00--42.k3vq7mxa2bfnw4ds.boxcert.test",
  ], "port 80 is the origin without a port; a box without an HTTPS address is not called, so not listed");
  assert.ok(!csp.includes("192.168.1.44"), "the box without an HTTPS address");
});

test("the browser module is served from the @boxcert/web package, versioned and cached like the other assets", async (t) => {
  const fixture = await startTestErp();
  t.after(() => fixture.stop());
  const browser = await loggedIn(fixture);
  const module = await readFile(fileURLToPath(import.meta.resolve("@boxcert/web")), "utf8");
  const page = await browser.get("/pos");
  const path = /"@boxcert\/web":"(\/static\/boxcert-web\.js\?v=([0-9a-f]+))"/.exec(page.text);
  assert.ok(path, "the POS page's import map");
  const served = await browser.get(path[1]!);
  assert.equal(served.status, 200);
  assert.equal(served.text, module, "the package's file as it is");
  assert.match(String(served.headers["content-type"]), /^text\/javascript; charset=utf-8$/);
  assert.equal(served.headers["cache-control"], "public, max-age=31536000, immutable");
  assert.equal(served.headers.etag, `"${path[2]}"`);
  assert.equal((await browser.get("/static/boxcert-web.js")).headers["cache-control"], "public, max-age=300", "unversioned: 5 minutes");
});

test("with --insecure-no-login the pages open without a session and say so", async (t) => {
  const fixture = await startTestErp({ password: null });
  t.after(() => fixture.stop());
  const browser = new Browser(fixture.target);
  const page = await browser.get("/iot");
  assert.equal(page.status, 200);
  assert.match(page.text, /id="no-login"/);
  assert.equal((await browser.post("/iot/connect", {})).status, 403, "CSRF still holds");
  assert.equal((await browser.post("/iot/connect", { csrf: Browser.csrfOf(page) })).status, 200);
  assert.ok(fixture.log.lines().some((line) => line.event === "no_login"));
});
