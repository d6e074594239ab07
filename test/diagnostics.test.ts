/**
 * The box's network diagnostics against the real thing: `boxcert dns` as a process over a real store, and
 * Debian's dnsmasq as the shop router's DNS, forwarding the zone to it. Three routers:
 *
 *   plain              dnsmasq passes private answers on                      -> ok
 *   --stop-dns-rebind  the router's rebinding protection drops them           -> rebinding (with the fix, for this zone)
 *   ... plus --rebind-domain-ok=/<zone>/, the fix the homepage tells to apply -> ok
 *
 * The zone's name server is on 127.0.0.1 here, so the routers run with --rebind-localhost-ok: the name
 * server's address passes (as a public address does in production), the box's 192.168.x.x address does not,
 * and the diagnostics find the zone's servers through the router the way they do on a real LAN.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { enrollBox, issuanceRecords } from "@boxcert/issuer";
import { openStore } from "@boxcert/store";
import { runDiagnostics, renderDiagnosticsHtml, type DiagnosticsReport } from "@boxcert/box";
import { ensureDebianPackage, freePort, spawnProcess, startBoxcert, tempDir, waitFor, type Proc } from "./support/processes.ts";
import { customer, ZONE } from "./support/system.ts";
import { scriptedBox } from "./support/box-client.ts";

const DNSMASQ = "/usr/sbin/dnsmasq";
const BOX_IP = "192.168.1.42";

interface Router {
  port: number;
  output(): string;
  stop(): Promise<void>;
}

/** dnsmasq in the foreground on 127.0.0.1:PORT, forwarding only the zone to boxcert dns, no cache, logging queries. */
async function startRouter(dnsPort: number, extra: string[]): Promise<Router> {
  const port = await freePort();
  const args = [
    "--no-daemon", "--conf-file=/dev/null", "--no-resolv", "--no-hosts", "--pid-file=",
    `--port=${port}`, "--listen-address=127.0.0.1", "--bind-interfaces",
    `--server=/${ZONE}/127.0.0.1#${dnsPort}`, "--cache-size=0", "--log-queries", "--log-facility=-",
    "--rebind-localhost-ok", ...extra,
  ];
  const proc = spawnProcess(DNSMASQ, args);
  const { child } = proc;
  const output = () => proc.output();
  const router: Router = { port, output, stop: proc.stop };
  await waitFor(`dnsmasq on port ${port}`, async () => {
    if (child.exitCode !== null) throw new Error(`dnsmasq ${args.join(" ")} exited with ${child.exitCode}:\n${output()}`);
    return output().includes("started, version");
  }, 10_000);
  return router;
}

let dns: Proc;
let dnsPort: number;
let label = "";
let issuer: http.Server;
let issuerUrl: string;
const routers: Router[] = [];

before(async () => {
  ensureDebianPackage(DNSMASQ, "dnsmasq-base");
  const dir = tempDir("boxcert-diagnostics-");
  const store = join(dir, "registry.sqlite");
  const code = "DIAGNOSTICS-1";
  const dbUuid = await customer(store, code, "in_progress", 2);
  const opened = await openStore(store);
  try {
    const box = scriptedBox(dbUuid, code);
    const { box: enrolled } = await enrollBox(issuanceRecords(opened), { dbUuid, enterpriseCode: code, identifier: box.identifier, identityKey: box.identitySpki }, new Date());
    label = enrolled!.label;
  } finally {
    await opened.close();
  }
  dnsPort = await freePort();
  dns = await startBoxcert(["dns", "--zone", ZONE, "--listen", `127.0.0.1:${dnsPort}`, "--store", store, "--ns", `ns1.${ZONE}=127.0.0.1`], (out) => out.includes("dns listening"));
  // The issuer only has to answer: its reachability is diagnosed in the component tier.
  issuer = http.createServer((_req, res) => res.end("{}"));
  await new Promise<void>((resolve) => issuer.listen(0, "127.0.0.1", resolve));
  issuerUrl = `http://127.0.0.1:${(issuer.address() as AddressInfo).port}`;
});

after(async () => {
  await Promise.all(routers.map((r) => r.stop()));
  await dns?.stop();
  await new Promise((r) => issuer?.close(r));
});

/** The diagnostics as the box runs them on a LAN whose DNS is this router (authoritative servers found through it). */
async function diagnoseBehind(router: Router): Promise<DiagnosticsReport> {
  return runDiagnostics({
    hostname: `${BOX_IP.replaceAll(".", "-")}.${label}.${ZONE}`,
    ip: BOX_IP,
    zone: ZONE,
    issuerUrl,
    lanResolvers: [`127.0.0.1:${router.port}`],
    authoritativePort: dnsPort,
    timeoutMs: 3000,
  });
}

function context(report: DiagnosticsReport, router: Router): string {
  return `${JSON.stringify(report.dns, null, 2)}\ndnsmasq:\n${router.output()}`;
}

test("a router that passes private answers on: ok", async () => {
  const router = await startRouter(dnsPort, []);
  routers.push(router);
  const report = await diagnoseBehind(router);
  assert.equal(report.dns.verdict, "ok", context(report, router));
  assert.equal(report.dns.authoritative.source, "discovered", context(report, router));
  assert.deepEqual(report.dns.authoritative.servers, [`127.0.0.1:${dnsPort}`]);
  assert.deepEqual(report.dns.lan[0]!.addresses, [BOX_IP]);
  assert.deepEqual(report.dns.authoritative.lookups[0]!.addresses, [BOX_IP]);
  assert.match(renderDiagnosticsHtml(report, "en"), /class="diag-box diag-ok" data-check="dns" data-verdict="ok"/);
});

test("a router with DNS rebinding protection (dnsmasq --stop-dns-rebind): rebinding, and the advice names the fix for this zone", async () => {
  const router = await startRouter(dnsPort, ["--stop-dns-rebind"]);
  routers.push(router);
  const report = await diagnoseBehind(router);
  assert.equal(report.dns.verdict, "rebinding", context(report, router));
  assert.equal(report.dns.severity, "warn");
  assert.deepEqual(report.dns.authoritative.lookups[0]!.addresses, [BOX_IP], "the zone's server itself answers");
  // dnsmasq 2.90 withholds the answer as NOERROR with no address (NODATA); other routers say NXDOMAIN or REFUSED.
  assert.ok(["nodata", "nxdomain", "refused", "servfail"].includes(report.dns.lan[0]!.outcome), context(report, router));
  // dnsmasq says why in its log: this is its rebinding protection, not a failure of the zone.
  assert.match(router.output(), /possible DNS-rebind attack detected/i);
  for (const lang of ["en", "it"] as const) {
    const html = renderDiagnosticsHtml(report, lang);
    assert.match(html, /class="diag-box diag-warn" data-check="dns" data-verdict="rebinding"/);
    assert.ok(html.includes(`<code>rebind-domain-ok=/${ZONE}/</code>`), html);
    assert.ok(html.includes(`<code>private-domain: &quot;${ZONE}&quot;</code>`), html);
  }
});

test("the same router with the fix the homepage gives (--rebind-domain-ok=/<zone>/): ok again", async () => {
  const router = await startRouter(dnsPort, ["--stop-dns-rebind", `--rebind-domain-ok=/${ZONE}/`]);
  routers.push(router);
  const report = await diagnoseBehind(router);
  assert.equal(report.dns.verdict, "ok", context(report, router));
  assert.deepEqual(report.dns.lan[0]!.addresses, [BOX_IP]);
});

test("a box whose seat was never given a name in the zone: name-unknown, behind any router", async () => {
  const router = routers[0]!;
  const report = await runDiagnostics({
    hostname: `${BOX_IP.replaceAll(".", "-")}.${"z".repeat(16)}.${ZONE}`,
    ip: BOX_IP,
    zone: ZONE,
    issuerUrl,
    lanResolvers: [`127.0.0.1:${router.port}`],
    authoritativePort: dnsPort,
  });
  assert.equal(report.dns.verdict, "name-unknown", context(report, router));
});
