/**
 * The box's network diagnostics (diagnostics*.ts), in two tiers:
 *
 *   pure     the DNS verdict over resolver outcomes (table-driven), the clock offset, the rendering (escaping,
 *            both languages with the same texts and placeholders)
 *   sockets  runDiagnostics against boxcert's own DNS server (startDnsServer from @boxcert/dns, in-process on
 *            127.0.0.1 port 0) playing both the zone's server and the LAN's, and against local HTTP(S) servers
 *            playing the issuer (a shifted Date header, an untrusted certificate, a closed port, silence)
 *
 * The LAN resolver with real rebinding protection (dnsmasq) is in the system tier: test/diagnostics.test.ts.
 */
import { test, before, after, describe } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import { createSocket } from "node:dgram";
import https from "node:https";
import { generateKeyPairSync } from "node:crypto";
import type { AddressInfo } from "node:net";
import pino from "pino";
import { startDnsServer, DEFAULT_ALLOW, DEFAULT_TTL, type RunningDnsServer, type DnsConfig } from "@boxcert/dns";
import {
  runDiagnostics,
  renderDiagnosticsHtml,
  diagnosticsTarget,
  zoneOf,
  dnsVerdict,
  classifyLookup,
  clockOffset,
  clockVerdict,
  DIAGNOSTICS_MESSAGES,
  type DiagnosticsReport,
  type DnsVerdict,
  type Lookup,
  type LookupOutcome,
} from "../src/diagnostics/index.ts";
import { outcomeOf, sameAddress } from "../src/diagnostics/dns.ts";
import { fill } from "../src/diagnostics/render.ts";
import { httpsNameFor } from "../src/web/status.ts";
import { issueLeaf, makeCa } from "./helpers/pki.ts";

const ZONE = "boxcert.test";
const LABEL = "abcdefghijklmnop";
const IP = "192.168.1.42";
const HOSTNAME = `192-168-1-42.${LABEL}.${ZONE}`;

// ---------------------------------------------------------------------------------------------------------
// Pure: the verdict.

function look(outcome: LookupOutcome, addresses: string[] = [], server = "192.0.2.1"): Lookup {
  return { server, outcome, addresses, code: outcome === "answer" ? null : `E${outcome.toUpperCase()}`, ms: 1 };
}
const A = (...addresses: string[]) => look("answer", addresses);
const NX = look("nxdomain");
const NODATA = look("nodata");
const SERVFAIL = look("servfail");
const REFUSED = look("refused");
const TIMEOUT = look("timeout");
const CONNREFUSED = look("unreachable");
const EMPTY = A();

const verdictRows: Array<{ name: string; lan: Lookup[]; authoritative: Lookup[]; expect: DnsVerdict; hostname?: null; ip?: string }> = [
  { name: "both answer the box's address", lan: [A(IP)], authoritative: [A(IP)], expect: "ok" },
  { name: "extra addresses besides the box's", lan: [A("10.0.0.1", IP)], authoritative: [A(IP)], expect: "ok" },
  { name: "the zone's server is not reachable directly but the LAN answers", lan: [A(IP)], authoritative: [TIMEOUT], expect: "ok" },
  { name: "discovery found no server, the LAN answers", lan: [A(IP)], authoritative: [], expect: "ok" },
  { name: "a dead secondary LAN resolver", lan: [A(IP), TIMEOUT], authoritative: [A(IP)], expect: "ok" },
  { name: "rebinding: NXDOMAIN on the LAN", lan: [NX], authoritative: [A(IP)], expect: "rebinding" },
  { name: "rebinding: REFUSED on the LAN", lan: [REFUSED], authoritative: [A(IP)], expect: "rebinding" },
  { name: "rebinding: SERVFAIL on the LAN", lan: [SERVFAIL], authoritative: [A(IP)], expect: "rebinding" },
  { name: "rebinding: empty answer on the LAN", lan: [NODATA], authoritative: [A(IP)], expect: "rebinding" },
  { name: "rebinding: NOERROR without addresses", lan: [EMPTY], authoritative: [A(IP)], expect: "rebinding" },
  { name: "rebinding on one of two LAN resolvers", lan: [A(IP), REFUSED], authoritative: [A(IP)], expect: "rebinding" },
  { name: "rebinding, one authoritative of two silent", lan: [NX], authoritative: [TIMEOUT, A(IP)], expect: "rebinding" },
  { name: "LAN resolver silent, zone answers", lan: [TIMEOUT], authoritative: [A(IP)], expect: "lan-unreachable" },
  { name: "LAN resolver port closed, zone answers", lan: [CONNREFUSED], authoritative: [A(IP)], expect: "lan-unreachable" },
  { name: "no LAN resolver at all, zone answers", lan: [], authoritative: [A(IP)], expect: "lan-unreachable" },
  { name: "zone answers the old address", lan: [A("192.168.1.7")], authoritative: [A("192.168.1.7")], expect: "wrong-address" },
  { name: "LAN overrides the name", lan: [A("10.9.9.9")], authoritative: [A(IP)], expect: "wrong-address" },
  { name: "LAN overrides the name, zone silent", lan: [A("10.9.9.9")], authoritative: [TIMEOUT], expect: "wrong-address" },
  { name: "zone says NXDOMAIN", lan: [NX], authoritative: [NX], expect: "name-unknown" },
  { name: "zone says NODATA", lan: [NODATA], authoritative: [NODATA], expect: "name-unknown" },
  { name: "zone silent, LAN NXDOMAIN", lan: [NX], authoritative: [TIMEOUT], expect: "authoritative-unreachable" },
  { name: "zone REFUSED (not authoritative there), LAN refuses", lan: [REFUSED], authoritative: [REFUSED], expect: "authoritative-unreachable" },
  { name: "nothing answers", lan: [TIMEOUT], authoritative: [], expect: "authoritative-unreachable" },
  { name: "no hostname", lan: [], authoritative: [], expect: "no-hostname", hostname: null },
  { name: "IPv6: written differently, same address", lan: [A("fd00:0:0::1")], authoritative: [A("fd00::1")], expect: "ok", ip: "fd00::1" },
  { name: "IPv6 box, IPv4 answer", lan: [A("192.168.1.42")], authoritative: [A("fd00::1")], expect: "wrong-address", ip: "fd00::1" },
];

describe("dnsVerdict", () => {
  for (const row of verdictRows) {
    test(row.name, () => {
      const hostname = row.hostname === null ? null : HOSTNAME;
      assert.equal(dnsVerdict({ hostname, ip: row.ip ?? IP, lan: row.lan, authoritative: row.authoritative }), row.expect);
    });
  }
});

test("resolver error codes map to outcomes", () => {
  const rows: Array<[string | undefined, LookupOutcome]> = [
    ["ENOTFOUND", "nxdomain"],
    ["ENODATA", "nodata"],
    ["ESERVFAIL", "servfail"],
    ["EREFUSED", "refused"],
    ["ETIMEOUT", "timeout"],
    ["ECANCELLED", "timeout"],
    ["ECONNREFUSED", "unreachable"],
    ["EBADRESP", "error"],
    [undefined, "error"],
  ];
  for (const [code, outcome] of rows) assert.equal(outcomeOf(code), outcome, String(code));
});

test("addresses compare as addresses", () => {
  assert.ok(sameAddress("fd00::1", "FD00:0000::0001"));
  assert.ok(sameAddress("192.168.1.42", "192.168.1.42"));
  assert.ok(!sameAddress("192.168.1.42", "192.168.1.43"));
  assert.equal(sameAddress("::ffff:192.168.1.42", "192.168.1.42"), false); // the families differ
  assert.ok(!sameAddress("not-an-ip", "192.168.1.42"));
  assert.equal(classifyLookup(A("fd00::1"), "fd00:0::1"), "match");
});

// ---------------------------------------------------------------------------------------------------------
// Pure: the clock.

test("clock offset: the middle of the Date header's second against the middle of the request", () => {
  const t0 = Date.parse("2026-11-26T08:00:00.000Z");
  // The server stamped 08:02:00 (its true time somewhere in that second); the request took 200 ms.
  assert.equal(clockOffset(t0, t0 + 200, "Thu, 26 Nov 2026 08:02:00 GMT"), 120_000 + 500 - 100);
  assert.equal(clockOffset(t0, t0, "Thu, 26 Nov 2026 07:59:00 GMT"), -60_000 + 500);
  assert.equal(clockOffset(t0, t0, null), null);
  assert.equal(clockOffset(t0, t0, "not a date"), null);
  assert.equal(clockVerdict(null), "unknown");
  assert.equal(clockVerdict(59_000), "ok");
  assert.equal(clockVerdict(-61_000), "warn");
  assert.equal(clockVerdict(120_000), "warn");
  assert.equal(clockVerdict(10 * 60_000 + 1), "error");
  assert.equal(clockVerdict(-11 * 60_000), "error");
});

// ---------------------------------------------------------------------------------------------------------
// Pure: the target and the rendering.

test("the target comes from the view: host and zone of the HTTPS name (the certificate's wildcard name)", () => {
  const names = [`*.${LABEL}.${ZONE}`, `${LABEL}.${ZONE}`];
  assert.deepEqual(diagnosticsTarget({ ip: IP, https: httpsNameFor(IP, names, 8443) }), { hostname: HOSTNAME, zone: ZONE, ip: IP });
  assert.deepEqual(diagnosticsTarget({ ip: IP, https: httpsNameFor(IP, [], 8443) }), { hostname: null, zone: null, ip: IP });
  assert.equal(zoneOf(HOSTNAME), ZONE);
  assert.equal(zoneOf("a.b"), null);
});

test("both languages have the same texts, with the same placeholders and the same code spans", () => {
  const en = DIAGNOSTICS_MESSAGES.en;
  const it = DIAGNOSTICS_MESSAGES.it;
  assert.deepEqual(Object.keys(it).sort(), Object.keys(en).sort());
  const shape = (s: string) => ({ vars: [...s.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort(), ticks: s.split("`").length });
  for (const key of Object.keys(en) as Array<keyof typeof en>) {
    assert.ok(it[key].trim() !== "", `it: ${key} is empty`);
    assert.deepEqual(shape(it[key]), shape(en[key]), `placeholders or code spans of ${key} differ`);
    assert.equal(shape(en[key]).ticks % 2, 1, `unbalanced backticks in ${key}`);
  }
});

test("fill: values are escaped, backticks in values add no markup, missing values are empty", () => {
  assert.equal(fill("a `{x}` b", { x: "<b>`y`</b>" }), "a <code>&lt;b&gt;`y`&lt;/b&gt;</code> b");
  assert.equal(fill("{missing}!"), "!");
  assert.equal(fill("{a}{b}", { a: "{b}", b: "&" }), "{b}&amp;");
});

const HOSTILE = `<script>alert("x")</script>'&`;

function hostileReport(verdict: DnsVerdict, issuerReachable: boolean): DiagnosticsReport {
  const lookup: Lookup = { server: HOSTILE, outcome: "answer", addresses: [HOSTILE], code: HOSTILE, ms: 3 };
  return {
    checkedAt: "2026-11-26T08:00:00.000Z",
    durationMs: 12,
    timeoutMs: 3000,
    hostname: HOSTILE,
    ip: HOSTILE,
    zone: HOSTILE,
    severity: "warn",
    dns: {
      verdict,
      severity: "warn",
      recordType: "A",
      lan: [lookup, { ...lookup, outcome: "error" }],
      authoritative: { source: "override", nameServers: [HOSTILE], servers: [HOSTILE], error: HOSTILE, lookups: [lookup] },
      mismatch: { at: "lan", addresses: [HOSTILE] },
    },
    issuer: {
      url: HOSTILE,
      reachable: issuerReachable,
      status: 200,
      latencyMs: 5,
      error: HOSTILE,
      serverDate: HOSTILE,
      clockOffsetMs: issuerReachable ? 125_000 : null,
      clock: issuerReachable ? "warn" : "unknown",
      severity: issuerReachable ? "ok" : "error",
      clockSeverity: "warn",
    },
  };
}

const ALL_VERDICTS: DnsVerdict[] = ["ok", "rebinding", "wrong-address", "name-unknown", "authoritative-unreachable", "lan-unreachable", "no-hostname"];

for (const lang of ["en", "it"] as const) {
  test(`render (${lang}): hostile strings come out escaped for every verdict`, () => {
    for (const verdict of ALL_VERDICTS) {
      for (const reachable of [true, false]) {
        const html = renderDiagnosticsHtml(hostileReport(verdict, reachable), lang);
        assert.ok(!html.includes("<script"), `${verdict}: raw <script> in\n${html}`);
        assert.ok(!/<[a-z]+[^>]*\salert/.test(html));
        assert.ok(html.includes("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&#39;&amp;"), verdict);
        assert.ok(!/\{\w+\}/.test(html), `${verdict}: a placeholder was left in\n${html}`);
        // Only the tags the fragment is made of.
        const tags = new Set([...html.matchAll(/<\/?([a-z0-9]+)/g)].map((m) => m[1]));
        for (const tag of tags) assert.ok(["section", "h2", "h3", "p", "div", "ul", "li", "code", "table", "thead", "tbody", "tr", "th", "td"].includes(tag!), `unexpected <${tag}>`);
        assert.match(html, new RegExp(`class="diag-box diag-(ok|warn|error)" data-check="dns" data-verdict="${verdict}"`));
      }
    }
  });
}

test("render: the rebinding advice names the zone for each router, in both languages, and the public DNS", () => {
  const report = hostileReport("rebinding", true);
  report.zone = "iot.example.net";
  for (const lang of ["en", "it"] as const) {
    const html = renderDiagnosticsHtml(report, lang);
    assert.match(html, /<code>rebind-domain-ok=\/iot\.example\.net\/<\/code>/);
    assert.match(html, /<code>--rebind-domain-ok=\/iot\.example\.net\/<\/code>/);
    assert.match(html, /<code>private-domain: &quot;iot\.example\.net&quot;<\/code>/);
    assert.match(html, /FRITZ!Box/);
    assert.match(html, /pfSense/);
    assert.match(html, /OpenWrt/);
    assert.match(html, /<code>8\.8\.8\.8<\/code>/);
    assert.match(html, /class="diag-box diag-warn" data-check="dns" data-verdict="rebinding"/);
  }
  assert.match(renderDiagnosticsHtml(report, "it"), /protezione DNS rebinding/);
  assert.match(renderDiagnosticsHtml(report, "en"), /DNS rebinding protection/);
});

// ---------------------------------------------------------------------------------------------------------
// Sockets: boxcert's DNS server in-process, local issuers.

const logger = pino({ level: "silent" });
function dnsConfig(zone: string): DnsConfig {
  return {
    zone,
    nameServers: [{ name: `ns1.${zone}`, addresses: ["127.0.0.1"] }],
    caa: ["letsencrypt.org"],
    allow: [...DEFAULT_ALLOW],
    ttl: { ...DEFAULT_TTL },
    hostmaster: `hostmaster.${zone}`,
  };
}
function staticZone(labels: string[]) {
  return { snapshot: () => ({ version: 1, activeLabels: new Set(labels), challenges: new Map<string, string[]>() }) };
}

let authoritative: RunningDnsServer;
/** A server for another zone: REFUSED for ours, as a router that withholds the answer may say. */
let refusing: RunningDnsServer;
let closedPort: number;
let issuer: http.Server;
let issuerUrl: string;

async function listen(server: http.Server | https.Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return (server.address() as AddressInfo).port;
}

before(async () => {
  authoritative = await startDnsServer({ host: "127.0.0.1", port: 0, config: dnsConfig(ZONE), zone: staticZone([LABEL]), logger });
  refusing = await startDnsServer({ host: "127.0.0.1", port: 0, config: dnsConfig("other.test"), zone: staticZone([]), logger });
  const probe = http.createServer();
  closedPort = await listen(probe);
  await new Promise((r) => probe.close(r));
  // The issuer's /healthz, with a Date header 120 s ahead of this machine.
  issuer = http.createServer((req, res) => {
    res.sendDate = false;
    res.setHeader("date", new Date(Date.now() + 120_000).toUTCString());
    res.writeHead(req.url === "/healthz" ? 200 : 404, { "content-type": "application/json" });
    res.end(JSON.stringify({ ok: req.url === "/healthz" }));
  });
  issuerUrl = `http://127.0.0.1:${await listen(issuer)}`;
});

after(async () => {
  await authoritative?.close();
  await refusing?.close();
  await new Promise((r) => issuer?.close(r));
});

const at = (port: number) => `127.0.0.1:${port}`;

function diagnose(over: Partial<Parameters<typeof runDiagnostics>[0]> = {}): Promise<DiagnosticsReport> {
  return runDiagnostics({
    hostname: HOSTNAME,
    ip: IP,
    zone: ZONE,
    issuerUrl,
    lanResolvers: [at(authoritative.port)],
    authoritative: [at(authoritative.port)],
    timeoutMs: 1500,
    ...over,
  });
}

test("ok: the LAN resolver and the zone's server both answer the box's address", async () => {
  const report = await diagnose();
  assert.equal(report.dns.verdict, "ok", JSON.stringify(report.dns));
  assert.equal(report.dns.severity, "ok");
  assert.deepEqual(report.dns.lan.map((l) => [l.server, l.outcome, l.addresses]), [[at(authoritative.port), "answer", [IP]]]);
  assert.deepEqual(report.dns.authoritative.lookups.map((l) => l.addresses), [[IP]]);
  assert.equal(report.dns.authoritative.source, "override");
  assert.deepEqual(JSON.parse(JSON.stringify(report)), report, "the report is plain JSON");
  assert.ok(!Number.isNaN(Date.parse(report.checkedAt)));
});

test("rebinding: the zone answers, the LAN resolver refuses", async () => {
  const report = await diagnose({ lanResolvers: [at(refusing.port)] });
  assert.equal(report.dns.verdict, "rebinding", JSON.stringify(report.dns));
  assert.equal(report.dns.lan[0]!.outcome, "refused");
  const html = renderDiagnosticsHtml(report, "en");
  assert.match(html, /class="diag-box diag-warn" data-check="dns" data-verdict="rebinding"/);
  assert.match(html, /<code>rebind-domain-ok=\/boxcert\.test\/<\/code>/);
});

test("the authoritative servers are found through the LAN resolver (NS, then their addresses)", async () => {
  const report = await diagnose({ authoritative: undefined, authoritativePort: authoritative.port });
  assert.equal(report.dns.authoritative.source, "discovered", JSON.stringify(report.dns.authoritative));
  assert.deepEqual(report.dns.authoritative.nameServers, [`ns1.${ZONE}`]);
  assert.deepEqual(report.dns.authoritative.servers, [at(authoritative.port)]);
  assert.equal(report.dns.verdict, "ok");
});

test("discovery through a resolver that refuses: no authoritative server, and the verdict says so", async () => {
  const report = await diagnose({ lanResolvers: [at(refusing.port)], authoritative: undefined });
  assert.equal(report.dns.authoritative.source, "none");
  assert.match(report.dns.authoritative.error ?? "", /name servers of boxcert\.test .*EREFUSED/);
  assert.equal(report.dns.verdict, "authoritative-unreachable");
  assert.match(renderDiagnosticsHtml(report, "it"), /diag-error" data-check="dns" data-verdict="authoritative-unreachable"/);
});

test("name-unknown: the zone's server has no such label", async () => {
  const report = await diagnose({ hostname: `192-168-1-42.${"q".repeat(16)}.${ZONE}` });
  assert.equal(report.dns.verdict, "name-unknown", JSON.stringify(report.dns));
  assert.equal(report.dns.authoritative.lookups[0]!.outcome, "nxdomain");
});

test("wrong-address: the name encodes another address than the box's", async () => {
  const report = await diagnose({ ip: "192.168.1.43" });
  assert.equal(report.dns.verdict, "wrong-address");
  assert.deepEqual(report.dns.mismatch, { at: "authoritative", addresses: [IP] });
});

test("IPv6 box: AAAA records", async () => {
  const report = await diagnose({ hostname: `fd00--1.${LABEL}.${ZONE}`, ip: "fd00::1" });
  assert.equal(report.dns.recordType, "AAAA");
  assert.equal(report.dns.verdict, "ok", JSON.stringify(report.dns));
});

test("silence everywhere stays within the time bound and never throws", async () => {
  const started = Date.now();
  const report = await diagnose({ lanResolvers: [at(closedPort)], authoritative: undefined, issuerUrl: `http://127.0.0.1:${closedPort}`, timeoutMs: 600 });
  const took = Date.now() - started;
  assert.ok(took < 2000, `took ${took} ms`);
  assert.equal(report.dns.verdict, "authoritative-unreachable");
  assert.equal(report.issuer.reachable, false);
  assert.equal(report.severity, "error");
});

test("DNS servers that never answer: every query ends at the timeout, the run within the bound", async () => {
  const blackHole = createSocket("udp4");
  blackHole.on("message", () => undefined);
  await new Promise<void>((resolve) => blackHole.bind(0, "127.0.0.1", resolve));
  const silent = at(blackHole.address().port);
  try {
    const started = Date.now();
    const report = await diagnose({ lanResolvers: [silent], authoritative: [silent], timeoutMs: 500 });
    const took = Date.now() - started;
    assert.ok(took >= 450 && took < 1200, `took ${took} ms`);
    assert.deepEqual([...report.dns.lan, ...report.dns.authoritative.lookups].map((l) => l.outcome), ["timeout", "timeout"]);
    assert.equal(report.dns.verdict, "authoritative-unreachable");
    assert.equal(report.issuer.reachable, true, "the issuer check ran alongside");
  } finally {
    blackHole.close();
  }
});

test("lan-unreachable: the LAN resolver's port is closed, the zone answers", async () => {
  const report = await diagnose({ lanResolvers: [at(closedPort)] });
  assert.equal(report.dns.verdict, "lan-unreachable", JSON.stringify(report.dns.lan));
  assert.ok(["timeout", "unreachable"].includes(report.dns.lan[0]!.outcome));
});

test("a malformed resolver address is a row, not an exception", async () => {
  const report = await diagnose({ lanResolvers: ["not-an-address"] });
  assert.equal(report.dns.lan[0]!.outcome, "error");
  assert.equal(report.dns.verdict, "lan-unreachable");
});

test("no hostname: no DNS queries, the issuer is still checked", async () => {
  const report = await diagnose({ hostname: null, zone: null });
  assert.equal(report.dns.verdict, "no-hostname");
  assert.deepEqual(report.dns.lan, []);
  assert.equal(report.issuer.reachable, true);
});

test("issuer: reachable, latency measured, and a clock 120 s off is a warning", async () => {
  const report = await diagnose();
  assert.equal(report.issuer.reachable, true);
  assert.equal(report.issuer.status, 200);
  assert.equal(report.issuer.url, `${issuerUrl}/healthz`);
  assert.ok(report.issuer.latencyMs !== null && report.issuer.latencyMs >= 0 && report.issuer.latencyMs < 1500);
  assert.ok(Math.abs(report.issuer.clockOffsetMs! - 120_000) <= 1500, `offset ${report.issuer.clockOffsetMs}`);
  assert.equal(report.issuer.clock, "warn");
  assert.equal(report.severity, "warn");
  for (const [lang, words] of [["en", /box&#39;s clock is 12\d s behind/], ["it", /indietro di 12\d s/]] as const) {
    const html = renderDiagnosticsHtml(report, lang);
    assert.match(html, /class="diag-box diag-warn" data-check="clock" data-verdict="warn"/);
    assert.match(html, words);
    assert.match(html, /±1 s/);
  }
});

test("issuer: any HTTP answer counts as reachable (a 404 at the base URL)", async () => {
  const report = await diagnose({ issuerUrl: `${issuerUrl}/elsewhere` });
  assert.equal(report.issuer.reachable, true);
  assert.equal(report.issuer.status, 404);
});

test("issuer: a closed port is unreachable, with the cause", async () => {
  const report = await diagnose({ issuerUrl: `http://127.0.0.1:${closedPort}` });
  assert.equal(report.issuer.reachable, false);
  assert.match(report.issuer.error ?? "", /connection refused by 127\.0\.0\.1:\d+/);
  assert.equal(report.issuer.clock, "unknown");
  assert.equal(report.severity, "error");
  assert.match(renderDiagnosticsHtml(report, "en"), /diag-error" data-check="issuer" data-verdict="unreachable"/);
});

test("issuer: silence ends at the timeout", async () => {
  const silent = http.createServer(() => undefined);
  const port = await listen(silent);
  try {
    const started = Date.now();
    const report = await diagnose({ issuerUrl: `http://127.0.0.1:${port}`, timeoutMs: 400 });
    assert.ok(Date.now() - started < 1500);
    assert.equal(report.issuer.reachable, false);
    assert.match(report.issuer.error ?? "", /timeout after 0\.4 s/);
  } finally {
    silent.closeAllConnections();
    await new Promise((r) => silent.close(r));
  }
});

test("issuer: HTTPS is verified against the configured CA, never skipped; a clock 15 min off is an error", async () => {
  const root = await makeCa("Diagnostics Test Root");
  const { privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const cert = await issueLeaf(root, { publicKey: privateKey, names: ["localhost"], ips: ["127.0.0.1"] });
  const server = https.createServer({ key: privateKey.export({ type: "pkcs8", format: "pem" }), cert }, (_req, res) => {
    res.sendDate = false;
    res.setHeader("date", new Date(Date.now() - 15 * 60_000).toUTCString());
    res.end("{}");
  });
  const port = await listen(server);
  try {
    const trusted = await diagnose({ issuerUrl: `https://127.0.0.1:${port}`, issuerCa: root.pem });
    assert.equal(trusted.issuer.reachable, true, trusted.issuer.error ?? "");
    assert.equal(trusted.issuer.clock, "error");
    assert.ok(trusted.issuer.clockOffsetMs! < -14 * 60_000);
    assert.match(renderDiagnosticsHtml(trusted, "it"), /diag-error" data-check="clock"/);
    const asBuffers = await diagnose({ issuerUrl: `https://127.0.0.1:${port}`, issuerCa: [Buffer.from(root.pem)] });
    assert.equal(asBuffers.issuer.reachable, true, asBuffers.issuer.error ?? "");
    const untrusted = await diagnose({ issuerUrl: `https://127.0.0.1:${port}` });
    assert.equal(untrusted.issuer.reachable, false);
    assert.match(untrusted.issuer.error ?? "", /certificate not trusted/);
  } finally {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  }
});

test("issuer: an answer without a Date header leaves the clock unknown (a warning)", async () => {
  const server = http.createServer((_req, res) => {
    res.sendDate = false;
    res.end("ok");
  });
  const port = await listen(server);
  try {
    const report = await diagnose({ issuerUrl: `http://127.0.0.1:${port}` });
    assert.equal(report.issuer.reachable, true);
    assert.equal(report.issuer.clockOffsetMs, null);
    assert.equal(report.issuer.clock, "unknown");
    assert.match(renderDiagnosticsHtml(report, "en"), /data-check="clock" data-verdict="unknown"/);
  } finally {
    await new Promise((r) => server.close(r));
  }
});

test("issuer: a URL that is not one is a field, not an exception", async () => {
  const report = await diagnose({ issuerUrl: "not a url" });
  assert.equal(report.issuer.reachable, false);
  assert.match(report.issuer.error ?? "", /is not a URL/);
  const ftp = await diagnose({ issuerUrl: "ftp://127.0.0.1/" });
  assert.match(ftp.issuer.error ?? "", /must start with https:\/\//);
});
