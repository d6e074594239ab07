/**
 * The homepage against a hostile web page and a hostile LAN neighbour, over real sockets: DNS rebinding
 * (the Host of every route), inherited names in request values, the log lines a page can cause, secrets
 * in a server URL, what the log never holds, and the confirmation before a connection is replaced.
 */
import { test } from "node:test";
import type { TestContext } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import https from "node:https";
import { readFile, writeFile } from "node:fs/promises";
import { ConfigError, parseConnectionToken, parseServerUrl, readConfig, formatConnectionToken } from "../src/config.ts";
import { isRefusalReason } from "@boxcert/shared";
import { readAllLogs } from "../src/logs.ts";
import { outcomeOf } from "../src/diagnostics/dns.ts";
import { fill } from "../src/diagnostics/render.ts";
import { startTestIssuer } from "./helpers/test-issuer.ts";
import { connectedDir, startBox } from "./helpers/fixture.ts";
import type { BoxFixture } from "./helpers/fixture.ts";

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

interface Session {
  cookie: string;
  token: string;
  post(path: string, fields: Record<string, string>, headers?: Record<string, string>): Promise<Answer>;
}

/** The homepage's CSRF cookie and token, and a POST that carries them as the page's own form would. */
async function session(port: number): Promise<Session> {
  const home = await request(port, "/");
  const cookie = String(home.headers["set-cookie"]?.[0] ?? "").split(";")[0] as string;
  const token = /name="csrf" value="([^"]+)"/.exec(home.body)?.[1] as string;
  assert.ok(cookie && token, "the homepage gives a CSRF cookie and token");
  return {
    cookie,
    token,
    post: (path, fields, headers = {}) =>
      request(port, path, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded", cookie, origin: `http://127.0.0.1:${port}`, host: `127.0.0.1:${port}`, ...headers },
        body: new URLSearchParams({ csrf: token, ...fields }).toString(),
      }),
  };
}

async function connectedBox(t: TestContext, credential?: { dbUuid: string; enterpriseCode: string }): Promise<BoxFixture & { issuerCa: string }> {
  const issuer = await startTestIssuer();
  const temp = await connectedDir(credential);
  const fixture = await startBox({ issuerUrl: issuer.url, lanResolvers: ["127.0.0.1:9"], zoneDns: ["127.0.0.1:9"] }, temp.dir);
  t.after(async () => {
    await fixture.stop();
    await issuer.close();
    await temp.cleanup();
  });
  return { ...fixture, issuerCa: issuer.ca.pem };
}

async function logLines(fixture: BoxFixture): Promise<Array<Record<string, unknown>>> {
  const text = (await readAllLogs(fixture.paths.log)).toString("utf8");
  return text
    .trim()
    .split("\n")
    .filter((line) => line !== "")
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

test("DNS rebinding: every route but /api/ping answers only to the box's own names", async (t) => {
  const fixture = await connectedBox(t);
  const status = await fixture.box.checkNow();
  assert.equal(status.certificate.status, "ok");
  const { httpPort, httpsPort } = fixture.ports;
  const own = new URL(status.httpsUrl as string).hostname;
  const [, label, ...zone] = own.split(".");
  const routes = ["/", "/api/status", "/api/diagnostics", "/diagnostics", "/logs/download", "/static/box.css"];
  const foreign = ["attacker.example", `evil.${label}.${zone.join(".")}`, `127-0-0-2.${label}.${zone.join(".")}`, `x.${own}`, `${label}.${zone.join(".")}`];
  for (const host of foreign) {
    for (const route of routes) {
      const answer = await request(httpPort, route, { headers: { host: `${host}:${httpPort}` } });
      assert.equal(answer.status, 403, `${host} ${route}`);
      assert.ok(!answer.body.includes(status.identifier), `${host} ${route}: the identifier is not in the refusal`);
    }
  }
  for (const host of [own, "127.0.0.1", "localhost"]) {
    for (const route of routes) assert.equal((await request(httpPort, route, { headers: { host: `${host}:${httpPort}` } })).status, 200, `${host} ${route}`);
  }
  // The device API any page may call answers by any name, and says nothing but that a box is here.
  const ping = await request(httpPort, "/api/ping", { headers: { host: "attacker.example" } });
  assert.equal(ping.status, 200);
  assert.ok(!ping.body.includes(status.identifier));
  // The same policy on the HTTPS listener (both serve the same routes), over verified TLS.
  const overTls = (host: string): Promise<number> =>
    new Promise((resolve, reject) => {
      const req = https.request(
        { host: "127.0.0.1", port: httpsPort, path: "/api/status", servername: own, ca: fixture.issuerCa, headers: { host: `${host}:${httpsPort}` }, agent: false },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
      req.on("error", reject);
      req.end();
    });
  assert.equal(await overTls("attacker.example"), 403);
  assert.equal(await overTls(`evil.${label}.${zone.join(".")}`), 403);
  assert.equal(await overTls(own), 200);
});

test("request values never match inherited names: ?notice=constructor and friends are a normal page", async (t) => {
  const fixture = await connectedBox(t);
  const port = fixture.ports.httpPort;
  for (const name of ["constructor", "__proto__", "toString", "hasOwnProperty", "valueOf", "isPrototypeOf", "__defineGetter__"]) {
    const page = await request(port, `/?notice=${name}`);
    assert.equal(page.status, 200, `?notice=${name}`);
    assert.ok(!page.body.includes('id="notice"'), `?notice=${name} shows no notice`);
    assert.equal((await request(port, `/?lang=${name}`)).status, 200, `?lang=${name}`);
    assert.equal((await request(port, `/diagnostics?notice=${name}&lang=${name}`)).status, 200);
    assert.equal((await request(port, "/", { headers: { cookie: `${name}=1; boxcert_lang=${name}; boxcert_csrf=${name}; boxcert_session=${name}` } })).status, 200, `cookie ${name}`);
    assert.equal((await request(port, `/static/${name}`)).status, 404);
    const post = await request(port, "/log-level", {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", cookie: `boxcert_csrf=${name}; ${name}=x` },
      body: `csrf=${name}&level=${name}&${name}=1`,
    });
    assert.equal(post.status, 403, `a POST with ${name} everywhere is refused, not a crash`);
  }
  const s = await session(port);
  const bad = await s.post("/log-level", { level: "constructor" });
  assert.equal(bad.status, 400);
  assert.equal((await logLines(fixture)).filter((line) => (line.level as number) >= 50).length, 0, "no error logged");
});

test("the other look-ups by a value from outside: a resolver's error code, a template's names, an issuer's refusal reason", () => {
  for (const name of ["constructor", "__proto__", "toString", "hasOwnProperty"]) {
    assert.equal(outcomeOf(name), "error", `resolver code ${name}`);
    assert.equal(fill(`a {${name}} b`), "a  b", `template name ${name}`);
    assert.equal(isRefusalReason(name), false, `issuer refusal reason ${name}`);
  }
  assert.equal(outcomeOf("ENOTFOUND"), "nxdomain");
  assert.equal(fill("{x}!", { x: "y" }), "y!");
  assert.equal(isRefusalReason("database_not_production"), true);
});

test("a page that makes the browser send thousands of refused requests writes a few lines and one summary", async (t) => {
  const fixture = await connectedBox(t);
  const port = fixture.ports.httpPort;
  const before = (await readAllLogs(fixture.paths.log)).length;
  const long = "x".repeat(4000);
  const N = 1500;
  for (let i = 0; i < N; i += 50) {
    await Promise.all(
      Array.from({ length: 50 }, () =>
        request(port, `/log-level?${long}`, {
          method: "POST",
          headers: { "content-type": "application/x-www-form-urlencoded", origin: `http://evil.example/${long}` },
          body: "level=error",
        }),
      ),
    );
  }
  await fixture.stop();
  const lines = await logLines(fixture);
  const refused = lines.filter((line) => line.event === "request_refused");
  assert.ok(refused.length > 0 && refused.length <= 10, `${refused.length} lines one by one`);
  for (const line of refused) assert.ok(String(line.path).length <= 201 && String(line.origin).length <= 201, "fields are cut");
  const summaries = lines.filter((line) => line.event === "requests_refused_summary");
  const counted = summaries.reduce((sum, line) => sum + (line.count as number), 0);
  assert.equal(refused.length + counted, N, "every refusal is accounted for");
  assert.deepEqual(summaries.at(-1)?.byReason, { "foreign-origin": counted });
  const grown = (await readAllLogs(fixture.paths.log)).length - before;
  assert.ok(grown < 20_000, `the log grew by ${grown} bytes for ${N} requests`);
});

test("a server URL with a login, a key or a fragment is refused, and never repeated", async (t) => {
  for (const url of ["https://user:hunter2@erp.example/", "https://erp.example/?apikey=hunter2", "https://erp.example/#hunter2", "https://:hunter2@erp.example/", "https://erp.example/?"]) {
    assert.throws(() => parseServerUrl(url), (err: Error) => err instanceof ConfigError && !err.message.includes("hunter2"), url);
    assert.throws(() => parseConnectionToken(formatConnectionToken({ server: url, dbUuid: "U", enterpriseCode: "C" })), ConfigError, url);
  }
  assert.throws(() => parseServerUrl("not a url hunter2"), (err: Error) => !err.message.includes("hunter2"));
  assert.equal(parseServerUrl("https://erp.example/shop/1"), "https://erp.example/shop/1");

  const fixture = await connectedBox(t);
  const port = fixture.ports.httpPort;
  const s = await session(port);
  const answer = await s.post("/connect", { server: "https://admin:hunter2@erp.example/?apikey=hunter2", dbUuid: "db-2", enterpriseCode: "C-2" });
  assert.equal(answer.status, 400);
  assert.ok(!answer.body.includes("hunter2"), "the page does not repeat it");
  assert.match(answer.body, /user name or password/);
  const status = await request(port, "/api/status");
  assert.ok(!status.body.includes("hunter2"));
  assert.ok(!(await readAllLogs(fixture.paths.log)).toString().includes("hunter2"), "nor the log");
  // A config.json that holds one (written by hand, or before this check) is refused, without the secret.
  await fixture.box.checkNow(); // the check at start writes config.json too (enrolment): let it end first
  await writeFile(fixture.paths.config, JSON.stringify({ ...(await readConfig(fixture.paths)), server: "https://u:hunter2@erp.example/" }));
  await assert.rejects(readConfig(fixture.paths), (err: Error) => err instanceof ConfigError && /user name or password/.test(err.message) && !err.message.includes("hunter2"));
});

test("the log never holds the database UUID whole, nor a broken config.json's text", async (t) => {
  const uuid = "5f0c1e2a-8b7d-4c3e-9a1f-0b2c3d4e5f60";
  const fixture = await connectedBox(t, { dbUuid: "db-1", enterpriseCode: "SECRET-CODE-42" });
  const port = fixture.ports.httpPort;
  const s = await session(port);
  assert.equal((await s.post("/credential", { dbUuid: uuid, enterpriseCode: "SECRET-CODE-43", confirm: "yes" })).status, 303);
  assert.equal((await s.post("/connect", { server: "https://erp2.example/", dbUuid: uuid, enterpriseCode: "SECRET-CODE-43", confirm: "yes" })).status, 303);
  let log = (await readAllLogs(fixture.paths.log)).toString();
  assert.ok(log.includes('"event":"credential_set"') && log.includes('"event":"connected"'));
  assert.ok(log.includes(`${uuid.slice(0, 4)}••••••••${uuid.slice(-4)}`), "masked as the homepage masks it");
  assert.ok(!log.includes(uuid), "never whole");

  // A hand-broken config.json: the parse error names the file and the place, never the text around it.
  await fixture.box.checkNow(); // the check /connect started writes config.json too: let it end first
  const text = await readFile(fixture.paths.config, "utf8");
  await writeFile(fixture.paths.config, text.replace('"enterpriseCode": "SECRET-CODE-43"', '"enterpriseCode": SECRET-CODE-43'));
  await assert.rejects(readConfig(fixture.paths), (err: Error) => /not valid JSON/.test(err.message) && !err.message.includes("SECRET"));
  await writeFile(fixture.paths.config, text.replace('"enterpriseCode": "SECRET-CODE-43",', '"enterpriseCode": "SECRET-CODE-43" ]'));
  await assert.rejects(readConfig(fixture.paths), (err: Error) => /line \d+, column \d+/.test(err.message) && !err.message.includes("SECRET"));
  assert.equal((await request(port, "/")).status, 200, "the homepage re-reads the file, keeps the last good one");
  log = (await readAllLogs(fixture.paths.log)).toString();
  assert.ok(log.includes('"event":"config_unreadable"'));
  assert.ok(!log.includes("SECRET-CODE"), "no part of the code in the log");
});

test("a pasted token or new credential asks before replacing the one the box holds; http:// is warned about", async (t) => {
  const fixture = await connectedBox(t, { dbUuid: "db-1", enterpriseCode: "SECRET-CODE-42" });
  const port = fixture.ports.httpPort;
  const s = await session(port);
  const token = formatConnectionToken({ server: "https://erp2.example/", dbUuid: "db-2", enterpriseCode: "OTHER-CODE-77" });
  const asked = await s.post("/connect", { token });
  assert.equal(asked.status, 200);
  assert.match(asked.body, /id="confirm"/);
  assert.match(asked.body, /already holds a database/);
  assert.ok(asked.body.includes("https://erp.example/") && asked.body.includes("https://erp2.example/"), "now and new, side by side");
  assert.ok(!asked.body.includes("SECRET-CODE-42"), "the held code is not on the page");
  assert.equal((await readConfig(fixture.paths))?.dbUuid, "db-1", "nothing changed yet");
  const carriedToken = /name="token" value="([^"]+)"/.exec(asked.body)?.[1];
  assert.equal(carriedToken, token, "the form carries the token to the confirmation");
  assert.equal((await s.post("/connect", { token, confirm: "yes" })).status, 303);
  assert.equal((await readConfig(fixture.paths))?.dbUuid, "db-2");

  // The same values again replace nothing: no question.
  assert.equal((await s.post("/connect", { token })).status, 303);
  // A new credential through the Credential dialog: asked too.
  const credential = await s.post("/credential", { dbUuid: "db-3", enterpriseCode: "THIRD-CODE" });
  assert.equal(credential.status, 200);
  assert.match(credential.body, /id="confirm"/);
  assert.equal((await readConfig(fixture.paths))?.dbUuid, "db-2");

  // http://: warned, even for a box that holds nothing to replace.
  await s.post("/credential/clear", {});
  const plain = await s.post("/connect", { server: "http://erp.example:8069/", dbUuid: "db-4", enterpriseCode: "CODE-4" });
  assert.equal(plain.status, 200);
  assert.match(plain.body, /starts with http:\/\/.*unencrypted/s);
  assert.doesNotMatch(plain.body, /already holds/);
  assert.equal((await s.post("/connect", { server: "http://erp.example:8069/", dbUuid: "db-4", enterpriseCode: "CODE-4", confirm: "yes" })).status, 303);
  assert.ok((await readAllLogs(fixture.paths.log)).toString().includes('"event":"server_plaintext"'));
});
