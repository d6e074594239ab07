/**
 * The whole system on a real LAN made of network namespaces (test/support/shop.ts): the issuer and the dns
 * in the cloud, dnsmasq as the shop router's resolver, the box agent on 192.168.50.42 ports 80 and 443,
 * and the point of sale reaching it by name with curl. Scenarios: the happy path, the router's DNS
 * rebinding protection and its fix, the issuer blocked by a firewall rule in the box, the box's address
 * changing.
 *
 * Needs root. Where the shop cannot be built the tests are reported as skipped with the reason, and
 * scripts/test.sh fails the run when anything was skipped.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { customer, embeddedRoot, ZONE } from "./support/system.ts";
import { boxcert, tempDir, waitFor } from "./support/processes.ts";
import { buildShop, SHOP, shopUnavailable, type Shop } from "./support/shop.ts";
import type { Proc } from "./support/processes.ts";
import type { BoxStatus } from "./support/system.ts";

const unavailable = shopUnavailable();
const CODE = "SHOP-LAN-1";
let shop: Shop;
let store: string;
let root: string;
let boxDir: string;
let box: Proc;

interface Curl {
  code: number;
  status: number;
  body: string;
  stderr: string;
}

/** curl in the point of sale; `--cacert` the embedded CA's root (what a POS device trusts in the test). */
async function curl(url: string, extra: string[] = []): Promise<Curl> {
  const r = await shop.run("pos", "curl", ["-sS", "--max-time", "10", "--cacert", root, "-o", "-", "-w", "\n%{http_code}", ...extra, url]);
  const lines = r.stdout.split("\n");
  const status = Number(lines.pop());
  return { code: r.code, status, body: lines.join("\n"), stderr: r.stderr };
}

async function status(address: string = SHOP.box): Promise<BoxStatus> {
  const answer = await curl(`http://${address}/api/status`);
  assert.equal(answer.status, 200, `GET /api/status by IP: ${answer.stderr}`);
  return JSON.parse(answer.body) as BoxStatus;
}

async function until(what: string, done: (s: BoxStatus) => boolean, address: string = SHOP.box, timeoutMs = 60_000): Promise<BoxStatus> {
  return waitFor(what, async () => {
    const s = await status(address);
    return !s.checking && done(s) ? s : null;
  }, timeoutMs).catch((err: Error) => {
    throw new Error(`${err.message}\nbox output:\n${box.output().slice(-3000)}`);
  });
}

async function startBoxAgent(): Promise<Proc> {
  // --zone-dns: the zone's server by address. In a real shop the name servers' public addresses pass the
  // router's rebinding filter; 203.0.113.0/24 does not (dnsmasq counts the documentation ranges as private).
  // --check-interval 10s: the periodic check (a refresh that asks the issuer) comes within the test's wait.
  const args = ["box", "--data-dir", boxDir, "--issuer", `http://${SHOP.cloud}:8700`, "--http-port", "80", "--https-port", "443", "--zone-dns", `${SHOP.cloud}:53`, "--check-interval", "10s"];
  return shop.boxcert("box", args, (out) => out.includes('"event":"started"'));
}

before(async () => {
  if (unavailable) return;
  shop = buildShop();
  const dir = tempDir("boxcert-shop-cloud-");
  store = join(dir, "registry.sqlite");
  await shop.boxcert("cloud", ["issuer", "--zone", ZONE, "--store", store, "--listen", `${SHOP.cloud}:8700`, "--plain-http", "--cert-lifetime", "1h"], (out) => out.includes("listening"));
  await shop.boxcert("cloud", ["dns", "--zone", ZONE, "--listen", `${SHOP.cloud}:53`, "--store", store, "--ns", `ns1.${ZONE}=${SHOP.cloud}`], (out) => out.includes("dns listening"));
  await shop.router(ZONE);
  root = embeddedRoot({ keysDir: join(dir, "keys") } as Parameters<typeof embeddedRoot>[0]);
  const uuid = await customer(store, CODE, "in_progress", 2);
  boxDir = tempDir("boxcert-shop-box-");
  const connected = await boxcert(["box", "connect", "--data-dir", boxDir, "--server", "https://erp.shop.test/", "--db-uuid", uuid, "--enterprise-code", CODE]);
  assert.equal(connected.code, 0, connected.stderr);
  box = await startBoxAgent();
});

after(async () => {
  if (!unavailable) await shop.close();
});

const options = unavailable ? { skip: unavailable } : {};

test("happy path: the box gets its certificate and the point of sale reaches it by name over HTTPS on ports 443", options, async () => {
  const ok = await until("a certificate", (s) => s.certificate.status === "ok");
  const httpsUrl = ok.httpsUrl ?? "";
  assert.ok(httpsUrl.startsWith(`https://192-168-50-42.`), httpsUrl || "no HTTPS address");
  assert.equal(new URL(httpsUrl).port, "", "port 443: no port in the address");
  // The zone's server picks a new label up within a second; asking the router before that would leave a
  // negative answer in its cache for the zone's negative TTL, so the test asks the zone's server first.
  const host = new URL(httpsUrl).hostname;
  await waitFor("the zone's server to answer the name", async () => (await shop.run("pos", "dig", ["+short", `@${SHOP.cloud}`, host, "A"])).stdout.trim() === SHOP.box, 5_000);
  const byName = await curl(`${httpsUrl}api/status`);
  assert.equal(byName.code, 0, byName.stderr);
  assert.equal(byName.status, 200);
  assert.equal((JSON.parse(byName.body) as BoxStatus).identifier, ok.identifier);
  const resolved = await shop.run("pos", "getent", ["hosts", host]);
  assert.match(resolved.stdout, new RegExp(`^${SHOP.box.replaceAll(".", "\\.")}\\s`), "the LAN resolver gives the box's address");
});

test("the router's DNS rebinding protection: the name stops resolving, the diagnostics say why, allowing the zone fixes it", options, async () => {
  const ok = await until("a certificate", (s) => s.certificate.status === "ok");
  const url = `${ok.httpsUrl}api/status`;
  await shop.router(ZONE, { stopRebind: true });
  const blocked = await curl(url);
  assert.equal(blocked.code, 6, `curl cannot resolve the name: ${blocked.stderr}`);
  assert.equal((await curl(`http://${SHOP.box}/`)).status, 200, "the homepage by IP still works");
  const report = JSON.parse((await curl(`http://${SHOP.box}/api/diagnostics`)).body) as { dns: { verdict: string } };
  assert.equal(report.dns.verdict, "rebinding", JSON.stringify(report.dns));
  const page = (await curl(`http://${SHOP.box}/diagnostics`)).body;
  assert.match(page, /rebind/i, "the diagnostics page names DNS rebinding protection");
  assert.match(page, /rebind-domain-ok/, "and gives the dnsmasq fix");

  await shop.router(ZONE, { stopRebind: true, rebindOkZone: ZONE });
  const fixed = await curl(url);
  assert.equal(fixed.status, 200, fixed.stderr);
  await shop.router(ZONE);
});

test("the issuer blocked by a firewall rule in the box: REQUEST_EXCEPTION, the certificate still served; unblocked, the next check succeeds", options, async () => {
  const ok = await until("a certificate", (s) => s.certificate.status === "ok");
  const served = ok.certificate.notAfter;
  const rule = ["route", "add", "prohibit", `${SHOP.cloud}/32`];
  assert.equal((await shop.run("box", "ip", rule)).code, 0);
  try {
    const failed = await until("the periodic check to fail", (s) => s.certificate.errorCode !== null);
    assert.equal(failed.certificate.errorCode, "ERR_IOT_HTTPS_LOAD_REQUEST_EXCEPTION", failed.certificate.detail ?? "");
    const still = await curl(`${ok.httpsUrl}api/status`);
    assert.equal(still.status, 200, "the old certificate is still served");
  } finally {
    await shop.run("box", "ip", ["route", "del", "prohibit", `${SHOP.cloud}/32`]);
  }
  const back = await until("the next check to succeed", (s) => s.certificate.errorCode === null && s.certificate.status === "ok");
  assert.notEqual(back.certificate.notAfter, null);
  assert.ok(served !== null);
});

test("the box's address changes: the new HTTPS address works with the same certificate", options, async () => {
  const before = await until("a certificate", (s) => s.certificate.status === "ok");
  await box.stop();
  const moved = "192.168.50.43";
  // The DHCP server gave the box another address: the old one goes (and the default route with it).
  for (const args of [["addr", "flush", "dev", "eth0"], ["addr", "add", `${moved}/24`, "dev", "eth0"], ["route", "add", "default", "via", SHOP.lan]]) {
    const r = await shop.run("box", "ip", args);
    assert.equal(r.code, 0, `ip ${args.join(" ")}: ${r.stderr}`);
  }
  box = await startBoxAgent();
  const after = await until("the box at its new address", (s) => s.certificate.status === "ok", moved);
  assert.equal(after.ip, moved);
  assert.ok(after.httpsUrl?.startsWith("https://192-168-50-43."), after.httpsUrl ?? "");
  assert.equal(after.certificate.notAfter, before.certificate.notAfter, "the same certificate");
  const byName = await curl(`${after.httpsUrl}api/status`);
  assert.equal(byName.status, 200, byName.stderr);
});
