/**
 * `boxcert dns` as resolvers see it: a running process over a real store, asked by the real `dig` (Debian
 * dnsutils). Table-driven: each row is dig's arguments, what the answer must contain, and the server's log.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import { enrollBox, issuanceRecords } from "@boxcert/issuer";
import { openStore, ZoneRecords } from "@boxcert/store";
import { boxcert, freePort, startBoxcert, tempDir, type Proc } from "./support/processes.ts";
import { admin, customer, ZONE } from "./support/system.ts";
import { scriptedBox } from "./support/box-client.ts";

const run = promisify(execFile);

/** What dig printed, in pieces a row can check. */
interface Dig {
  status: string;
  flags: string[];
  question: string[];
  /** Records as `TYPE RDATA` (TTL and class left out); owners in `owners`. */
  answer: string[];
  owners: string[];
  authority: string[];
  additional: string[];
  transport: string;
  raw: string;
}

function parseDig(raw: string): Dig {
  const dig: Dig = { status: "", flags: [], question: [], answer: [], owners: [], authority: [], additional: [], transport: "", raw };
  dig.status = /status: ([A-Z]+)/.exec(raw)?.[1] ?? "";
  dig.flags = (/;; flags: ([^;]*);/.exec(raw)?.[1] ?? "").trim().split(/\s+/).filter(Boolean);
  dig.transport = /;; SERVER: .*\((UDP|TCP)\)/.exec(raw)?.[1] ?? "";
  let section = "";
  for (const line of raw.split("\n")) {
    const header = /^;; ([A-Z]+) SECTION:$/.exec(line);
    if (header) {
      section = header[1]!;
      continue;
    }
    if (line.trim() === "") {
      section = "";
      continue;
    }
    if (section === "QUESTION") dig.question.push(line.replace(/^;/, "").split(/\s+/)[0]!);
    if (line.startsWith(";") || !["ANSWER", "AUTHORITY", "ADDITIONAL"].includes(section)) continue;
    const [owner, , , type, ...rdata] = line.split(/\s+/);
    const record = `${type} ${rdata.join(" ")}`;
    if (section === "ANSWER") {
      dig.answer.push(record);
      dig.owners.push(owner!);
    } else if (section === "AUTHORITY") dig.authority.push(`${owner} ${record}`);
    else dig.additional.push(`${owner} ${record}`);
  }
  return dig;
}

// The store's boxes, filled in before().
const labels = { live: "", freed: "", revoked: "", challenged: "", crowded: "", freedLater: "" };
const TWO_VALUES = ["wildcard-order-value-0123456789abcdefghijklm", "bare-name-order-value-0123456789abcdefghijkl"];
const MANY_VALUES = Array.from({ length: 24 }, (_, i) => `many-values-${String(i).padStart(2, "0")}-0123456789abcdefghijklmnopqrstu`);
/** Set when the store cannot hold challenge values yet: the TXT rows fail with it (never skipped). */

let dns: Proc;
let storePath: string;
let port: number;
let metricsPort: number;

before(async () => {
  const dir = tempDir("boxcert-dns-dig-");
  storePath = join(dir, "registry.sqlite");
  const code = "DNS-DIG-1";
  const dbUuid = await customer(storePath, code, "in_progress", 10);
  // Boxes are enrolled through the registry on the same SQLite file, as the issuer would enroll them.
  const store = await openStore(storePath);
  try {
    const records = issuanceRecords(store);
    for (const key of Object.keys(labels) as Array<keyof typeof labels>) {
      const box = scriptedBox(dbUuid, code);
      const { box: enrolled } = await enrollBox(records, { dbUuid, enterpriseCode: code, identifier: box.identifier, identityKey: box.identitySpki }, new Date());
      labels[key] = enrolled!.label;
    }
    const zoneRecords = new ZoneRecords(store.db);
    for (const value of TWO_VALUES) await zoneRecords.addChallenge(labels.challenged, value);
    for (const value of MANY_VALUES) await zoneRecords.addChallenge(labels.crowded, value);
  } finally {
    await store.close();
  }
  await admin(storePath, "box", "free", labels.freed);
  await admin(storePath, "box", "revoke", labels.revoked);

  port = await freePort();
  metricsPort = await freePort();
  dns = await startBoxcert(
    [
      "dns", "--zone", ZONE, "--listen", `127.0.0.1:${port}`, "--store", storePath,
      "--ns", `ns1.${ZONE}=127.0.0.1`, "--ns", `ns1.${ZONE}=::1`, "--ns", "ns2.example.net",
      "--caa", "letsencrypt.org", "--caa", "pki.goog",
      "--metrics", `127.0.0.1:${metricsPort}`, "--log-level", "debug",
    ],
    (out) => out.includes("dns listening"),
  );
});

after(async () => {
  await dns?.stop();
});

async function dig(args: string[]): Promise<Dig> {
  const { stdout } = await run("dig", [`@127.0.0.1`, "-p", String(port), "+norec", "+time=3", "+tries=1", ...args]);
  return parseDig(stdout);
}

interface Row {
  name: string;
  args: () => string[];
  status: string;
  /** Exactly these answer records (`TYPE RDATA`), in any order; a RegExp matches one record. */
  answer?: Array<string | RegExp>;
  /** The authority section is the zone's SOA (negative answers), or empty. */
  authoritySoa?: boolean;
  flags?: { has?: string[]; lacks?: string[] };
  /** The question section exactly as dig printed it (0x20 case must come back as asked). */
  question?: () => string;
  transport?: "UDP" | "TCP";
}

const A_LIVE = () => `192-168-1-42.${labels.live}.${ZONE}`;
const SOA = /^SOA ns1\.boxcert\.test\. hostmaster\.boxcert\.test\. \d+ \d+ \d+ \d+ \d+$/;

const rows: Row[] = [
  { name: "A hit", args: () => [A_LIVE(), "A"], status: "NOERROR", answer: ["A 192.168.1.42"], authoritySoa: false },
  { name: "A hit on loopback", args: () => [`127-0-0-1.${labels.live}.${ZONE}`, "A"], status: "NOERROR", answer: ["A 127.0.0.1"] },
  { name: "AAAA hit (-- is ::)", args: () => [`fd00--1.${labels.live}.${ZONE}`, "AAAA"], status: "NOERROR", answer: ["AAAA fd00::1"] },
  { name: "AAAA link-local", args: () => [`fe80--1234-5678.${labels.live}.${ZONE}`, "AAAA"], status: "NOERROR", answer: ["AAAA fe80::1234:5678"] },
  { name: "public IPv4 refused by the range policy", args: () => [`8-8-8-8.${labels.live}.${ZONE}`, "A"], status: "NXDOMAIN", answer: [], authoritySoa: true },
  { name: "public IPv6 refused by the range policy", args: () => [`2001-db8--1.${labels.live}.${ZONE}`, "AAAA"], status: "NXDOMAIN", answer: [], authoritySoa: true },
  { name: "unknown label", args: () => [`192-168-1-42.${"a".repeat(16)}.${ZONE}`, "A"], status: "NXDOMAIN", answer: [], authoritySoa: true },
  { name: "freed box no longer resolves", args: () => [`192-168-1-42.${labels.freed}.${ZONE}`, "A"], status: "NXDOMAIN", answer: [], authoritySoa: true },
  { name: "revoked box no longer resolves", args: () => [`192-168-1-42.${labels.revoked}.${ZONE}`, "A"], status: "NXDOMAIN", answer: [], authoritySoa: true },
  {
    name: "TXT with two values (wildcard and bare name share the challenge name)",
    args: () => [`_acme-challenge.${labels.challenged}.${ZONE}`, "TXT"],
    status: "NOERROR",
    answer: TWO_VALUES.map((v) => `TXT "${v}"`),
  },
  { name: "SOA at the apex", args: () => [ZONE, "SOA"], status: "NOERROR", answer: [SOA] },
  { name: "NS at the apex", args: () => [ZONE, "NS"], status: "NOERROR", answer: ["NS ns1.boxcert.test.", "NS ns2.example.net."] },
  { name: "in-zone name server address", args: () => [`ns1.${ZONE}`, "A"], status: "NOERROR", answer: ["A 127.0.0.1"] },
  { name: "in-zone name server IPv6 address", args: () => [`ns1.${ZONE}`, "AAAA"], status: "NOERROR", answer: ["AAAA ::1"] },
  { name: "CAA names every CA", args: () => [ZONE, "CAA"], status: "NOERROR", answer: ['CAA 0 issue "letsencrypt.org"', 'CAA 0 issue "pki.goog"'] },
  { name: "NXDOMAIN with the SOA", args: () => [`no-such-name.${ZONE}`, "A"], status: "NXDOMAIN", answer: [], authoritySoa: true },
  { name: "NODATA: AAAA at an IPv4 name", args: () => [A_LIVE(), "AAAA"], status: "NOERROR", answer: [], authoritySoa: true },
  { name: "NODATA: MX at the apex", args: () => [ZONE, "MX"], status: "NOERROR", answer: [], authoritySoa: true },
  { name: "REFUSED outside the zone", args: () => ["example.com", "A"], status: "REFUSED", answer: [], flags: { lacks: ["aa", "ra"] } },
  { name: "REFUSED for a name that only ends like the zone", args: () => [`not${ZONE}`, "A"], status: "REFUSED", answer: [] },
  { name: "A hit over TCP", args: () => ["+tcp", A_LIVE(), "A"], status: "NOERROR", answer: ["A 192.168.1.42"], transport: "TCP" },
  {
    name: "mixed case: the question comes back exactly as asked",
    args: () => ["+nocookie", `127-0-0-1.${mixCase(labels.live)}.BoxCert.Test`, "A"],
    status: "NOERROR",
    answer: ["A 127.0.0.1"],
    question: () => `127-0-0-1.${mixCase(labels.live)}.BoxCert.Test.`,
  },
  {
    name: "+bufsize=512 with many TXT values: truncated over UDP",
    args: () => ["+bufsize=512", "+ignore", `_acme-challenge.${labels.crowded}.${ZONE}`, "TXT"],
    status: "NOERROR",
    flags: { has: ["aa", "tc"], lacks: ["ra"] },
    transport: "UDP",
  },
  {
    name: "... and complete over TCP",
    args: () => ["+bufsize=512", "+tcp", `_acme-challenge.${labels.crowded}.${ZONE}`, "TXT"],
    status: "NOERROR",
    answer: MANY_VALUES.map((v) => `TXT "${v}"`),
    flags: { has: ["aa"], lacks: ["tc", "ra"] },
    transport: "TCP",
  },
];

function mixCase(name: string): string {
  return [...name].map((c, i) => (i % 2 ? c.toUpperCase() : c)).join("");
}

function sameRecords(actual: string[], expected: Array<string | RegExp>): boolean {
  if (actual.length !== expected.length) return false;
  const left = [...actual];
  for (const want of expected) {
    const at = left.findIndex((got) => (typeof want === "string" ? got === want : want.test(got)));
    if (at === -1) return false;
    left.splice(at, 1);
  }
  return true;
}

for (const row of rows) {
  test(`dig ${row.name}`, async () => {
    const before = dns.output().length;
    const result = await dig(row.args());
    const context = `dig ${row.args().join(" ")}\n${result.raw}`;
    assert.equal(result.status, row.status, context);
    const flags = row.flags ?? { has: row.status === "REFUSED" ? [] : ["aa"], lacks: ["ra"] };
    for (const flag of flags.has ?? []) assert.ok(result.flags.includes(flag), `flag ${flag} missing\n${context}`);
    for (const flag of flags.lacks ?? []) assert.ok(!result.flags.includes(flag), `flag ${flag} set\n${context}`);
    assert.ok(result.flags.includes("qr"), context);
    if (row.answer) assert.ok(sameRecords(result.answer, row.answer), `answer ${JSON.stringify(result.answer)}\n${context}`);
    if (row.authoritySoa !== undefined) {
      const soa = result.authority.filter((r) => r.startsWith(`${ZONE}. SOA `));
      assert.equal(soa.length, row.authoritySoa ? 1 : 0, `authority ${JSON.stringify(result.authority)}\n${context}`);
      if (row.authoritySoa) assert.equal(result.authority.length, 1, context);
    }
    if (row.question) assert.deepEqual(result.question, [row.question()], context);
    if (row.question) for (const owner of result.owners) assert.equal(owner, row.question(), `answer owner echoes the question\n${context}`);
    if (row.transport) assert.equal(result.transport, row.transport, context);
    // The server logged this query at debug level: one line naming the question and the response code.
    const qname = row.args().find((a) => a.includes(".") && !a.startsWith("+"))!.toLowerCase();
    const logged = await waitForLog(before, (msg) => msg.toLowerCase().includes(qname) && msg.includes(row.status));
    assert.ok(logged, `no debug log line with ${qname} and ${row.status} in:\n${dns.output().slice(before)}`);
  });
}

/** The `msg` of a debug line (pino level 20) written after `from`, matching `match`; waits a little for it. */
async function waitForLog(from: number, match: (msg: string) => boolean): Promise<string | null> {
  for (let i = 0; i < 40; i++) {
    for (const line of dns.output().slice(from).split("\n")) {
      if (!line.startsWith("{")) continue;
      const entry = JSON.parse(line) as { level: number; msg?: string };
      if (entry.level === 20 && entry.msg && match(entry.msg)) return entry.msg;
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  return null;
}

/** Asks until `done(answer)` or `ms` pass; the last answer either way. */
async function digUntil(args: string[], done: (d: Dig) => boolean, ms: number): Promise<Dig> {
  const started = Date.now();
  for (;;) {
    const result = await dig(args);
    if (done(result) || Date.now() - started > ms) return result;
    await new Promise((r) => setTimeout(r, 50));
  }
}

test("a box freed while the server runs stops resolving within a second (the zone loader follows the store)", async () => {
  const name = `10-0-0-7.${labels.freedLater}.${ZONE}`;
  assert.deepEqual((await dig([name, "A"])).answer, ["A 10.0.0.7"]);
  await admin(storePath, "box", "free", labels.freedLater);
  const result = await digUntil([name, "A"], (d) => d.status === "NXDOMAIN", 1500);
  assert.equal(result.status, "NXDOMAIN", `still answered after the box was freed\n${result.raw}`);
});

test("a challenge value written while the server runs is answered within one second", async () => {
  const store = await openStore(storePath);
  const value = "written-while-running-0123456789abcdefghijklmnopq";
  try {
    await new ZoneRecords(store.db).addChallenge(labels.live, value);
  } finally {
    await store.close();
  }
  const args = [`_acme-challenge.${labels.live}.${ZONE}`, "TXT"];
  const result = await digUntil(args, (d) => d.answer.includes(`TXT "${value}"`), 1500);
  assert.deepEqual(result.answer, [`TXT "${value}"`], result.raw);
});

test("GET /metrics counts answers by response code, in Prometheus text", async () => {
  await dig([`nothing.${ZONE}`, "A"]);
  const res = await fetch(`http://127.0.0.1:${metricsPort}/metrics`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get("content-type") ?? "", /^text\/plain/);
  const text = await res.text();
  // Counters with an rcode label, and the rows above have sent NXDOMAIN and REFUSED answers.
  assert.match(text, /\{[^}]*rcode="NXDOMAIN"[^}]*\} [1-9]\d*$/m);
  assert.match(text, /\{[^}]*rcode="REFUSED"[^}]*\} [1-9]\d*$/m);
  assert.equal((await fetch(`http://127.0.0.1:${metricsPort}/other`)).status, 404);
});

const badFlags: Array<[string[], RegExp]> = [
  [["--zone", "bad_zone", "--listen", "127.0.0.1:5353"], /--zone .*"bad_zone" is not a DNS zone name/],
  [["--zone", ZONE, "--listen", "localhost:5353"], /"localhost:5353" is not IP:PORT/],
  [["--zone", ZONE, "--listen", "127.0.0.1:99999"], /is not IP:PORT/],
  [["--zone", ZONE, "--listen", "127.0.0.1:5353", "--ns", `ns1.${ZONE}=not-an-ip`], /"not-an-ip" is not an IP address/],
  [["--zone", ZONE, "--listen", "127.0.0.1:5353", "--ns", `ns9.${ZONE}`], /inside the zone .* give its address/],
  [["--zone", ZONE, "--listen", "127.0.0.1:5353", "--allow", "10.0.0.0/33"], /"10\.0\.0\.0\/33" is not a CIDR range/],
  [["--zone", ZONE, "--listen", "0.0.0.0:5353"], /give --ns NAME=IP/],
  [["--zone", ZONE, "--listen", "127.0.0.1:5353", "--log-level", "loud"], /"loud" is not a log level/],
  [["--zone", ZONE, "--listen", "127.0.0.1:5353", "--tcp-max-per-client", "0"], /"0" is not a number of connections from 1 to 65535/],
  [["--zone", ZONE, "--listen", "127.0.0.1:5353", "--tcp-idle-timeout", "100ms"], /"100ms" is shorter than 1s/],
  [["--zone", ZONE, "--listen", "127.0.0.1:5353", "--tcp-max-connections", "8", "--tcp-max-per-client", "9"], /--tcp-max-per-client 9 is above --tcp-max-connections 8/],
];

for (const [args, message] of badFlags) {
  test(`boxcert dns ${args.join(" ")}: a one-line error and a non-zero exit`, async () => {
    const result = await boxcert(["dns", "--store", join(tempDir("boxcert-dns-flags-"), "registry.sqlite"), ...args]);
    assert.notEqual(result.code, 0);
    assert.match(result.stderr, message);
    assert.equal(result.stderr.trim().split("\n").length, 1, result.stderr);
  });
}
