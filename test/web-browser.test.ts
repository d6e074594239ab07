/**
 * @boxcert/web in a real browser: Debian's Chromium (playwright-core) loads a POS page over HTTPS from a
 * local server whose certificate it trusts (a test root in its NSS database), the page imports
 * packages/web/src/boxcert-web.js as it is, and reaches fake boxes (node https + http servers answering
 * /api/ping, /api/status and POST /api/pos/test like a box paired with the page's database, docs/erp.md).
 *
 * What makes it a shop's situation on loopback:
 * - the page's origin counts as public (`--ip-address-space-overrides=127.0.0.1:<page port>=public`), so
 *   Chromium applies Local Network Access to the boxes on 127.0.0.1 (the "loopback" address space; a
 *   real box on 192.168.x.y is "local": same rules, the other permission name);
 * - the boxes' names resolve by `--host-resolver-rules`: each box's label under the zone maps to
 *   127.0.0.1, every other name is NXDOMAIN (`MAP * ~NOTFOUND`), which is what a router's DNS rebinding
 *   protection does to the box's name;
 * - nothing skips certificate checks: the untrusted box's certificate comes from a root Chromium does not
 *   know, the expired one from the trusted root.
 *
 * What Chromium 156.0.8078.108 (Debian 12, headless) did, case by case (docs/web.md "Observed"):
 * - with local-network-access granted for the page's origin (context.grantPermissions): the HTTPS ping
 *   succeeds; http://127.0.0.1:<port> with targetAddressSpace "loopback" succeeds; with "local" it fails
 *   ("Request had a target IP address space of `local` yet the resource is in address space `loopback`");
 * - without a grant the permission reads "prompt"; the first request to the box is refused at once
 *   ("Permission was denied for this request to access the `loopback` address space": headless shows no
 *   question and dismisses it) and the permission then reads "denied" (loopback-network and
 *   local-network-access; local-network stays "prompt"); the box sees no request;
 * - an untrusted or expired certificate, an NXDOMAIN name and a closed port all end the fetch with
 *   "TypeError: Failed to fetch" (net::ERR_CERT_AUTHORITY_INVALID, ERR_CERT_DATE_INVALID,
 *   ERR_NAME_NOT_RESOLVED, ERR_CONNECTION_REFUSED in the console), within milliseconds;
 * - plain http:// by name from the https:// page is blocked as mixed content without targetAddressSpace,
 *   and allowed with it (permission granted).
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createServer as createHttpsServer } from "node:https";
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse, type Server } from "node:http";
import { generateKeyPairSync } from "node:crypto";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { AddressInfo } from "node:net";
import { chromium, type Browser, type BrowserContext, type Page } from "playwright-core";
import type * as web from "@boxcert/web";
import { makeCa, issueLeaf, type TestCa } from "../packages/box/test/helpers/pki.ts";
import { CHROMIUM, CHROMIUM_FLAGS, trustRoot } from "./support/browser.ts";
import { ensureDebianPackage, freePort, ROOT, tempDir } from "./support/processes.ts";

const ZONE = "zone.test";
const MODULE = join(ROOT, "packages/web/src/boxcert-web.js");

interface Seen {
  method: string;
  path: string;
  host: string;
}

/** A fake box: what a box paired with the page's database answers (docs/box.md, docs/erp.md). */
interface FakeBox {
  label: string;
  httpsPort: number;
  httpPort: number;
  httpsUrl: string;
  seen: Seen[];
}

let browser: Browser;
let home: string;
let pageOrigin: string;
const servers: Server[] = [];
const boxes = new Map<string, FakeBox>();

async function listen(server: Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  servers.push(server);
  return (server.address() as AddressInfo).port;
}

async function tls(ca: TestCa, names: string[], validity: { notBefore?: Date; notAfter?: Date } = {}): Promise<{ key: string; cert: string }> {
  const { privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const leaf = await issueLeaf(ca, { publicKey: privateKey, names, ...validity });
  return { key: privateKey.export({ type: "pkcs8", format: "pem" }) as string, cert: leaf + ca.pem };
}

/** CORS as a paired box answers it: /api/ping to everyone, the rest to the database's origin only. */
function corsHeaders(req: IncomingMessage): Record<string, string> {
  const open = req.url === "/api/ping";
  const headers: Record<string, string> = { "cache-control": "no-store", vary: "origin" };
  if (open) headers["access-control-allow-origin"] = "*";
  else if (req.headers.origin === pageOrigin) headers["access-control-allow-origin"] = pageOrigin;
  if (req.method === "OPTIONS") {
    headers["access-control-allow-methods"] = "GET, POST, OPTIONS";
    headers["access-control-allow-headers"] = "content-type";
    if (req.headers["access-control-request-private-network"] === "true") headers["access-control-allow-private-network"] = "true";
  }
  return headers;
}

function boxHandler(box: () => FakeBox, certificate: Record<string, unknown>) {
  return (req: IncomingMessage, res: ServerResponse) => {
    const b = box();
    b.seen.push({ method: req.method ?? "", path: req.url ?? "", host: req.headers.host ?? "" });
    const headers = { ...corsHeaders(req), "content-type": "application/json" };
    if (req.method === "OPTIONS") return res.writeHead(204, headers).end();
    if (req.url === "/api/ping") return res.writeHead(200, headers).end(JSON.stringify({ ok: true }));
    if (req.url === "/api/status") {
      const body = { name: b.label, ip: "127.0.0.1", httpUrl: `http://127.0.0.1:${b.httpPort}/`, httpsUrl: b.httpsUrl, certificate };
      return res.writeHead(200, headers).end(JSON.stringify(body));
    }
    if (req.url === "/api/pos/test" && req.method === "POST") return res.writeHead(200, headers).end(JSON.stringify({ ok: true, count: b.seen.length }));
    return res.writeHead(404, headers).end("{}");
  };
}

/** A box at 127-0-0-1.<label>.<zone> on its own two ports; its status reports `certificate`. */
async function fakeBox(label: string, ca: TestCa, certificate: Record<string, unknown>, validity: { notBefore?: Date; notAfter?: Date } = {}): Promise<FakeBox> {
  const names = [`*.${label}.${ZONE}`, `${label}.${ZONE}`];
  const holder: { box?: FakeBox } = {};
  const handler = boxHandler(() => holder.box!, { names, ...certificate });
  const httpsPort = await listen(createHttpsServer(await tls(ca, names, validity), handler));
  const httpPort = await listen(createHttpServer(handler));
  const box: FakeBox = { label, httpsPort, httpPort, httpsUrl: `https://127-0-0-1.${label}.${ZONE}:${httpsPort}/`, seen: [] };
  holder.box = box;
  boxes.set(label, box);
  return box;
}

/**
 * The POS page: imports the module as a browser does, nothing bundled, and does what a POS page does
 * with it: reach(), then a POST through box.fetch() when the box is reached (docs/web.md). Written here
 * rather than in page.evaluate() because tsx would rename the functions inside (its `__name` helper does
 * not exist in the page).
 */
const POS_PAGE = `<!doctype html><meta charset="utf-8"><title>POS</title>
<script type="module">
import * as web from "/boxcert-web.js";
const permission = async () => (await navigator.permissions.query({ name: "loopback-network" })).state;
globalThis.runReach = async (options) => {
  const before = await permission();
  const box = web.boxClient(options);
  const result = await box.reach();
  const after = await permission();
  if (!result.ok) return { result, posted: null, before, after };
  try {
    const res = await box.fetch("/api/pos/test", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ note: "test" }) });
    return { result, posted: { status: res.status, body: await res.json() }, before, after };
  } catch (err) {
    return { result, posted: { error: String(err) }, before, after };
  }
};
</script>`;

async function startPage(ca: TestCa): Promise<number> {
  const server = createHttpsServer(await tls(ca, ["pos.test"]), (req, res) => {
    if (req.url === "/boxcert-web.js") return res.writeHead(200, { "content-type": "text/javascript" }).end(readFileSync(MODULE));
    return res.writeHead(200, { "content-type": "text/html; charset=utf-8" }).end(POS_PAGE);
  });
  return listen(server);
}

before(async () => {
  ensureDebianPackage(CHROMIUM, "chromium");
  ensureDebianPackage("certutil", "libnss3-tools");
  const [trusted, stranger] = await Promise.all([makeCa("boxcert web test root"), makeCa("a root Chromium does not know")]);
  const now = Date.now();
  const valid = { status: "ok", notAfter: new Date(now + 60 * 86400_000).toISOString(), errorCode: null };
  await Promise.all([
    fakeBox("good", trusted, valid),
    fakeBox("untrusted", stranger, valid),
    fakeBox("expired", trusted, { status: "error", notAfter: new Date(now - 86400_000).toISOString(), errorCode: "ERR_IOT_HTTPS_LOAD_REQUEST_EXCEPTION" }, {
      notBefore: new Date(now - 30 * 86400_000),
      notAfter: new Date(now - 86400_000),
    }),
    // The label the router will not resolve: its box answers by IP with a valid certificate.
    fakeBox("rebound", trusted, valid),
  ]);
  const pagePort = await startPage(trusted);
  pageOrigin = `https://pos.test:${pagePort}`;

  home = tempDir("boxcert-web-browser-home-");
  const rootPem = join(home, "root.pem");
  writeFileSync(rootPem, trusted.pem);
  await trustRoot(home, rootPem);
  const resolved = ["good", "untrusted", "expired", "off"].map((label) => `MAP *.${label}.${ZONE} 127.0.0.1`);
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    env: { ...process.env, HOME: home },
    args: [
      ...CHROMIUM_FLAGS,
      `--host-resolver-rules=MAP pos.test 127.0.0.1, ${resolved.join(", ")}, MAP * ~NOTFOUND, EXCLUDE 127.0.0.1`,
      `--ip-address-space-overrides=127.0.0.1:${pagePort}=public`,
    ],
  });
});

after(async () => {
  await browser?.close();
  await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  if (home) rmSync(home, { recursive: true, force: true });
});

/** A fresh context (fresh permissions) with the POS page loaded and the module imported. */
async function posPage(grant: boolean): Promise<{ context: BrowserContext; page: Page }> {
  const context = await browser.newContext();
  context.setDefaultTimeout(15_000);
  if (grant) await context.grantPermissions(["local-network-access"], { origin: pageOrigin });
  const page = await context.newPage();
  await page.goto(`${pageOrigin}/`);
  await page.waitForFunction(() => "runReach" in globalThis);
  return { context, page };
}

interface Run {
  result: web.ReachResult;
  /** POST /api/pos/test through box.fetch after reach(), when it reached the box. */
  posted: { status: number; body: unknown } | { error: string } | null;
  /** The permission before any request, and after reach(). */
  before: string;
  after: string;
}

/** In the page: boxClient(options).reach(), then box.fetch when reached (POS_PAGE). */
async function reach(page: Page, options: web.BoxClientOptions): Promise<Run> {
  return page.evaluate((opts) => (globalThis as unknown as { runReach(o: web.BoxClientOptions): Promise<Run> }).runReach(opts), options);
}

function options(box: FakeBox, over: Partial<web.BoxClientOptions> = {}): web.BoxClientOptions {
  return { httpsUrl: box.httpsUrl, ip: "127.0.0.1", httpPort: box.httpPort, timeoutMs: 3000, ...over };
}

test("Chromium here has Local Network Access: the permission names answer", async () => {
  const { context, page } = await posPage(false);
  try {
    assert.match(browser.version(), /^\d+\./);
    assert.ok(Number(browser.version().split(".")[0]) >= 142, `Chromium ${browser.version()}: Local Network Access needs 142+`);
    const states = await page.evaluate(async () => {
      const nav = (globalThis as unknown as { navigator: { permissions: web.PermissionsLike } }).navigator;
      const out: string[] = [];
      for (const name of ["local-network-access", "local-network", "loopback-network"]) out.push((await nav.permissions.query({ name })).state);
      return out;
    });
    assert.deepEqual(states, ["prompt", "prompt", "prompt"]);
  } finally {
    await context.close();
  }
});

test("what the module relies on: targetAddressSpace must name the box's space (loopback here, local for a LAN box)", async () => {
  const box = boxes.get("good")!;
  const { context, page } = await posPage(true);
  try {
    const url = `http://127.0.0.1:${box.httpPort}/api/ping`;
    const [local, loopback] = await page.evaluate(
      (u) => Promise.all(["local", "loopback"].map((space) => fetch(u, { targetAddressSpace: space } as RequestInit).then((r) => String(r.status), (e: Error) => e.message))),
      url,
    );
    assert.equal(local, "Failed to fetch", "a loopback box declared local is refused");
    assert.equal(loopback, "200");
  } finally {
    await context.close();
  }
});

test("over HTTPS: a trusted certificate, the name resolving, access granted → via https, and box.fetch posts over HTTPS", async () => {
  const box = boxes.get("good")!;
  const { context, page } = await posPage(true);
  try {
    box.seen.length = 0;
    const run = await reach(page, options(box));
    assert.deepEqual(run.result, { ok: true, via: "https" });
    assert.deepEqual(run.posted, { status: 200, body: { ok: true, count: box.seen.length } });
    assert.ok(box.seen.every((s) => s.host === `127-0-0-1.good.${ZONE}:${box.httpsPort}`), "every request by name, over HTTPS");
  } finally {
    await context.close();
  }
});

test("access not granted: headless Chromium dismisses the question, the box sees nothing → lna-denied", async () => {
  const box = boxes.get("good")!;
  const { context, page } = await posPage(false);
  try {
    box.seen.length = 0;
    const run = await reach(page, options(box));
    assert.equal(run.before, "prompt");
    assert.equal(run.after, "denied", "a dismissed question reads as denied");
    assert.ok(!run.result.ok);
    assert.equal(run.result.reason, "lna-denied");
    assert.equal(run.result.permission, "denied");
    assert.match(run.result.advice.join(" "), /Site settings/);
    assert.deepEqual(box.seen, [], "Chromium sent nothing to the box");
  } finally {
    await context.close();
  }
});

test("access denied in the site's settings (Browser.setPermission) → lna-denied, in Italian", async () => {
  const box = boxes.get("good")!;
  const { context, page } = await posPage(false);
  try {
    // What "Block" in the site's settings does; playwright grants but has no deny, so the DevTools protocol,
    // for this context (without browserContextId it would change the default context).
    const cdp = await context.newCDPSession(page);
    const { targetInfo } = await cdp.send("Target.getTargetInfo");
    for (const name of ["local-network-access", "local-network", "loopback-network"]) {
      await cdp.send("Browser.setPermission", { permission: { name }, setting: "denied", origin: pageOrigin, browserContextId: targetInfo.browserContextId });
    }
    const run = await reach(page, options(box, { lang: "it" }));
    assert.equal(run.before, "denied");
    assert.ok(!run.result.ok);
    assert.equal(run.result.reason, "lna-denied");
    assert.match(run.result.message, /non consente a questa pagina di raggiungere i dispositivi della rete locale/);
    assert.match(run.result.advice.join(" "), /Impostazioni sito/);
  } finally {
    await context.close();
  }
});

test("a certificate from a root Chromium does not trust → degraded over http://<ip>, reason certificate (untrusted)", async () => {
  const box = boxes.get("untrusted")!;
  const { context, page } = await posPage(true);
  try {
    box.seen.length = 0;
    const run = await reach(page, options(box));
    assert.ok(run.result.ok && run.result.via === "ip", JSON.stringify(run.result));
    assert.equal(run.result.degraded, true);
    assert.deepEqual([run.result.reason, run.result.detail], ["certificate", "untrusted"]);
    assert.match(run.result.message, /does not accept the box's HTTPS certificate/);
    assert.ok(box.seen.some((s) => s.path === "/api/ping" && s.host === `127-0-0-1.untrusted.${ZONE}:${box.httpPort}`), "the name answered over plain HTTP");
    assert.deepEqual(run.posted, { status: 200, body: { ok: true, count: box.seen.length } });
    assert.equal(box.seen.at(-1)?.host, `127.0.0.1:${box.httpPort}`, "box.fetch went by IP");
    assert.ok(!box.seen.some((s) => s.path === "/api/pos/test" && s.host.includes(ZONE)));
  } finally {
    await context.close();
  }
});

test("an expired certificate, the box saying so → degraded, reason certificate (expired), with the date and the box's code", async () => {
  const box = boxes.get("expired")!;
  const { context, page } = await posPage(true);
  try {
    const run = await reach(page, options(box));
    assert.ok(run.result.ok && run.result.via === "ip", JSON.stringify(run.result));
    assert.deepEqual([run.result.reason, run.result.detail], ["certificate", "expired"]);
    const day = new Date(Date.now() - 86400_000).toISOString().slice(0, 10);
    assert.ok(run.result.message.includes(`expired on ${day}`), run.result.message);
    assert.ok(run.result.message.includes("ERR_IOT_HTTPS_LOAD_REQUEST_EXCEPTION"));
  } finally {
    await context.close();
  }
});

test("the name does not resolve (NXDOMAIN), the box answers by IP → degraded, name-not-resolving, the router fix; box.fetch by IP", async () => {
  const box = boxes.get("rebound")!;
  for (const lang of ["en", "it"] as const) {
    const { context, page } = await posPage(true);
    try {
      box.seen.length = 0;
      const run = await reach(page, options(box, { lang }));
      assert.ok(run.result.ok && run.result.via === "ip", JSON.stringify(run.result));
      assert.equal(run.result.reason, "name-not-resolving");
      assert.equal(run.result.permission, "granted");
      assert.ok(run.result.advice.some((line) => line.includes(`rebind-domain-ok=/${ZONE}/`)), lang);
      assert.ok(run.result.advice.at(-1)!.includes(`http://127.0.0.1:${box.httpPort}/`), "the degraded path is said");
      assert.ok(box.seen.every((s) => s.host === `127.0.0.1:${box.httpPort}`), "nothing reached the box by name");
      assert.deepEqual(run.posted, { status: 200, body: { ok: true, count: box.seen.length } });
    } finally {
      await context.close();
    }
  }
});

test("nothing listening (closed ports), access granted → unreachable", async () => {
  const [httpsPort, httpPort] = await Promise.all([freePort(), freePort()]);
  const { context, page } = await posPage(true);
  try {
    const run = await reach(page, { httpsUrl: `https://127-0-0-1.off.${ZONE}:${httpsPort}/`, ip: "127.0.0.1", httpPort, timeoutMs: 3000 });
    assert.ok(!run.result.ok);
    assert.equal(run.result.reason, "unreachable");
    assert.equal(run.result.permission, "granted");
    assert.match(run.result.message, /does not answer/);
  } finally {
    await context.close();
  }
});

test("an http:// box address from the https:// page → mixed-content", async () => {
  const box = boxes.get("good")!;
  const { context, page } = await posPage(true);
  try {
    box.seen.length = 0;
    const run = await reach(page, options(box, { httpsUrl: `http://127-0-0-1.good.${ZONE}:${box.httpPort}/` }));
    assert.ok(!run.result.ok);
    assert.equal(run.result.reason, "mixed-content");
    assert.deepEqual(box.seen, [], "blocked before it left the browser");
  } finally {
    await context.close();
  }
});
