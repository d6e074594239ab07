/**
 * The answer function (answer.ts) on real DNS packets: a table of queries, each with the response it must
 * get (rcode, flags, records as dig would print them), on a fixed zone. Every row is also answered with the
 * fast path turned off, and both must give the same bytes.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import packet from "dns-packet";
import { answer, answerWithoutFastPath } from "../src/answer.ts";
import { DnsMetrics } from "../src/metrics.ts";
import { type Answer, type DnsConfig, type QuerySource, type ZoneSnapshot } from "../src/zone.ts";
import { testDnsConfig } from "./helpers/dns-client.ts";

const L1 = "abcdefghijklmnop";
const L2 = "qrstuvwxyz234567";
const FREED = "freedlabel222222";
const MANY = "manyvaluesmanyva";

const config: DnsConfig = testDnsConfig();
const manyValues = Array.from({ length: 12 }, (_, i) => `${"v".repeat(40)}-${String(i).padStart(2, "0")}`);
const zone: ZoneSnapshot = {
  version: 5,
  activeLabels: new Set([L1, L2, MANY]),
  challenges: new Map([
    [L1, ["challenge-one", "challenge-two"]],
    [MANY, manyValues],
  ]),
};
const udp: QuerySource = { address: "127.0.0.1", port: 5353, transport: "udp" };
const tcp: QuerySource = { address: "::1", port: 5354, transport: "tcp" };

const TYPES: Record<string, number> = { A: 1, NS: 2, SOA: 6, MX: 15, TXT: 16, AAAA: 28, OPT: 41, IXFR: 251, AXFR: 252, ANY: 255, CAA: 257 };

// --- Building queries byte by byte (dns-packet's encoder cannot write the odd ones).

function wireName(name: string | readonly string[]): Buffer {
  const labels = typeof name === "string" ? (name === "." ? [] : name.split(".")) : name;
  return Buffer.concat([...labels.map((label) => Buffer.concat([Buffer.from([label.length]), Buffer.from(label, "latin1")])), Buffer.from([0])]);
}

interface OptSpec {
  udp?: number;
  version?: number;
  dnssecOk?: boolean;
  options?: Array<{ code: number; data: Buffer }>;
  owner?: Buffer;
}

function optRecord(spec: OptSpec = {}): Buffer {
  const options = Buffer.concat(
    (spec.options ?? []).map(({ code, data }) => {
      const head = Buffer.alloc(4);
      head.writeUInt16BE(code, 0);
      head.writeUInt16BE(data.length, 2);
      return Buffer.concat([head, data]);
    }),
  );
  const fixed = Buffer.alloc(10);
  fixed.writeUInt16BE(41, 0);
  fixed.writeUInt16BE(spec.udp ?? 1232, 2);
  fixed[5] = spec.version ?? 0;
  fixed[6] = spec.dnssecOk ? 0x80 : 0;
  fixed.writeUInt16BE(options.length, 8);
  return Buffer.concat([spec.owner ?? Buffer.from([0]), fixed, options]);
}

interface QuerySpec {
  name: string | readonly string[];
  type?: string | number;
  klass?: number;
  id?: number;
  rd?: boolean;
  cd?: boolean;
  opcode?: number;
  edns?: OptSpec | false;
}

function query(spec: QuerySpec): Buffer {
  const header = Buffer.alloc(12);
  header.writeUInt16BE(spec.id ?? 0x1234, 0);
  header.writeUInt16BE(((spec.opcode ?? 0) << 11) | (spec.rd === false ? 0 : 0x0100) | (spec.cd ? 0x0010 : 0), 2);
  header.writeUInt16BE(1, 4);
  header.writeUInt16BE(spec.edns ? 1 : 0, 10);
  const tail = Buffer.alloc(4);
  tail.writeUInt16BE(typeof spec.type === "number" ? spec.type : TYPES[spec.type ?? "A"]!, 0);
  tail.writeUInt16BE(spec.klass ?? 1, 2);
  return Buffer.concat([header, wireName(spec.name), tail, spec.edns ? optRecord(spec.edns) : Buffer.alloc(0)]);
}

// --- Reading responses the way dig shows them.

function rdataText(record: packet.Answer): string {
  switch (record.type) {
    case "TXT":
      return (record.data as Buffer[]).map((s) => JSON.stringify(s.toString())).join(" ");
    case "SOA": {
      const d = record.data;
      return `${d.mname} ${d.rname} ${d.serial} ${d.refresh} ${d.retry} ${d.expire} ${d.minimum}`;
    }
    case "CAA":
      return `${record.data.flags} ${record.data.tag} "${record.data.value}"`;
    default:
      return String((record as { data: unknown }).data);
  }
}

function recordText(record: packet.Answer): string {
  return `${record.name} ${(record as { ttl?: number }).ttl} ${record.type} ${rdataText(record)}`;
}

interface View {
  rcode: string;
  flags: string;
  question: string | null;
  answers: string[];
  authority: string[];
  additional: string[];
  opt: string | null;
}

const RCODE_TEXT = ["NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED"];

function view(response: Buffer): View {
  const decoded = packet.decode(response);
  const opt = (decoded.additionals ?? []).find((r) => r.type === "OPT") as packet.OptAnswer | undefined;
  const rcode = (response[3]! & 0xf) | ((opt?.extendedRcode ?? 0) << 4);
  const f = response.readUInt16BE(2);
  const flags = [
    [0x8000, "qr"],
    [0x0400, "aa"],
    [0x0200, "tc"],
    [0x0100, "rd"],
    [0x0080, "ra"],
    [0x0020, "ad"],
    [0x0010, "cd"],
  ]
    .filter(([bit]) => f & (bit as number))
    .map(([, name]) => name)
    .join(" ");
  const q = decoded.questions?.[0];
  return {
    rcode: rcode === 16 ? "BADVERS" : RCODE_TEXT[rcode] ?? String(rcode),
    flags,
    question: q ? `${q.name} ${q.type} ${q.class}` : null,
    answers: (decoded.answers ?? []).map(recordText),
    authority: (decoded.authorities ?? []).map(recordText),
    additional: (decoded.additionals ?? []).filter((r) => r.type !== "OPT").map(recordText),
    opt: opt ? `udp=${opt.udpPayloadSize} version=${opt.ednsVersion} do=${opt.flag_do} options=${opt.options.length}` : null,
  };
}

function ask(q: Buffer, source: QuerySource = udp, snapshot: ZoneSnapshot = zone, cfg: DnsConfig = config): Answer {
  const result = answer(q, source, snapshot, cfg);
  const general = answerWithoutFastPath(q, source, snapshot, cfg);
  assert.deepEqual(general, result, "the fast path and the general path must give the same answer");
  return result;
}

const SOA = "boxcert.test 60 SOA ns1.boxcert.test hostmaster.boxcert.test 5 3600 600 1209600 60";
const AA = "qr aa rd";

interface Row {
  title: string;
  q: QuerySpec;
  rcode: string;
  flags?: string;
  answers?: string[];
  authority?: string[];
  additional?: string[];
  opt?: string | null;
}

const rows: Row[] = [
  // Addresses.
  { title: "A hit", q: { name: `192-168-1-42.${L1}.boxcert.test` }, rcode: "NOERROR", answers: [`192-168-1-42.${L1}.boxcert.test 300 A 192.168.1.42`] },
  {
    title: "0x20 mixed case is echoed in the question and the answer",
    q: { name: `192-168-1-42.AbCdEfGhIjKlMnOp.BoXcErT.TeSt` },
    rcode: "NOERROR",
    answers: ["192-168-1-42.AbCdEfGhIjKlMnOp.BoXcErT.TeSt 300 A 192.168.1.42"],
  },
  { title: "A in 10/8", q: { name: `10-0-0-1.${L2}.boxcert.test` }, rcode: "NOERROR", answers: [`10-0-0-1.${L2}.boxcert.test 300 A 10.0.0.1`] },
  { title: "A at the top of 172.16/12", q: { name: `172-31-255-255.${L1}.boxcert.test` }, rcode: "NOERROR", answers: [`172-31-255-255.${L1}.boxcert.test 300 A 172.31.255.255`] },
  { title: "A just past 172.16/12", q: { name: `172-32-0-0.${L1}.boxcert.test` }, rcode: "NXDOMAIN", authority: [SOA] },
  { title: "A loopback", q: { name: `127-0-0-1.${L1}.boxcert.test` }, rcode: "NOERROR", answers: [`127-0-0-1.${L1}.boxcert.test 300 A 127.0.0.1`] },
  { title: "A CGNAT", q: { name: `100-64-0-1.${L1}.boxcert.test` }, rcode: "NOERROR", answers: [`100-64-0-1.${L1}.boxcert.test 300 A 100.64.0.1`] },
  { title: "A public address: no such name", q: { name: `8-8-8-8.${L1}.boxcert.test` }, rcode: "NXDOMAIN", authority: [SOA] },
  { title: "AAAA hit", q: { name: `fd00--1.${L1}.boxcert.test`, type: "AAAA" }, rcode: "NOERROR", answers: [`fd00--1.${L1}.boxcert.test 300 AAAA fd00::1`] },
  { title: "AAAA upper-case hex", q: { name: `FD00--AB.${L1}.boxcert.test`, type: "AAAA" }, rcode: "NOERROR", answers: [`FD00--AB.${L1}.boxcert.test 300 AAAA fd00::ab`] },
  {
    title: "AAAA written out in full",
    q: { name: `fd12-3456-789a-1-0-0-0-1.${L1}.boxcert.test`, type: "AAAA" },
    rcode: "NOERROR",
    answers: [`fd12-3456-789a-1-0-0-0-1.${L1}.boxcert.test 300 AAAA fd12:3456:789a:1::1`],
  },
  { title: "AAAA ::1", q: { name: `--1.${L1}.boxcert.test`, type: "AAAA" }, rcode: "NOERROR", answers: [`--1.${L1}.boxcert.test 300 AAAA ::1`] },
  { title: "AAAA link-local", q: { name: `fe80--1.${L1}.boxcert.test`, type: "AAAA" }, rcode: "NOERROR", answers: [`fe80--1.${L1}.boxcert.test 300 AAAA fe80::1`] },
  { title: "AAAA public address: no such name", q: { name: `2001-db8--1.${L1}.boxcert.test`, type: "AAAA" }, rcode: "NXDOMAIN", authority: [SOA] },
  { title: "A at an IPv6 name: NODATA", q: { name: `fd00--1.${L1}.boxcert.test`, type: "A" }, rcode: "NOERROR", authority: [SOA] },
  { title: "AAAA at an IPv4 name: NODATA", q: { name: `192-168-1-42.${L1}.boxcert.test`, type: "AAAA" }, rcode: "NOERROR", authority: [SOA] },
  { title: "TXT at an address name: NODATA", q: { name: `192-168-1-42.${L1}.boxcert.test`, type: "TXT" }, rcode: "NOERROR", authority: [SOA] },
  { title: "a freed label has no addresses", q: { name: `192-168-1-42.${FREED}.boxcert.test` }, rcode: "NXDOMAIN", authority: [SOA] },
  { title: "an octet above 255", q: { name: `256-1-1-1.${L1}.boxcert.test` }, rcode: "NXDOMAIN", authority: [SOA] },
  { title: "a leading zero", q: { name: `192-168-01-42.${L1}.boxcert.test` }, rcode: "NXDOMAIN", authority: [SOA] },
  { title: "three dashes in IPv6", q: { name: `fd00---1.${L1}.boxcert.test`, type: "AAAA" }, rcode: "NXDOMAIN", authority: [SOA] },
  { title: "not an address", q: { name: `www.${L1}.boxcert.test` }, rcode: "NXDOMAIN", authority: [SOA] },
  { title: "below an address name", q: { name: `x.192-168-1-42.${L1}.boxcert.test` }, rcode: "NXDOMAIN", authority: [SOA] },
  { title: "a wildcard is not synthesised", q: { name: `*.${L1}.boxcert.test` }, rcode: "NXDOMAIN", authority: [SOA] },

  // Challenges.
  {
    title: "TXT: both challenge values",
    q: { name: `_acme-challenge.${L1}.boxcert.test`, type: "TXT" },
    rcode: "NOERROR",
    answers: [`_acme-challenge.${L1}.boxcert.test 30 TXT "challenge-one"`, `_acme-challenge.${L1}.boxcert.test 30 TXT "challenge-two"`],
  },
  {
    title: "TXT: case as asked",
    q: { name: `_ACME-Challenge.${L1.toUpperCase()}.boxcert.TEST`, type: "TXT" },
    rcode: "NOERROR",
    answers: [`_ACME-Challenge.${L1.toUpperCase()}.boxcert.TEST 30 TXT "challenge-one"`, `_ACME-Challenge.${L1.toUpperCase()}.boxcert.TEST 30 TXT "challenge-two"`],
  },
  { title: "TXT: no values on an active label: NODATA", q: { name: `_acme-challenge.${L2}.boxcert.test`, type: "TXT" }, rcode: "NOERROR", authority: [SOA] },
  { title: "TXT: no values on a freed label: NXDOMAIN", q: { name: `_acme-challenge.${FREED}.boxcert.test`, type: "TXT" }, rcode: "NXDOMAIN", authority: [SOA] },
  { title: "A at a challenge name: NODATA", q: { name: `_acme-challenge.${L1}.boxcert.test`, type: "A" }, rcode: "NOERROR", authority: [SOA] },

  // The label itself.
  { title: "label: exists, no A", q: { name: `${L1}.boxcert.test` }, rcode: "NOERROR", authority: [SOA] },
  { title: "label: exists, no TXT", q: { name: `${L2}.boxcert.test`, type: "TXT" }, rcode: "NOERROR", authority: [SOA] },
  { title: "label: exists, ANY is NODATA", q: { name: `${L1}.boxcert.test`, type: "ANY" }, rcode: "NOERROR", authority: [SOA] },
  { title: "freed label: no such name", q: { name: `${FREED}.boxcert.test` }, rcode: "NXDOMAIN", authority: [SOA] },

  // The apex.
  { title: "SOA", q: { name: "boxcert.test", type: "SOA" }, rcode: "NOERROR", answers: ["boxcert.test 3600 SOA ns1.boxcert.test hostmaster.boxcert.test 5 3600 600 1209600 60"] },
  { title: "NS with glue", q: { name: "boxcert.test", type: "NS" }, rcode: "NOERROR", answers: ["boxcert.test 3600 NS ns1.boxcert.test"], additional: ["ns1.boxcert.test 3600 A 127.0.0.1"] },
  { title: "CAA", q: { name: "BoxCert.Test", type: "CAA" }, rcode: "NOERROR", answers: ['BoxCert.Test 3600 CAA 0 issue "letsencrypt.org"'] },
  { title: "ANY at the apex: the SOA only (RFC 8482)", q: { name: "boxcert.test", type: "ANY" }, rcode: "NOERROR", answers: ["boxcert.test 3600 SOA ns1.boxcert.test hostmaster.boxcert.test 5 3600 600 1209600 60"] },
  { title: "A at the apex: NODATA", q: { name: "boxcert.test", type: "A" }, rcode: "NOERROR", authority: [SOA] },
  { title: "MX at the apex: NODATA", q: { name: "boxcert.test", type: "MX" }, rcode: "NOERROR", authority: [SOA] },
  { title: "name server address", q: { name: "ns1.boxcert.test", type: "A" }, rcode: "NOERROR", answers: ["ns1.boxcert.test 3600 A 127.0.0.1"] },
  { title: "name server has no AAAA: NODATA", q: { name: "ns1.boxcert.test", type: "AAAA" }, rcode: "NOERROR", authority: [SOA] },
  { title: "ANY at an address: the address", q: { name: `192-168-1-42.${L1}.boxcert.test`, type: "ANY" }, rcode: "NOERROR", answers: [`192-168-1-42.${L1}.boxcert.test 300 A 192.168.1.42`] },
  {
    title: "ANY at a challenge: its TXT",
    q: { name: `_acme-challenge.${L1}.boxcert.test`, type: "ANY" },
    rcode: "NOERROR",
    answers: [`_acme-challenge.${L1}.boxcert.test 30 TXT "challenge-one"`, `_acme-challenge.${L1}.boxcert.test 30 TXT "challenge-two"`],
  },
  { title: "unknown type at an address: NODATA", q: { name: `192-168-1-42.${L1}.boxcert.test`, type: 65280 }, rcode: "NOERROR", authority: [SOA] },

  // Outside the zone, classes, transfers, flags.
  { title: "outside the zone: REFUSED, not authoritative", q: { name: "example.com" }, rcode: "REFUSED", flags: "qr rd" },
  { title: "the parent of the zone: REFUSED", q: { name: "test", type: "SOA" }, rcode: "REFUSED", flags: "qr rd" },
  { title: "the root: REFUSED", q: { name: ".", type: "NS" }, rcode: "REFUSED", flags: "qr rd" },
  { title: "the zone as a suffix of a label: REFUSED", q: { name: "xboxcert.test" }, rcode: "REFUSED", flags: "qr rd" },
  { title: "the zone inside another name: REFUSED", q: { name: "boxcert.test.example.com" }, rcode: "REFUSED", flags: "qr rd" },
  { title: "class CH: REFUSED", q: { name: "version.bind", type: "TXT", klass: 3 }, rcode: "REFUSED", flags: "qr rd" },
  { title: "class CH in the zone: REFUSED", q: { name: `192-168-1-42.${L1}.boxcert.test`, klass: 3 }, rcode: "REFUSED", flags: "qr rd" },
  { title: "class ANY is answered", q: { name: `192-168-1-42.${L1}.boxcert.test`, klass: 255 }, rcode: "NOERROR", answers: [`192-168-1-42.${L1}.boxcert.test 300 A 192.168.1.42`] },
  { title: "AXFR: REFUSED", q: { name: "boxcert.test", type: "AXFR" }, rcode: "REFUSED", flags: "qr rd" },
  { title: "IXFR: REFUSED", q: { name: "boxcert.test", type: "IXFR" }, rcode: "REFUSED", flags: "qr rd" },
  { title: "RD clear stays clear", q: { name: `192-168-1-42.${L1}.boxcert.test`, rd: false }, rcode: "NOERROR", flags: "qr aa", answers: [`192-168-1-42.${L1}.boxcert.test 300 A 192.168.1.42`] },
  { title: "CD is copied", q: { name: `192-168-1-42.${L1}.boxcert.test`, cd: true }, rcode: "NOERROR", flags: "qr aa rd cd", answers: [`192-168-1-42.${L1}.boxcert.test 300 A 192.168.1.42`] },
  { title: "NOTIFY of the zone's SOA from loopback: acknowledged (notify.test.ts has the rest)", q: { name: "boxcert.test", type: "SOA", opcode: 4 }, rcode: "NOERROR", flags: AA },
  { title: "UPDATE: NOTIMP", q: { name: "boxcert.test", type: "SOA", opcode: 5 }, rcode: "NOTIMP", flags: "qr rd" },

  // EDNS.
  { title: "EDNS: OPT back, 1232 advertised", q: { name: `192-168-1-42.${L1}.boxcert.test`, edns: { udp: 4096 } }, rcode: "NOERROR", answers: [`192-168-1-42.${L1}.boxcert.test 300 A 192.168.1.42`], opt: "udp=1232 version=0 do=false options=0" },
  { title: "EDNS: DO copied", q: { name: `_acme-challenge.${L2}.boxcert.test`, type: "TXT", edns: { dnssecOk: true } }, rcode: "NOERROR", authority: [SOA], opt: "udp=1232 version=0 do=true options=0" },
  {
    title: "EDNS: unknown and cookie options ignored",
    q: { name: `fd00--1.${L1}.boxcert.test`, type: "AAAA", edns: { options: [{ code: 65001, data: Buffer.from("xyz") }, { code: 10, data: Buffer.alloc(8, 1) }] } },
    rcode: "NOERROR",
    answers: [`fd00--1.${L1}.boxcert.test 300 AAAA fd00::1`],
    opt: "udp=1232 version=0 do=false options=0",
  },
  { title: "EDNS: version 1 is BADVERS", q: { name: `192-168-1-42.${L1}.boxcert.test`, edns: { version: 1 } }, rcode: "BADVERS", flags: "qr rd", opt: "udp=1232 version=0 do=false options=0" },
  { title: "EDNS: NXDOMAIN with OPT", q: { name: `8-8-8-8.${L1}.boxcert.test`, edns: {} }, rcode: "NXDOMAIN", authority: [SOA], opt: "udp=1232 version=0 do=false options=0" },
  { title: "EDNS: REFUSED with OPT", q: { name: "example.com", edns: {} }, rcode: "REFUSED", flags: "qr rd", opt: "udp=1232 version=0 do=false options=0" },
  { title: "EDNS: NOTIMP with OPT", q: { name: "boxcert.test", opcode: 2, edns: {} }, rcode: "NOTIMP", flags: "qr rd", opt: "udp=1232 version=0 do=false options=0" },
  { title: "EDNS: OPT with a non-root owner is FORMERR", q: { name: "boxcert.test", edns: { owner: wireName("x") } }, rcode: "FORMERR", flags: "qr rd", opt: "udp=1232 version=0 do=false options=0" },
  { title: "no EDNS: no OPT", q: { name: `192-168-1-42.${L1}.boxcert.test` }, rcode: "NOERROR", answers: [`192-168-1-42.${L1}.boxcert.test 300 A 192.168.1.42`], opt: null },
];

for (const row of rows) {
  test(`answer: ${row.title}`, () => {
    const q = query(row.q);
    const result = ask(q);
    assert.ok(result.response, result.log);
    const v = view(result.response);
    assert.equal(v.rcode, row.rcode, result.log);
    assert.equal(result.rcode, row.rcode);
    assert.equal(v.flags, row.flags ?? AA);
    assert.deepEqual(v.answers, row.answers ?? []);
    assert.deepEqual(v.authority, row.authority ?? []);
    assert.deepEqual(v.additional, row.additional ?? []);
    if (row.opt !== undefined) assert.equal(v.opt, row.opt);
    else assert.equal(v.opt === null, !row.q.edns);
    // The question comes back byte for byte; the ID too.
    assert.equal(result.response.readUInt16BE(0), 0x1234);
    const questionEnd = 12 + wireName(row.q.name).length + 4;
    assert.equal(result.response.readUInt16BE(4), 1);
    assert.deepEqual(result.response.subarray(12, questionEnd), q.subarray(12, questionEnd));
  });
}

test("the log line: transport, client, name as asked, type, rcode, answer count", () => {
  const a = ask(query({ name: `192-168-1-42.AbCdEfGhIjKlMnOp.boxcert.test` }));
  assert.equal(a.log, "udp 127.0.0.1#5353 192-168-1-42.AbCdEfGhIjKlMnOp.boxcert.test A NOERROR answers=1");
  assert.equal(a.qtype, "A");
  const t = ask(query({ name: `_acme-challenge.${L1}.boxcert.test`, type: "TXT" }), tcp);
  assert.equal(t.log, `tcp [::1]#5354 _acme-challenge.${L1}.boxcert.test TXT NOERROR answers=2`);
  const odd = ask(query({ name: ["a.b", "x\ny", "\xff", "boxcert", "test"], type: 65280 }));
  assert.equal(odd.log, "udp 127.0.0.1#5353 a\\046b.x\\010y.\\255.boxcert.test TYPE65280 NXDOMAIN answers=0");
  assert.equal(odd.qtype, "TYPE65280");
});

test("a label holding a dot is not two labels", () => {
  // One label "192-168-1-42.abcdefghijklmnop" under the zone: must not be read as the box name.
  const a = ask(query({ name: [`192-168-1-42.${L1}`, "boxcert", "test"] }));
  assert.equal(a.rcode, "NXDOMAIN");
  const b = ask(query({ name: ["192-168-1-42", `${L1}.boxcert`, "test"] }));
  assert.equal(b.rcode, "REFUSED");
});

test("SOA serial follows the zone version, as an unsigned 32-bit number", () => {
  const serialAt = (version: number) => {
    const a = ask(query({ name: "boxcert.test", type: "SOA" }), udp, { ...zone, version });
    return (packet.decode(a.response!).answers![0] as packet.SoaAnswer).data.serial;
  };
  assert.equal(serialAt(5), 5);
  assert.equal(serialAt(6), 6);
  assert.equal(serialAt(2 ** 32 + 3), 3);
  const negative = ask(query({ name: `8-8-8-8.${L1}.boxcert.test` }), udp, { ...zone, version: 77 });
  assert.equal((packet.decode(negative.response!).authorities![0] as packet.SoaAnswer).data.serial, 77);
});

test("negative TTL is min(SOA MINIMUM, SOA TTL) (RFC 2308)", () => {
  const long = { ...config, ttl: { ...config.ttl, negative: 7200, apex: 3600 } };
  const a = ask(query({ name: `8-8-8-8.${L1}.boxcert.test` }), udp, zone, long);
  const soa = packet.decode(a.response!).authorities![0] as packet.SoaAnswer;
  assert.equal(soa.ttl, 3600);
  assert.equal(soa.data.minimum, 7200);
});

test("a challenge on a label no longer active is still served, and its label exists", () => {
  const snapshot: ZoneSnapshot = { ...zone, challenges: new Map([[FREED, ["pending"]]]) };
  const txt = ask(query({ name: `_acme-challenge.${FREED}.boxcert.test`, type: "TXT" }), udp, snapshot);
  assert.deepEqual(view(txt.response!).answers, [`_acme-challenge.${FREED}.boxcert.test 30 TXT "pending"`]);
  const node = ask(query({ name: `${FREED}.boxcert.test` }), udp, snapshot);
  assert.equal(node.rcode, "NOERROR");
  const address = ask(query({ name: `10-1-1-1.${FREED}.boxcert.test` }), udp, snapshot);
  assert.equal(address.rcode, "NXDOMAIN");
});

test("a long TXT value is split into 255-byte strings", () => {
  const long = "x".repeat(300);
  const snapshot: ZoneSnapshot = { ...zone, challenges: new Map([[L1, [long]]]) };
  const a = ask(query({ name: `_acme-challenge.${L1}.boxcert.test`, type: "TXT" }), tcp, snapshot);
  const record = packet.decode(a.response!).answers![0] as packet.TxtAnswer;
  assert.deepEqual((record.data as Buffer[]).map((b) => b.length), [255, 45]);
});

// --- Truncation.

test("truncation: 12 TXT values do not fit 512 bytes: TC, header and question only", () => {
  const name = `_acme-challenge.${MANY}.boxcert.test`;
  for (const edns of [false, { udp: 512 }, { udp: 100 }] as const) {
    const q = query({ name, type: "TXT", edns });
    const a = ask(q);
    const v = view(a.response!);
    assert.equal(v.flags, "qr aa tc rd", a.log);
    assert.equal(v.rcode, "NOERROR");
    assert.deepEqual([v.answers, v.authority, v.additional], [[], [], []]);
    assert.equal(v.opt !== null, edns !== false);
    assert.equal(a.response!.length, 12 + wireName(name).length + 4 + (edns ? 11 : 0));
    assert.match(a.log, /answers=0 TC$/);
  }
});

test("truncation: the same over EDNS 1232 and over TCP fits", () => {
  const name = `_acme-challenge.${MANY}.boxcert.test`;
  for (const [source, edns] of [
    [udp, { udp: 4096 }],
    [tcp, false],
    [tcp, { udp: 512 }],
  ] as const) {
    const a = ask(query({ name, type: "TXT", edns }), source);
    const v = view(a.response!);
    assert.equal(v.flags, "qr aa rd");
    assert.deepEqual(
      v.answers,
      manyValues.map((value) => `${name} 30 TXT "${value}"`),
    );
  }
});

test("truncation: UDP never exceeds 1232 bytes whatever the client advertises", () => {
  const values = Array.from({ length: 30 }, (_, i) => `${"w".repeat(40)}${i}`);
  const snapshot: ZoneSnapshot = { ...zone, challenges: new Map([[L1, values]]) };
  const name = `_acme-challenge.${L1}.boxcert.test`;
  const a = ask(query({ name, type: "TXT", edns: { udp: 65535 } }), udp, snapshot);
  assert.equal(view(a.response!).flags, "qr aa tc rd");
  const full = ask(query({ name, type: "TXT", edns: { udp: 65535 } }), tcp, snapshot);
  assert.equal(view(full.response!).answers.length, 30);
  assert.ok(full.response!.length > 1232);
});

// --- Malformed packets: FORMERR when the header can be read, drop when not, drop responses.

function header(fields: { id?: number; flags?: number; qd?: number; an?: number; ns?: number; ar?: number }): Buffer {
  const h = Buffer.alloc(12);
  h.writeUInt16BE(fields.id ?? 0xbeef, 0);
  h.writeUInt16BE(fields.flags ?? 0x0100, 2);
  h.writeUInt16BE(fields.qd ?? 1, 4);
  h.writeUInt16BE(fields.an ?? 0, 6);
  h.writeUInt16BE(fields.ns ?? 0, 8);
  h.writeUInt16BE(fields.ar ?? 0, 10);
  return h;
}
const QUESTION = Buffer.concat([wireName(`192-168-1-42.${L1}.boxcert.test`), Buffer.from([0, 1, 0, 1])]);

const malformed: Array<[string, Buffer, "FORMERR" | "DROP", boolean]> = [
  ["empty", Buffer.alloc(0), "DROP", false],
  ["11 bytes", header({}).subarray(0, 11), "DROP", false],
  ["a response (QR=1)", Buffer.concat([header({ flags: 0x8100 }), QUESTION]), "DROP", false],
  ["a response with no question", header({ flags: 0x8000, qd: 0 }), "DROP", false],
  ["header only, QDCOUNT=0", header({ qd: 0 }), "FORMERR", false],
  ["QDCOUNT=1 but no question", header({}), "FORMERR", false],
  ["QDCOUNT=2", Buffer.concat([header({ qd: 2 }), QUESTION, QUESTION]), "FORMERR", false],
  ["QDCOUNT=65535", Buffer.concat([header({ qd: 65535 }), QUESTION]), "FORMERR", false],
  ["question cut in its name", Buffer.concat([header({}), QUESTION.subarray(0, 10)]), "FORMERR", false],
  ["question cut in its type", Buffer.concat([header({}), QUESTION.subarray(0, QUESTION.length - 3)]), "FORMERR", false],
  ["a compression pointer in the question", Buffer.concat([header({}), Buffer.from([0xc0, 0x0c, 0, 1, 0, 1])]), "FORMERR", false],
  ["a label type 0x40", Buffer.concat([header({}), Buffer.from([0x41, 0, 0, 1, 0, 1])]), "FORMERR", false],
  ["a name of 256 octets", Buffer.concat([header({}), wireName(Array.from({ length: 4 }, () => "a".repeat(63))), Buffer.from([0, 1, 0, 1])]), "FORMERR", false],
  ["ARCOUNT=1 with nothing after the question", Buffer.concat([header({ ar: 1 }), QUESTION]), "FORMERR", true],
  ["ANCOUNT=65535 with nothing", Buffer.concat([header({ an: 65535 }), QUESTION]), "FORMERR", true],
  ["two OPTs", Buffer.concat([header({ ar: 2 }), QUESTION, optRecord(), optRecord()]), "FORMERR", true],
  ["OPT in the answer section", Buffer.concat([header({ an: 1 }), QUESTION, optRecord()]), "FORMERR", true],
  ["OPT in the authority section", Buffer.concat([header({ ns: 1 }), QUESTION, optRecord()]), "FORMERR", true],
  ["OPT RDLENGTH past the end", Buffer.concat([header({ ar: 1 }), QUESTION, optRecord().subarray(0, 9), Buffer.from([0, 10])]), "FORMERR", true],
  ["EDNS option overrunning the OPT", Buffer.concat([header({ ar: 1 }), QUESTION, optRecord({ options: [{ code: 3, data: Buffer.alloc(4) }] }).subarray(0, -1)]), "FORMERR", true],
];

for (const [title, bytes, expected, questionEchoed] of malformed) {
  test(`malformed: ${title} -> ${expected}`, () => {
    const a = ask(bytes);
    assert.equal(a.rcode, expected, a.log);
    if (expected === "DROP") {
      assert.equal(a.response, null);
      assert.equal(a.qtype, "-");
      return;
    }
    const response = a.response!;
    assert.equal(response.readUInt16BE(0), 0xbeef);
    assert.equal(response[2]! & 0x80, 0x80);
    assert.equal(response[3]! & 0xf, 1);
    assert.equal(response[2]! & 0x04, 0, "no AA on FORMERR");
    const decoded = packet.decode(response);
    assert.equal(decoded.questions!.length, questionEchoed ? 1 : 0);
    if (questionEchoed) assert.deepEqual(response.subarray(12, 12 + QUESTION.length), QUESTION);
    assert.match(a.log, /FORMERR answers=0 \(.+\)$/);
  });
}

test("malformed: trailing bytes after a complete query are ignored", () => {
  const q = Buffer.concat([query({ name: `192-168-1-42.${L1}.boxcert.test` }), Buffer.from("junk")]);
  assert.equal(ask(q).rcode, "NOERROR");
});

test("a name of exactly 255 octets is read", () => {
  const labels = [...Array.from({ length: 3 }, () => "a".repeat(63)), "a".repeat(48), "boxcert", "test"];
  assert.equal(wireName(labels).length, 255);
  assert.equal(ask(query({ name: labels })).rcode, "NXDOMAIN");
});

test("metrics: per rcode, per type, dropped, in Prometheus text", () => {
  const metrics = new DnsMetrics();
  metrics.recordAnswer(ask(query({ name: `192-168-1-42.${L1}.boxcert.test` })));
  metrics.recordAnswer(ask(query({ name: `192-168-1-43.${L1}.boxcert.test` })));
  metrics.recordAnswer(ask(query({ name: `8-8-8-8.${L1}.boxcert.test`, type: "TXT" })));
  metrics.recordAnswer(ask(query({ name: "example.com", type: 65280 })));
  metrics.recordAnswer(ask(query({ name: `_acme-challenge.${MANY}.boxcert.test`, type: "TXT" })));
  metrics.recordAnswer(ask(Buffer.alloc(3)));
  const text = metrics.prometheusText();
  for (const line of [
    "# TYPE boxcert_dns_responses_total counter",
    'boxcert_dns_responses_total{rcode="NOERROR"} 3',
    'boxcert_dns_responses_total{rcode="NXDOMAIN"} 1',
    'boxcert_dns_responses_total{rcode="REFUSED"} 1',
    'boxcert_dns_responses_total{rcode="FORMERR"} 0',
    "# TYPE boxcert_dns_queries_total counter",
    'boxcert_dns_queries_total{qtype="A"} 2',
    'boxcert_dns_queries_total{qtype="TXT"} 2',
    'boxcert_dns_queries_total{qtype="OTHER"} 1',
    'boxcert_dns_queries_total{qtype="NONE"} 1',
    "boxcert_dns_dropped_total 1",
    "boxcert_dns_truncated_total 1",
  ]) {
    assert.ok(text.split("\n").includes(line), `${line}\n---\n${text}`);
  }
  assert.ok(text.endsWith("\n"));
  for (const line of text.trimEnd().split("\n")) assert.match(line, /^(# (HELP|TYPE) \w+ .+|\w+(\{\w+="[^"]*"\})? \d+)$/);
});

test("name servers deeper in the zone, outside it, and at the apex", () => {
  const cfg: DnsConfig = {
    ...config,
    nameServers: [
      { name: "ns1.dns.boxcert.test", addresses: ["10.0.0.53", "fd00::53"] },
      { name: "ns2.example.net", addresses: ["192.0.2.53"] },
      { name: "boxcert.test", addresses: ["10.0.0.1"] },
    ],
  };
  const at = (name: string, type: string) => {
    return view(ask(query({ name, type }), udp, zone, cfg).response!);
  };
  assert.deepEqual(at("ns1.dns.boxcert.test", "A").answers, ["ns1.dns.boxcert.test 3600 A 10.0.0.53"]);
  assert.deepEqual(at("ns1.dns.boxcert.test", "AAAA").answers, ["ns1.dns.boxcert.test 3600 AAAA fd00::53"]);
  const ent = at("dns.boxcert.test", "A");
  assert.equal(ent.rcode, "NOERROR", "an empty non-terminal exists");
  assert.equal(ent.authority.length, 1);
  assert.equal(at("ns2.dns.boxcert.test", "A").rcode, "NXDOMAIN");
  assert.deepEqual(at("boxcert.test", "A").answers, ["boxcert.test 3600 A 10.0.0.1"]);
  const ns = at("boxcert.test", "NS");
  assert.deepEqual(ns.answers, ["boxcert.test 3600 NS ns1.dns.boxcert.test", "boxcert.test 3600 NS ns2.example.net", "boxcert.test 3600 NS boxcert.test"]);
  assert.deepEqual(ns.additional, ["ns1.dns.boxcert.test 3600 A 10.0.0.53", "ns1.dns.boxcert.test 3600 AAAA fd00::53", "boxcert.test 3600 A 10.0.0.1"]);
  const soa = at("boxcert.test", "SOA");
  assert.match(soa.answers[0]!, /SOA ns1\.dns\.boxcert\.test hostmaster\.boxcert\.test /);
  // Box names are still answered with name servers two labels down.
  assert.deepEqual(at(`192-168-1-42.${L1}.boxcert.test`, "A").answers, [`192-168-1-42.${L1}.boxcert.test 300 A 192.168.1.42`]);
});

test("an answer larger than a TCP message is SERVFAIL, not a broken packet", () => {
  const values = Array.from({ length: 300 }, (_, i) => `${i}`.padEnd(255, "z"));
  const snapshot: ZoneSnapshot = { ...zone, challenges: new Map([[L1, values]]) };
  const a = ask(query({ name: `_acme-challenge.${L1}.boxcert.test`, type: "TXT" }), tcp, snapshot);
  assert.equal(a.rcode, "SERVFAIL");
  const v = view(a.response!);
  assert.equal(v.rcode, "SERVFAIL");
  assert.deepEqual(v.answers, []);
  assert.equal(v.question, `_acme-challenge.${L1}.boxcert.test TXT IN`);
});
