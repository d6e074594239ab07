/**
 * `npm start` as a user runs it: the demo prints its lines, the printed curl line verifies the box's HTTPS,
 * the printed database and POS pages answer over HTTPS verified with the printed database root, the issuer
 * records the demo's database as production, the box is paired with it (registered, listed on the IoT page
 * behind the printed password), Ctrl-C stops it cleanly, and a second start reuses all of it (same label, no
 * new certificate, no new pairing).
 */
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { freePort, startBoxcert, tempDir } from "./support/processes.ts";
import { admin } from "./support/system.ts";
import { Browser } from "../packages/erp/test/helpers/browser.ts";

type Lines = Record<string, string>;

/** The port flags, picked once: a second `npm start` runs on the same ports as the first. */
async function portFlags(): Promise<string[]> {
  const flags = ["--issuer-port", "--http-port", "--https-port", "--database-port"];
  return (await Promise.all(flags.map(async (flag) => [flag, String(await freePort())]))).flat();
}

async function demo(dataDir: string, ports: string[]): Promise<{ lines: Lines; stop(): Promise<number | null> }> {
  const proc = await startBoxcert(["demo", "--data-dir", dataDir, ...ports], (out) => /^login: /m.test(out), 90_000);
  // A failed assertion must not leave the demo running (and the test process waiting on it).
  after(() => proc.stop());
  const lines = Object.fromEntries(
    proc
      .output()
      .split("\n")
      .filter((l) => /^(homepage|https|root|curl|dig|database|pos|database-root|login): /.test(l))
      .map((l) => [l.slice(0, l.indexOf(":")), l.slice(l.indexOf(": ") + 2)]),
  );
  return {
    lines,
    stop: () =>
      new Promise((resolve) => {
        proc.child.once("exit", (code) => resolve(code));
        proc.child.kill("SIGINT");
      }),
  };
}

/** The printed password: the login line's first word. */
function passwordOf(lines: Lines): string {
  return lines.login!.split(" ")[0]!;
}

/** curl with the printed database root: the HTTP status of a URL, the TLS verified (curl fails otherwise). */
function curlStatus(lines: Lines, url: string): string {
  return execFileSync("curl", ["--cacert", lines["database-root"]!, "-sS", "-o", "/dev/null", "-w", "%{http_code}", url]).toString();
}

/** Logs in to the demo's database with the printed password, trusting only the printed root. */
async function operator(lines: Lines): Promise<Browser> {
  const browser = new Browser({ url: new URL(lines.database!).origin + "/", ca: readFileSync(lines["database-root"]!, "utf8") });
  const login = await browser.login(passwordOf(lines));
  assert.equal(login.status, 303, "the printed password logs in");
  assert.equal(login.headers.location, "/iot");
  return browser;
}

/** The databases the issuer records: who they are, not when they last reported (that moves at each start). */
async function databases(dataDir: string): Promise<Array<{ uuid: string; subscription: string; kind: string }>> {
  const rows = (await admin(join(dataDir, "issuer", "registry.sqlite"), "database", "list")) as Array<{ uuid: string; subscription: string; kind: string }>;
  return rows.map(({ uuid, subscription, kind }) => ({ uuid, subscription, kind }));
}

async function boxRegistered(lines: Lines): Promise<boolean> {
  const status = (await (await fetch(new URL("api/status", lines.homepage!))).json()) as { database: { registered: boolean } };
  return status.database.registered;
}

function checkBoxLines(lines: Lines): void {
  assert.match(lines.homepage!, /^http:\/\/127\.0\.0\.1:\d+\/$/);
  assert.match(lines.https!, /^https:\/\/127-0-0-1\.[a-z2-7]{16}\.boxcert\.test:\d+\/$/);
  assert.match(lines.root!, /root\.pem$/);
  const curl = lines.curl!.split(" ");
  assert.equal(curl[0], "curl");
  assert.ok(curl.includes("--cacert") && curl.includes("--resolve"));
  const page = execFileSync(curl[0]!, [...curl.slice(1), "-sS", "--fail"]).toString();
  assert.match(page, /<h1>/);
  // The printed dig line resolves the box's HTTPS name to its address through boxcert dns.
  const dig = lines.dig!.split(" ");
  assert.equal(dig[0], "dig");
  const resolved = execFileSync(dig[0]!, [...dig.slice(1), "+short"]).toString().trim();
  assert.equal(resolved, "127.0.0.1");
}

/** The database's pages over verified HTTPS, and the box on its IoT and POS pages once logged in. */
async function checkDatabaseLines(lines: Lines): Promise<void> {
  assert.match(lines.database!, /^https:\/\/127\.0\.0\.1:\d+\/iot$/);
  assert.equal(lines.pos, new URL("/pos", lines.database!).toString());
  assert.match(lines["database-root"]!, /root\.pem$/);
  // Without a session both pages send to the login page: verified by the printed root, not by chance.
  assert.equal(curlStatus(lines, lines.database!), "303");
  assert.equal(curlStatus(lines, lines.pos!), "303");
  const browser = await operator(lines);
  const iot = await browser.get("/iot");
  assert.equal(iot.status, 200);
  assert.ok(iot.text.includes(lines.https!), "the IoT page lists the box's HTTPS address");
  assert.equal(iot.text.split(`href="${lines.https!}"`).length - 1, 1, "one box, listed once");
  const pos = await browser.get("/pos");
  assert.equal(pos.status, 200);
  assert.ok(pos.text.includes(lines.https!), "the POS page calls the box by its HTTPS address");
}

test("the demo prints working lines, runs the database the box is paired with, stops on Ctrl-C, and reuses its data", async () => {
  const dataDir = tempDir("boxcert-demo-");
  const ports = await portFlags();
  const first = await demo(dataDir, ports);
  checkBoxLines(first.lines);
  await checkDatabaseLines(first.lines);
  const recorded = await databases(dataDir);
  assert.equal(recorded.length, 1, "the database reported itself: the demo adds none by hand");
  assert.equal(recorded[0]!.subscription, "DEMO-0001");
  assert.equal(recorded[0]!.kind, "production");
  assert.equal(await boxRegistered(first.lines), true);
  assert.equal(await first.stop(), 0);

  const second = await demo(dataDir, ports);
  assert.equal(new URL(second.lines.https!).hostname, new URL(first.lines.https!).hostname, "same label");
  const certificates = (await admin(join(dataDir, "issuer", "registry.sqlite"), "cert", "list")) as unknown[];
  assert.equal(certificates.length, 1, "no new certificate");
  assert.deepEqual(await databases(dataDir), recorded, "the same database, still production");
  assert.equal(passwordOf(second.lines), passwordOf(first.lines), "the same password");
  assert.equal(second.lines["database-root"], first.lines["database-root"]);
  await checkDatabaseLines(second.lines);
  assert.equal(await boxRegistered(second.lines), true);
  assert.equal(second.lines.database, first.lines.database);
  // The box was still paired: no connection token was made, so no pairing secret is open.
  const store = JSON.parse(readFileSync(join(dataDir, "database", "boxes.json"), "utf8")) as { pairings: unknown[] };
  assert.deepEqual(store.pairings, [], "no new pairing");
  assert.equal(await second.stop(), 0);
});
