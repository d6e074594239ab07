/**
 * Zone pinning (issue 10): a box that knows the zone it must be enrolled in (`--zone`, the vendor's pin,
 * or the zone a connection token names) refuses an issuer that enrolls it elsewhere, enrolls again when
 * the label it holds is in another zone, and refuses a connection token for another zone than its pin.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { readFile, stat } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { join } from "node:path";
import { CERTIFICATE_PATH, ENROLL_PATH } from "@boxcert/shared";
import { formatConnectionToken, parseConnectionToken, readConfig, updateConfig, withinZonePin } from "../src/config.ts";
import { dataPaths } from "../src/data-dir.ts";
import { startTestIssuer } from "./helpers/test-issuer.ts";
import { connectedDir, startBox, tempDir } from "./helpers/fixture.ts";
import type { BoxFixture } from "./helpers/fixture.ts";
import type { BoxOptions } from "../src/box.ts";

const BIN = fileURLToPath(new URL("../bin/boxcert-box.js", import.meta.url));
const VENDOR = "vendor.test";
const OTHER = "evil.test";

type After = { after: (fn: () => Promise<void>) => void };

/** A connected box (its own folder) started against `issuerUrl`, stopped and removed after the test. */
async function connectedBox(t: After, options: Partial<BoxOptions> & { issuerUrl: string }, prepare?: (dir: string) => Promise<void>) {
  const temp = await connectedDir();
  await prepare?.(temp.dir);
  const fixture = await startBox(options, temp.dir);
  t.after(async () => {
    await fixture.stop();
    await temp.cleanup();
  });
  return fixture;
}

/** The token the database's IoT page would hand out, with or without a zone. */
function token(zone?: string): string {
  return formatConnectionToken({ server: "https://erp.example", dbUuid: "db-1", enterpriseCode: "SECRET-CODE-42", ...(zone ? { expectedZone: zone } : {}) });
}

function run(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (c: Buffer) => (stdout += c));
    child.stderr.on("data", (c: Buffer) => (stderr += c));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

const SOURCES = {
  "--zone": { options: { zone: VENDOR }, prepare: undefined, from: "boxcert box --zone" },
  "the connection token": {
    options: {},
    prepare: (dir: string) => updateConfig(dataPaths(dir), parseConnectionToken(token(VENDOR))).then(() => undefined),
    from: "the connection token",
  },
} as const;

for (const [source, { options, prepare, from }] of Object.entries(SOURCES)) {
  test(`expected zone from ${source}: an enrollment into another zone is refused, nothing saved, the error shown`, async (t) => {
    const issuer = await startTestIssuer({ zone: OTHER });
    t.after(() => issuer.close());
    const { box, paths, ports } = await connectedBox(t, { issuerUrl: issuer.url, ...options }, prepare);
    const before = await readFile(paths.config, "utf8");
    const status = await box.checkNow();
    assert.equal(status.certificate.status, "error");
    assert.equal(status.certificate.errorCode, "ERR_IOT_HTTPS_LOAD_REQUEST_STATUS 200");
    const detail = `the issuer enrolled the box in zone ${OTHER}, but the box expects zone ${VENDOR} (${from}); enrollment not saved`;
    assert.equal(status.certificate.detail, detail);
    assert.equal(await readFile(paths.config, "utf8"), before, "config.json changed");
    const config = await readConfig(paths);
    assert.deepEqual([config?.label, config?.zone, config?.enrolledFor], [null, null, null]);
    assert.deepEqual(
      issuer.requests.map((r) => r.path),
      [ENROLL_PATH],
      "asked for a certificate in the other zone",
    );
    await assert.rejects(stat(paths.https), { code: "ENOENT" });
    const api = (await (await fetch(`http://127.0.0.1:${ports.httpPort}/api/status`)).json()) as typeof status;
    assert.equal(api.certificate.errorCode, "ERR_IOT_HTTPS_LOAD_REQUEST_STATUS 200");
    assert.equal(api.certificate.detail, detail);
    assert.equal(api.httpsUrl, null);
  });
}

test("an enrollment into the expected zone is kept, and the pin saved", async (t) => {
  const issuer = await startTestIssuer({ zone: VENDOR });
  t.after(() => issuer.close());
  const { box, paths } = await connectedBox(t, { issuerUrl: issuer.url, zone: VENDOR });
  const status = await box.checkNow();
  assert.equal(status.certificate.status, "ok", status.certificate.detail ?? "");
  assert.equal((await readConfig(paths))?.zone, VENDOR);
  assert.equal((await readConfig(paths))?.zonePin, VENDOR);
});

test("a label held from an enrollment into another zone is not used: the box enrolls again in the pinned zone", async (t) => {
  const other = await startTestIssuer({ zone: OTHER });
  const vendor = await startTestIssuer({ zone: VENDOR });
  const temp = await connectedDir();
  const boxes: BoxFixture[] = [];
  t.after(async () => {
    for (const fixture of boxes) await fixture.box.stop();
    await other.close();
    await vendor.close();
    await temp.cleanup();
  });
  const unpinned = await startBox({ issuerUrl: other.url }, temp.dir);
  boxes.push(unpinned);
  assert.equal((await unpinned.box.checkNow()).certificate.status, "ok");
  await unpinned.box.stop();
  assert.equal((await readConfig(unpinned.paths))?.zone, OTHER);

  const pinned = await startBox({ issuerUrl: vendor.url, zone: VENDOR }, temp.dir);
  boxes.push(pinned);
  const status = await pinned.box.checkNow();
  assert.equal(status.certificate.status, "ok", status.certificate.detail ?? "");
  assert.deepEqual(
    vendor.requests.map((r) => r.path),
    [ENROLL_PATH, CERTIFICATE_PATH],
    "the label of the other zone was used",
  );
  const config = await readConfig(pinned.paths);
  assert.equal(config?.zone, VENDOR);
  assert.ok(status.certificate.names.every((name) => name.endsWith(`.${VENDOR}`)), status.certificate.names.join(", "));
  assert.match(await readFile(pinned.paths.log, "utf8"), /"why":"the label is in zone evil\.test, not the expected vendor\.test"/);
});

test("connection tokens: the zone is optional, saved as the expected zone, and refused against another pin", () => {
  assert.deepEqual(parseConnectionToken(token(VENDOR)), {
    server: "https://erp.example/",
    dbUuid: "db-1",
    enterpriseCode: "SECRET-CODE-42",
    expectedZone: VENDOR,
  });
  const json = JSON.parse(Buffer.from(token(VENDOR).slice("boxcert1.".length), "base64url").toString("utf8")) as Record<string, unknown>;
  assert.equal(json.zone, VENDOR, "the token's field is `zone`");
  // An older token, without a zone, still parses, with no expectation.
  const old = `boxcert1.${Buffer.from(JSON.stringify({ server: "https://erp.example", dbUuid: "U", enterpriseCode: "C" })).toString("base64url")}`;
  assert.deepEqual(parseConnectionToken(old), { server: "https://erp.example/", dbUuid: "U", enterpriseCode: "C" });
  const upper = `boxcert1.${Buffer.from(JSON.stringify({ server: "https://erp.example", dbUuid: "U", enterpriseCode: "C", zone: "Vendor.Test" })).toString("base64url")}`;
  assert.equal(parseConnectionToken(upper).expectedZone, VENDOR);
  const bad = `boxcert1.${Buffer.from(JSON.stringify({ server: "https://erp.example", dbUuid: "U", enterpriseCode: "C", zone: "not a zone" })).toString("base64url")}`;
  assert.throws(() => parseConnectionToken(bad), /the connection token's zone is not a DNS zone name/);
  assert.throws(() => withinZonePin(parseConnectionToken(token(OTHER)), VENDOR), /the connection token is for zone evil\.test, but this box is pinned to zone vendor\.test/);
  assert.equal(withinZonePin(parseConnectionToken(token(VENDOR)), VENDOR).expectedZone, VENDOR);
  assert.equal(withinZonePin(parseConnectionToken(old), VENDOR).expectedZone, undefined);
});

test("boxcert box connect: a token's zone is saved; a token for another zone than the pin is refused, config unchanged", async (t) => {
  const temp = await tempDir();
  t.after(temp.cleanup);
  const dir = join(temp.dir, "box");
  const first = await run(["box", "connect", "--data-dir", dir, "--token", token(VENDOR)]);
  assert.equal(first.code, 0, first.stderr);
  assert.equal((await readConfig(dataPaths(dir)))?.expectedZone, VENDOR);

  // The pin given to connect itself (it belongs to `box`, like --data-dir).
  const flagged = await run(["box", "connect", "--data-dir", dir, "--zone", VENDOR, "--token", token(OTHER)]);
  assert.equal(flagged.code, 1);
  assert.equal(flagged.stderr.trim(), `error: the connection token is for zone ${OTHER}, but this box is pinned to zone ${VENDOR} (boxcert box --zone); ask for a token of ${VENDOR}`);

  // The pin the agent saved at its last start.
  await updateConfig(dataPaths(dir), { zonePin: VENDOR });
  const before = await readFile(join(dir, "config.json"), "utf8");
  const saved = await run(["box", "connect", "--data-dir", dir, "--token", token(OTHER)]);
  assert.equal(saved.code, 1);
  assert.match(saved.stderr, /pinned to zone vendor\.test/);
  assert.equal(await readFile(join(dir, "config.json"), "utf8"), before, "config.json changed");

  // A connection without a zone keeps the expected one.
  const plain = await run(["box", "connect", "--data-dir", dir, "--server", "https://erp2.example", "--db-uuid", "db-2", "--enterprise-code", "C2"]);
  assert.equal(plain.code, 0, plain.stderr);
  const config = await readConfig(dataPaths(dir));
  assert.deepEqual([config?.dbUuid, config?.expectedZone], ["db-2", VENDOR]);
});

test("boxcert box --zone: validated, and saved as the pin at start (cleared by a start without it)", async (t) => {
  const temp = await tempDir();
  t.after(temp.cleanup);
  const bad = await run(["box", "--data-dir", temp.dir, "--issuer", "http://127.0.0.1:1", "--zone", "not a zone"]);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /--zone must be a DNS zone name such as iot\.example\.net, not "not a zone"/);

  const issuer = await startTestIssuer();
  t.after(() => issuer.close());
  const base = ["box", "--data-dir", temp.dir, "--issuer", issuer.url, "--http-port", "0", "--https-port", "0", "--listen-host", "127.0.0.1", "--ip", "127.0.0.1", "--name", "pinned"];
  const startAndStop = async (extra: string[]): Promise<string> => {
    const child = spawn(process.execPath, [BIN, ...base, ...extra], { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
    const url = await new Promise<string>((resolve, reject) => {
      child.stdout.on("data", (c: Buffer) => {
        stdout += c;
        const match = /box pinned at (http:\/\/127\.0\.0\.1:\d+\/)/.exec(stdout);
        if (match) resolve(match[1] as string);
      });
      child.on("exit", (code) => reject(new Error(`exited ${code}: ${stdout}`)));
    });
    // Answering a request, it has its signal handlers (the line above is printed just before they are set).
    assert.equal(((await (await fetch(`${url}api/status`)).json()) as { name: string }).name, "pinned");
    child.kill("SIGTERM");
    assert.equal(await exited, 0);
    return stdout;
  };
  const pinnedOut = await startAndStop(["--zone", "Vendor.Test"]);
  assert.equal((await readConfig(dataPaths(temp.dir)))?.zonePin, VENDOR);
  assert.match(pinnedOut, /"event":"started".*"expectedZone":"vendor\.test"/);
  await startAndStop([]);
  assert.equal((await readConfig(dataPaths(temp.dir)))?.zonePin, null);
});

async function form(url: string, fields: Record<string, string>, headers: Record<string, string>): Promise<Response> {
  return fetch(url, {
    method: "POST",
    redirect: "manual",
    headers: { "content-type": "application/x-www-form-urlencoded", ...headers },
    body: new URLSearchParams(fields).toString(),
  });
}

test("the homepage's Connect: a token for another zone than --zone is a 400 saying why; one for the zone is saved", async (t) => {
  const issuer = await startTestIssuer({ zone: VENDOR });
  t.after(() => issuer.close());
  const { ports, paths } = await connectedBox(t, { issuerUrl: issuer.url, zone: VENDOR });
  const base = `http://127.0.0.1:${ports.httpPort}`;
  const home = await fetch(`${base}/`);
  const headers = { cookie: (home.headers.get("set-cookie") ?? "").split(";")[0] as string, origin: base };
  const csrf = /name="csrf" value="([^"]+)"/.exec(await home.text())?.[1] as string;
  const before = await readFile(paths.config, "utf8");

  const refused = await form(`${base}/connect`, { csrf, token: token(OTHER) }, headers);
  assert.equal(refused.status, 400);
  assert.match(await refused.text(), /the connection token is for zone evil\.test, but this box is pinned to zone vendor\.test/);
  assert.equal(await readFile(paths.config, "utf8"), before, "config.json changed");

  const accepted = await form(`${base}/connect`, { csrf, token: token(VENDOR) }, headers);
  assert.equal(accepted.status, 303);
  assert.equal((await readConfig(paths))?.expectedZone, VENDOR);
});

test("a token's zone that a later --zone contradicts: the pin wins, said once at start", async (t) => {
  const issuer = await startTestIssuer({ zone: VENDOR });
  t.after(() => issuer.close());
  const prepare = (dir: string) => updateConfig(dataPaths(dir), parseConnectionToken(token(OTHER))).then(() => undefined);
  const { box, paths } = await connectedBox(t, { issuerUrl: issuer.url, zone: VENDOR }, prepare);
  const status = await box.checkNow();
  assert.equal(status.certificate.status, "ok", status.certificate.detail ?? "");
  assert.equal((await readConfig(paths))?.zone, VENDOR);
  const warnings = (await readFile(paths.log, "utf8")).split("\n").filter((line) => line.includes('"event":"zone_pin_overrides"'));
  assert.equal(warnings.length, 1);
});
