/**
 * Micro benchmark of the DNS answer function (packages/dns/src/answer.ts), in process, no sockets: microseconds
 * per call over a realistic mix (80% A hits, 10% TXT at `_acme-challenge`, 10% NXDOMAIN; half with an EDNS
 * OPT; mixed 0x20 case), next to a minimal function that only parses the question and echoes a fixed answer
 * (what a bare Node dgram responder does), all in the same run. Medians of several runs.
 *
 * The socket is not here: on this kind of machine (2 vCPUs), a bare Node responder measured at ~16 us a query, nearly all of it
 * the socket. `projected_ratio` estimates what dnsperf would see against it: 16 / (16 - minimal + answer).
 *
 *   node --import tsx bench/dns-micro.ts [callsPerRun=200000] [runs=7]
 */
import { randomBytes } from "node:crypto";
import packet from "dns-packet";
import { answer, answerWithoutFastPath } from "../packages/dns/src/answer.ts";
import { DnsMetrics } from "../packages/dns/src/metrics.ts";
import { DEFAULT_ALLOW, DEFAULT_TTL, type DnsConfig, type QuerySource, type ZoneSnapshot } from "../packages/dns/src/zone.ts";
import { newLabel } from "../packages/shared/src/names.ts";
import { median, resultLine } from "./stats.ts";

const callsPerRun = Number(process.argv[2] ?? 200_000);
const runs = Number(process.argv[3] ?? 7);
/** Bare Node dgram responder, CPU per query (about 16 us measured here). */
const BARE_RESPONDER_US = 16;

const config: DnsConfig = {
  zone: "iot.example.net",
  nameServers: [{ name: "ns1.iot.example.net", addresses: ["192.0.2.53"] }],
  caa: ["letsencrypt.org"],
  allow: [...DEFAULT_ALLOW],
  ttl: { ...DEFAULT_TTL },
  hostmaster: "hostmaster.iot.example.net",
};
const labels = Array.from({ length: 5000 }, newLabel);
const freed = Array.from({ length: 500 }, newLabel);
const challengeValue = () => randomBytes(32).toString("base64url");
const challenges = new Map<string, readonly string[]>();
for (const label of labels.slice(0, 50)) challenges.set(label, [challengeValue(), challengeValue()]);
for (const label of labels.slice(50, 100)) challenges.set(label, [challengeValue()]);
const zone: ZoneSnapshot = { version: 1234, activeLabels: new Set(labels), challenges };
const source: QuerySource = { address: "192.0.2.1", port: 53000, transport: "udp" };

/** mulberry32: a seeded generator, so every run measures the same queries. */
let seed = 1;
function random(n: number): number {
  seed = (seed + 0x6d2b79f5) | 0;
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return Math.floor((((t ^ (t >>> 14)) >>> 0) / 4294967296) * n);
}
function pick<T>(items: readonly T[]): T {
  return items[random(items.length)]!;
}
/** 0x20: random case, as resolvers that use it send. */
function mixCase(name: string): string {
  return [...name].map((c) => (random(2) ? c.toUpperCase() : c)).join("");
}
function query(name: string, type: "A" | "AAAA" | "TXT", edns: boolean): Buffer {
  return packet.encode({
    type: "query",
    id: random(65536),
    flags: packet.RECURSION_DESIRED,
    questions: [{ name: mixCase(name), type, class: "IN" }],
    additionals: edns ? [{ type: "OPT", name: ".", udpPayloadSize: 1232, extendedRcode: 0, ednsVersion: 0, flags: 0, flag_do: false, options: [] }] : [],
  });
}
function privateIPv4(): string {
  return pick([`192-168-${random(256)}-${random(256)}`, `10-${random(256)}-${random(256)}-${random(256)}`, `172-${16 + random(16)}-${random(256)}-${random(256)}`]);
}

const queries: Buffer[] = [];
for (let i = 0; i < 10_000; i++) {
  const edns = random(2) === 0;
  const roll = random(100);
  if (roll < 80) {
    queries.push(random(20) === 0 ? query(`fd00--${random(65536).toString(16)}.${pick(labels)}.${config.zone}`, "AAAA", edns) : query(`${privateIPv4()}.${pick(labels)}.${config.zone}`, "A", edns));
  } else if (roll < 90) {
    queries.push(query(`_acme-challenge.${labels[random(120)]}.${config.zone}`, "TXT", edns));
  } else {
    const name = pick([`${privateIPv4()}.${pick(freed)}.${config.zone}`, `8-8-8-8.${pick(labels)}.${config.zone}`, `wpad.${pick(labels)}.${config.zone}`, `www.${pick(freed)}.${config.zone}`]);
    queries.push(query(name, "A", edns));
  }
}

/** The reference: read the question (name, type, class) and echo it with one fixed A record. */
const FIXED_ANSWER = Buffer.from([0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 1, 0x2c, 0, 4, 192, 168, 1, 42]);
function minimal(q: Buffer): Buffer | null {
  if (q.length < 12) return null;
  let offset = 12;
  while (offset < q.length && q[offset] !== 0) offset += 1 + q[offset]!;
  const end = offset + 5;
  if (end > q.length) return null;
  const out = Buffer.allocUnsafe(end + FIXED_ANSWER.length);
  q.copy(out, 0, 0, end);
  out[2] = 0x84 | (q[2]! & 1);
  out[3] = 0;
  out.writeUInt16BE(1, 6);
  out.writeUInt32BE(0, 8);
  FIXED_ANSWER.copy(out, end);
  return out;
}

/** The reference: dns-packet decodes the query and encodes an answer. */
function dnsPacketRoundTrip(q: Buffer): Buffer {
  const decoded = packet.decode(q);
  const question = decoded.questions![0]!;
  return packet.encode({
    type: "response",
    id: decoded.id,
    flags: packet.AUTHORITATIVE_ANSWER,
    questions: [question],
    answers: [{ name: question.name, type: "A", ttl: 300, data: "192.168.1.42" }],
  });
}

const metrics = new DnsMetrics();
const functions: Array<[string, string, (q: Buffer) => number]> = [
  ["minimal", "minimal question parser + fixed answer", (q) => minimal(q)?.length ?? 0],
  ["answer", "answer() (fast path, general as fallback)", (q) => answer(q, source, zone, config).response?.length ?? 0],
  ["answer_metrics", "answer() + metrics.recordAnswer()", (q) => {
    const a = answer(q, source, zone, config);
    metrics.recordAnswer(a);
    return a.response?.length ?? 0;
  }],
  ["general", "answerWithoutFastPath() (general path)", (q) => answerWithoutFastPath(q, source, zone, config).response?.length ?? 0],
  ["dnspacket", "dns-packet decode + encode (reference)", (q) => dnsPacketRoundTrip(q).length],
];

// The two paths must agree before their speed means anything.
for (const q of queries) {
  const fast = answer(q, source, zone, config);
  const general = answerWithoutFastPath(q, source, zone, config);
  if (!fast.response || !general.response || !fast.response.equals(general.response) || fast.log !== general.log) {
    throw new Error(`paths disagree on ${packet.decode(q).questions![0]!.name}: ${fast.log} / ${general.log}`);
  }
}
const mix = new Map<string, number>();
for (const q of queries) {
  const a = answer(q, source, zone, config);
  const key = `${a.qtype} ${a.rcode}${a.log.includes("answers=0") ? " (no records)" : ""}`;
  mix.set(key, (mix.get(key) ?? 0) + 1);
}

let sink = 0;
function measure(fn: (q: Buffer) => number): number {
  const start = process.hrtime.bigint();
  for (let i = 0; i < callsPerRun; i++) sink += fn(queries[i % queries.length]!);
  return Number(process.hrtime.bigint() - start) / callsPerRun / 1000;
}

console.log(`node ${process.version}; ${queries.length} queries: ${[...mix].map(([k, n]) => `${k} ${((100 * n) / queries.length).toFixed(0)}%`).join(", ")}`);
console.log(`${callsPerRun} calls x ${runs} runs (interleaved), median us per call`);
for (const [, , fn] of functions) measure(fn); // warm-up
const perRun = new Map<string, number[]>(functions.map(([key]) => [key, []]));
for (let run = 0; run < runs; run++) {
  for (const [key, , fn] of functions) perRun.get(key)!.push(measure(fn));
}
const medians = new Map([...perRun].map(([key, values]) => [key, median(values)]));
for (const [key, label] of functions) {
  const values = perRun.get(key)!;
  console.log(`${label.padEnd(46)} ${medians.get(key)!.toFixed(3).padStart(7)} us  (runs: ${values.map((v) => v.toFixed(3)).join(" ")})`);
}
const us = (key: string) => medians.get(key)!;
const projected = (key: string) => BARE_RESPONDER_US / (BARE_RESPONDER_US - us("minimal") + us(key));
console.log(`projected ratio vs a bare responder (${BARE_RESPONDER_US} us/query): answer()+metrics ${projected("answer_metrics").toFixed(3)}, general path ${projected("general").toFixed(3)}`);
if (sink === 0) console.log("(sink)");
console.log(
  resultLine("dns-micro", {
    us_minimal: us("minimal").toFixed(3),
    us_answer: us("answer").toFixed(3),
    us_answer_metrics: us("answer_metrics").toFixed(3),
    us_general: us("general").toFixed(3),
    us_dnspacket: us("dnspacket").toFixed(3),
    ratio_answer_to_minimal: us("minimal") / us("answer"),
    ratio_projected: projected("answer_metrics"),
    ratio_projected_general: projected("general"),
  }),
);
