/**
 * The box homepage in a real browser (Debian's Chromium through playwright-core) against real issuer and
 * box processes: every error state with its code, meaning and remedies in English and Italian; the gear
 * menu (Connect, Credential, Log level, Download logs, certificate details, admin password); cross-site
 * requests refused; the HTTPS address opening with a certificate Chromium trusts for real.
 *
 * One Chromium and four box processes for the whole file. Screenshots go to test-artifacts/.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import { X509Certificate } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Page } from "playwright-core";
import { BOX_ERRORS, BOX_ERRORS_IT, REFUSALS_IT, type BoxErrorCode } from "@boxcert/shared";
import { formatConnectionToken, updateConfig, dataPaths, ensureDataDir, DIAGNOSTICS_MESSAGES } from "@boxcert/box";
import { freePort, ROOT, tempDir } from "./support/processes.ts";
import { customer, startBox, startIssuerProcess, ZONE, type Box, type Issuer } from "./support/system.ts";
import { launchBrowser, type TestBrowser } from "./support/browser.ts";

const ARTIFACTS = join(ROOT, "test-artifacts");
const UNKNOWN_DB = "11111111-2222-4333-8444-555555555555";
const CODE = "SUB-BROWSER-7731";

let issuer: Issuer;
let browser: TestBrowser;
let page: Page;
let uuid: string;
let main: Box;
let certRead: Box;
let unreachable: Box;
let failing: Box;
let mainFlags: string[];
const servers: Server[] = [];
const boxes: Box[] = [];

async function listen(server: Server): Promise<number> {
  const port = await freePort();
  await new Promise<void>((r) => server.listen(port, "127.0.0.1", r));
  servers.push(server);
  return port;
}

/** What `boxcert box connect` writes, written in-process (a process per box costs seconds on 2 cores). */
async function connected(dbUuid: string, enterpriseCode: string): Promise<string> {
  const dir = tempDir("boxcert-box-");
  const paths = dataPaths(dir);
  await ensureDataDir(paths);
  await updateConfig(paths, { server: "http://erp.test:8069/", dbUuid, enterpriseCode });
  return dir;
}

async function box(options: Parameters<typeof startBox>[0]): Promise<Box> {
  const b = await startBox(options);
  boxes.push(b);
  return b;
}

before(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  issuer = await startIssuerProcess();
  const rootPem = join(issuer.keysDir, "embedded-ca", "root.pem");
  const unavailable = await listen(
    createServer((_req, res) => {
      res.writeHead(503, { "content-type": "text/html" });
      res.end("<h1>Down for maintenance</h1>");
    }),
  );
  const [corrupt, offline, busy] = await Promise.all([connected(UNKNOWN_DB, "X"), connected(UNKNOWN_DB, "X"), connected(UNKNOWN_DB, "X")]);
  const registered = customer(issuer.store, CODE, "in_progress", 3);
  writeFileSync(join(corrupt, "https.pem"), "-----BEGIN CERTIFICATE-----\ngarbage\n-----END CERTIFICATE-----\n", { mode: 0o600 });
  const closedPort = await freePort();
  // The diagnostics ask these instead of the machine's resolvers: nothing listens there, so they end at once.
  mainFlags = ["--name", "shop-box", "--resolver", `127.0.0.1:${closedPort}`, "--zone-dns", `127.0.0.1:${closedPort}`];
  [browser, main, certRead, unreachable, failing] = await Promise.all([
    launchBrowser({ zone: ZONE, rootPem }),
    box({ issuer: issuer.url, extra: mainFlags }),
    box({ issuer: issuer.url, dataDir: corrupt }),
    box({ issuer: `http://127.0.0.1:${closedPort}`, dataDir: offline, extra: ["--name", "shop-box"] }),
    box({ issuer: `http://127.0.0.1:${unavailable}`, dataDir: busy }),
  ]);
  page = await browser.context.newPage();
  uuid = await registered;
});

after(async () => {
  await browser?.close();
  await Promise.all(boxes.map((b) => b.proc.stop()));
  await issuer?.proc.stop();
  for (const s of servers) s.close();
});

async function open(b: Box, lang: "en" | "it", path = "/"): Promise<void> {
  const url = `${b.httpUrl}${path}?lang=${lang}`;
  // The homepage reloads itself when a check it watched ends (box.js): that reload can land on top of this
  // navigation (interrupted, or no response of its own). Then the page is let load, and opened again.
  const go = () => page.goto(url).catch((err: Error) => (/interrupted by another navigation/.test(err.message) ? null : Promise.reject(err)));
  let res = await go();
  if (!res) {
    await page.waitForLoadState("load");
    res = await go();
  }
  assert.equal(res?.status(), 200);
  assert.equal(await page.getAttribute("html", "lang"), lang);
}

/** The page shows this error: the exact code, the catalogue's meaning and every remedy, in this language. */
async function assertError(code: BoxErrorCode, shown: string, lang: "en" | "it"): Promise<string> {
  const info = (lang === "it" ? BOX_ERRORS_IT : BOX_ERRORS)[code];
  assert.equal((await page.textContent("#error .code"))?.trim(), shown, `${code} ${lang}`);
  assert.equal((await page.textContent("#error .meaning"))?.trim(), info.meaning);
  const remedies = await page.locator("#error .remedies li").allTextContents();
  for (const remedy of info.remedies) assert.ok(remedies.includes(remedy), `${code} ${lang}: missing remedy "${remedy}"`);
  return (await page.textContent("#error")) ?? "";
}

async function gear(entry: string): Promise<void> {
  await page.click("#gear summary");
  await page.click(`#gear [data-open="dlg-${entry}"], #gear a[href="/${entry}"]`);
}

async function submit(dialog: string, button: string): Promise<void> {
  await Promise.all([page.waitForURL(/notice=|\/(credential|connect|log-level|login|admin-password|check)/), page.click(`#dlg-${dialog} ${button}`)]);
}

test("CERT_READ_EXCEPTION, REQUEST_EXCEPTION and REQUEST_STATUS: code, meaning and remedies in English and Italian", async () => {
  await Promise.all([
    certRead.until("CERT_READ_EXCEPTION", (s) => s.certificate.errorCode !== null),
    unreachable.until("REQUEST_EXCEPTION", (s) => s.certificate.errorCode !== null),
    failing.until("REQUEST_STATUS", (s) => s.certificate.errorCode !== null),
  ]);
  for (const lang of ["en", "it"] as const) {
    await open(certRead, lang);
    const read = await assertError("ERR_IOT_HTTPS_CHECK_CERT_READ_EXCEPTION", "ERR_IOT_HTTPS_CHECK_CERT_READ_EXCEPTION", lang);
    assert.ok(read.includes(join(certRead.dataDir, "https.pem")), "names the file");

    await open(unreachable, lang);
    const exception = await assertError("ERR_IOT_HTTPS_LOAD_REQUEST_EXCEPTION", "ERR_IOT_HTTPS_LOAD_REQUEST_EXCEPTION", lang);
    assert.match(exception, /refused/i, "the detail says what failed");
    assert.ok(exception.includes(join(unreachable.dataDir, "logs", "box.log")), "where the full exception is");
    assert.ok(await page.isVisible('#error a[href="/logs/download"]'), "Download logs from the error");
    if (lang === "en") await page.screenshot({ path: join(ARTIFACTS, "homepage-error.png"), fullPage: true });
    else {
      // Every entry of the gear menu is in the page, in the page's language.
      await page.click("#gear summary");
      const entries = (await page.locator("#gear li").allTextContents()).map((e) => e.trim());
      assert.deepEqual(entries, ["Credenziale", "Livello log", "Scarica registri", "Dettagli del certificato", "Collega a un database", "Diagnostica", "Password amministratore"]);
      await page.screenshot({ path: join(ARTIFACTS, "homepage-error-it-gear.png"), fullPage: true });
      await page.click("#gear summary");
    }

    await open(failing, lang);
    const status = await assertError("ERR_IOT_HTTPS_LOAD_REQUEST_STATUS", "ERR_IOT_HTTPS_LOAD_REQUEST_STATUS 503", lang);
    assert.ok(status.includes(lang === "it" ? "Servizio non disponibile" : "Service Unavailable"), "what the status means");
    assert.ok(status.includes(lang === "it" ? "a 3 cifre da indicare nel ticket: 503" : "quote in the ticket: 503"));
  }
});

test("NO_SERVER → Connect (token) → NO_RESULT → Credential cleared → NO_CREDENTIAL → Credential set → a certificate", async () => {
  await main.until("NO_SERVER", (s) => s.certificate.errorCode !== null);
  for (const lang of ["it", "en"] as const) {
    await open(main, lang);
    await assertError("ERR_IOT_HTTPS_CHECK_NO_SERVER", "ERR_IOT_HTTPS_CHECK_NO_SERVER", lang);
    assert.equal((await page.textContent("#database"))?.trim(), lang === "it" ? "Non collegato." : "Not connected.");
  }
  // The error's own button opens the Connect dialog; a token from the database's IoT page connects.
  await page.click('#error [data-open="dlg-connect"]');
  assert.ok(await page.isVisible("#dlg-connect"));
  await page.fill('#dlg-connect input[name="token"]', formatConnectionToken({ server: "http://erp.test:8069", dbUuid: UNKNOWN_DB, enterpriseCode: CODE }));
  await submit("connect", "#connect-save");
  // An http:// database: the box asks first, and says why.
  assert.match((await page.textContent("#confirm")) ?? "", /starts with http:\/\/.*unencrypted/s);
  assert.equal(await page.locator("#notice").count(), 0, "nothing saved yet");
  await Promise.all([page.waitForURL(/notice=connected/), page.click("#confirm-save")]);
  assert.match(await page.textContent("#notice") ?? "", /connected/);
  await main.until("NO_RESULT", (s) => s.certificate.errorCode !== null && s.server !== null);
  for (const lang of ["en", "it"] as const) {
    await open(main, lang);
    const text = await assertError("ERR_IOT_HTTPS_LOAD_REQUEST_NO_RESULT", "ERR_IOT_HTTPS_LOAD_REQUEST_NO_RESULT", lang);
    assert.ok(text.includes(lang === "it" ? REFUSALS_IT.unknown_database : "the database UUID is not known to the issuer"), "the issuer's reason");
    assert.ok(text.includes("unknown_database"));
  }

  await gear("credential");
  await submit("credential", "#credential-clear");
  await Promise.all([page.waitForURL(/notice=check/), page.click("#check-again")]);
  await main.until("NO_CREDENTIAL", (s) => s.certificate.errorCode === "ERR_IOT_HTTPS_LOAD_NO_CREDENTIAL");
  for (const lang of ["it", "en"] as const) {
    await open(main, lang);
    await assertError("ERR_IOT_HTTPS_LOAD_NO_CREDENTIAL", "ERR_IOT_HTTPS_LOAD_NO_CREDENTIAL", lang);
  }
  // "open Credential": the error's button opens the dialog; the new values are used by the next check.
  await page.click('#error [data-open="dlg-credential"]');
  assert.equal(await page.textContent("#masked-code"), "not set");
  await page.screenshot({ path: join(ARTIFACTS, "credential-dialog.png") });
  await page.fill('#dlg-credential input[name="dbUuid"]', uuid);
  await page.fill('#dlg-credential input[name="enterpriseCode"]', CODE);
  await submit("credential", "#credential-save");
  const ok = await main.until("a certificate", (s) => s.certificate.status === "ok");
  assert.equal(ok.certificate.errorCode, null);
  await open(main, "en");
  const html = await page.content();
  assert.ok(!html.includes(CODE), "the subscription code is never on the page");
  assert.ok(!html.includes(uuid), "the database UUID is shown masked");
  await gear("credential");
  assert.equal(await page.textContent("#masked-code"), `••••••••${CODE.slice(-2)}`);
  assert.equal(await page.textContent("#masked-uuid"), `${uuid.slice(0, 4)}••••••••${uuid.slice(-4)}`);
});

test("a valid certificate: the banner, the details, this device reaching the HTTPS address, and the link opening over trusted HTTPS", async () => {
  const status = await main.until("a certificate", (s) => s.certificate.status === "ok");
  await open(main, "en");
  assert.equal(await page.isVisible("#error"), false);
  const banner = (await page.textContent("#certificate")) ?? "";
  assert.match(banner, /Valid/);
  assert.match((await page.textContent("#days-left")) ?? "", /^0 days left$/, "a 1 h certificate");
  assert.ok(banner.includes(status.certificate.issuer ?? "?"), "issuer");
  for (const name of status.certificate.names ?? []) assert.ok(banner.includes(name), name);
  assert.equal(await page.textContent("#box-name"), "shop-box");
  assert.equal(await page.textContent("#box-ip"), "127.0.0.1");
  // The browser-side check: opened over HTTP by IP, the script fetches the HTTPS address's /api/ping.
  await page.waitForSelector("#browser-check.ok");
  assert.match((await page.textContent("#browser-check")) ?? "", /This device reaches https:\/\//);
  await page.screenshot({ path: join(ARTIFACTS, "homepage-ok.png"), fullPage: true });
  // A device that cannot reach the name (here: the request dropped in the browser) is told so.
  await page.route("**/api/ping", (route) => route.abort("namenotresolved"));
  await open(main, "it");
  await page.waitForSelector("#browser-check.fail");
  assert.match((await page.textContent("#browser-check")) ?? "", /Questo dispositivo non raggiunge https:\/\/.*DNS/);
  await page.unroute("**/api/ping");

  // Certificate details: the chain as PEM and the SHA-256 fingerprint of the certificate in https.pem.
  const leaf = new X509Certificate(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(readFileSync(join(main.dataDir, "https.pem"), "utf8"))![0]);
  await gear("certificate");
  assert.equal(await page.textContent("#fingerprint"), leaf.fingerprint256);
  assert.match((await page.textContent("#chain")) ?? "", /^-----BEGIN CERTIFICATE-----/);
  await page.click("#dlg-certificate form.close button");

  // The HTTPS link: Chromium resolves the name to 127.0.0.1 and validates the certificate against the root
  // in its NSS database. An untrusted certificate would fail the navigation (net::ERR_CERT_...).
  const href = await page.getAttribute("#https-link", "href");
  assert.equal(href, status.httpsUrl);
  await Promise.all([page.waitForURL(`${status.httpsUrl}**`), page.click("#https-link")]);
  const secured = await page.goto(status.httpsUrl!);
  assert.equal(secured?.status(), 200);
  const tls = await secured!.securityDetails();
  assert.equal(tls?.subjectName, status.certificate.subject);
  assert.equal(await page.textContent("#box-name"), "shop-box");
});

test("Diagnostics: linked from the home page, rendered in the layout in both languages", async () => {
  await open(main, "en");
  await Promise.all([page.waitForURL(/\/diagnostics$/), page.click('#certificate a[href="/diagnostics"]')]);
  assert.equal(await page.textContent("#diagnostics h2"), DIAGNOSTICS_MESSAGES.en.title);
  assert.equal(await page.textContent("header h1"), "shop-box");
  await open(main, "it", "/diagnostics");
  assert.equal(await page.textContent("#diagnostics h2"), DIAGNOSTICS_MESSAGES.it.title);
  const report = (await (await fetch(`${main.httpUrl}/api/diagnostics`)).json()) as { hostname: string; ip: string; zone: string };
  assert.equal(report.hostname, new URL((await main.status()).httpsUrl!).hostname);
  assert.equal(report.zone, ZONE);
});

test("Log level: debug at once, a debug line in the downloaded log, kept across a restart", async () => {
  await open(main, "en");
  await gear("log-level");
  await page.check('#dlg-log-level input[value="debug"]');
  await submit("log-level", "#log-level-save");
  assert.equal(await page.textContent("#log-level"), "debug");
  assert.equal((await main.status()).logLevel, "debug");
  await Promise.all([page.waitForURL(/notice=check/), page.click("#check-again")]);
  await main.until("a check at debug", (s) => s.certificate.status === "ok");

  await open(main, "en");
  await page.click("#gear summary");
  const [download] = await Promise.all([page.waitForEvent("download"), page.click("#gear #download-logs")]);
  assert.match(download.suggestedFilename(), /^boxcert-shop-box-\d{4}-\d{2}-\d{2}T\d{6}Z\.log$/);
  const file = join(ARTIFACTS, download.suggestedFilename());
  await download.saveAs(file);
  const lines = readFileSync(file, "utf8").trim().split("\n").map((l) => JSON.parse(l) as { level: number; event?: string; time: string });
  assert.ok(lines.some((l) => l.event === "log_level"), "the change is logged");
  assert.ok(lines.some((l) => l.level === 20 && l.event === "check"), "a debug line after the change");
  assert.ok(Date.now() - Date.parse(lines.at(-1)!.time) < 60_000, "recent lines");
  assert.ok(!readFileSync(file, "utf8").includes(CODE), "no secret in the log");

  await main.proc.stop();
  const restarted = await box({ issuer: issuer.url, dataDir: main.dataDir, extra: mainFlags });
  main = restarted;
  assert.equal((await main.status()).logLevel, "debug");
  await open(main, "it");
  assert.equal(await page.textContent("#log-level"), "debug");
});

test("cross-site requests are refused: a form on another origin, a foreign Origin, no token", async () => {
  const before = (await main.status()).logLevel;
  const target = `${main.httpUrl}/log-level`;
  const evilPort = await listen(
    createServer((_req, res) => {
      res.writeHead(200, { "content-type": "text/html" });
      res.end(`<form id="f" method="post" action="${target}"><input name="level" value="error"></form><script>document.getElementById("f").submit()</script>`);
    }),
  );
  const res = await Promise.all([page.waitForURL(target), page.goto(`http://localhost:${evilPort}/`)]);
  assert.ok(res);
  assert.match((await page.textContent("#refusal-message")) ?? "", /another site/);
  assert.equal((await main.status()).logLevel, before);

  const foreign = await fetch(target, {
    method: "POST",
    headers: { origin: "http://evil.example", "content-type": "application/x-www-form-urlencoded" },
    body: "level=error",
  });
  assert.equal(foreign.status, 403);
  const noToken = await fetch(target, { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body: "level=error" });
  assert.equal(noToken.status, 403);
  assert.match(await noToken.text(), /security token/);
  const rebound = await fetch(target, { method: "POST", headers: { host: "evil.example", "content-type": "application/x-www-form-urlencoded" }, body: "level=error" });
  assert.equal(rebound.status, 403);
  assert.equal((await main.status()).logLevel, before);
  // Only /api/ping carries CORS; it answers private-network preflights.
  const preflight = await fetch(`${main.httpUrl}/api/ping`, {
    method: "OPTIONS",
    headers: { origin: "https://erp.example", "access-control-request-method": "GET", "access-control-request-private-network": "true" },
  });
  assert.equal(preflight.headers.get("access-control-allow-private-network"), "true");
  assert.equal((await fetch(`${main.httpUrl}/api/status`)).headers.get("access-control-allow-origin"), null);
});

test("the admin password protects the gear menu's actions", async () => {
  await open(main, "en");
  await gear("password");
  await page.fill('#dlg-password input[name="password"]', "correct horse");
  await page.fill('#dlg-password input[name="repeat"]', "correct horse");
  await submit("password", "#password-save");
  assert.match((await page.textContent("#notice")) ?? "", /password was set/);
  const config = JSON.parse(readFileSync(join(main.dataDir, "config.json"), "utf8")) as { adminPassword: { hash: string; salt: string } };
  assert.ok(config.adminPassword.hash && config.adminPassword.salt);
  assert.ok(!readFileSync(join(main.dataDir, "config.json"), "utf8").includes("correct horse"));

  // Logged out, every protected entry asks for the password, and the routes refuse.
  await page.click("#gear summary");
  await Promise.all([page.waitForURL(/notice=logged-out/), page.click('#gear form[action="/logout"] button')]);
  assert.equal(await page.getAttribute('#gear li:nth-child(1) button', "data-open"), "dlg-login");
  const download = await page.evaluate(async () => (await fetch("/logs/download")).status);
  assert.equal(download, 403);
  await gear("login");
  await page.fill("#login-password", "wrong password");
  await submit("login", "#login-submit");
  assert.match((await page.textContent("#refusal-message")) ?? "", /Wrong password/);
  await open(main, "en");
  await gear("login");
  await page.fill("#login-password", "correct horse");
  await submit("login", "#login-submit");
  assert.match((await page.textContent("#notice")) ?? "", /Logged in/);
  // Clearing needs the current password.
  await gear("password");
  await page.fill('#dlg-password input[name="current"]', "correct horse");
  await submit("password", "#password-clear");
  assert.match((await page.textContent("#notice")) ?? "", /cleared/);
  assert.equal((JSON.parse(readFileSync(join(main.dataDir, "config.json"), "utf8")) as { adminPassword: unknown }).adminPassword, null);
});
