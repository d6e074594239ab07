/**
 * The pure core of `boxcert dns`, on the sslip.io model (the name carries the address): one query's bytes and where they came from in,
 * the response bytes (or null: drop) and one log line out. No I/O, no clock, no state but caches derived
 * from the configuration object, which is immutable once built (options.ts).
 *
 * What it answers (docs/dns.md), authoritatively (AA, never RA):
 * - `a-b-c-d.<label>.<zone>` A and `fd00--1.<label>.<zone>` AAAA for active labels and allowed addresses;
 * - `_acme-challenge.<label>.<zone>` TXT, every challenge value of the label;
 * - at the apex: SOA, NS (+ in-zone glue in the additional section), CAA, and A/AAAA of in-zone name servers;
 * - NXDOMAIN / NODATA with the SOA in the authority section (TTL per RFC 2308), REFUSED outside the zone.
 *
 * Choices, so they are written down once:
 * - UDP payload: the client's EDNS size clamped to [512, 1232]; 1232 is the DNS Flag Day 2020 size that
 *   avoids IP fragmentation on every common path, and our largest real answers (apex NS + glue, a few TXT
 *   values) are far below it. Our OPT advertises 1232. Over TCP, up to 65535.
 * - ANY (RFC 8482 4.1): one RRset of the name (the SOA at the apex, the address at an address name, the TXT
 *   values at a challenge name, a name server's A, else its AAAA); NODATA at names without data.
 * - AXFR and IXFR: REFUSED. Every server reads the store itself; there is no secondary to transfer to.
 * - NOTIFY (RFC 1996, opcode 4): the issuer's way of saying the store changed. Only from `allowNotify`
 *   ranges (REFUSED otherwise), only for the zone's SOA (NOTAUTH for another name, as Knot answers; FORMERR
 *   for another type, as BIND does); the response echoes the question with QR and AA. The answer says what it
 *   decided (`notify`) and the caller reloads the zone: this function stays pure.
 * - SOA serial: `zone.version` modulo 2^32 (soaSerial). The zone loader's version must increase across
 *   restarts (a store change counter or the Unix time of the last change) for the serial to.
 * - The question is copied byte for byte from the query, and records at the query name point to it (name
 *   compression, RFC 1035 4.1.4), so 0x20 mixed case comes back exactly as asked; the SOA of negative answers
 *   points to the zone part of the question. RDATA names (SOA, NS) are written whole, as dns-packet does.
 * - The query is read by hand, strictly (every RDLENGTH honoured, OPT placement checked): dns-packet's
 *   decoder reads labels as UTF-8 (so a label holding `.` or a byte above 0x7f could not be echoed or
 *   matched safely), does not check RDLENGTH, and interprets options that RFC 6891 says to ignore.
 *   dns-packet encodes the RDATA of the general path; fast-path.ts writes the hot answers directly.
 * - Trailing bytes after the last record are ignored (the message itself is complete).
 */
import dnsPacket from "dns-packet";
import type { CaaData, SoaData, TxtData } from "dns-packet";
import { decodeAddress } from "@boxcert/shared";
import { allowRanges, type AllowRanges } from "./ranges.ts";
import { fastAnswer, prepareFastPath, type FastPathConfig } from "./fast-path.ts";
import { DEFAULT_ALLOW_NOTIFY, type Answer, type DnsConfig, type QuerySource, type ZoneSnapshot } from "./zone.ts";

export const TYPE = { A: 1, NS: 2, SOA: 6, TXT: 16, AAAA: 28, OPT: 41, IXFR: 251, AXFR: 252, ANY: 255, CAA: 257 } as const;
const CLASS_IN = 1;
const CLASS_ANY = 255;

export const RCODE = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5, NOTAUTH: 9, BADVERS: 16 } as const;
const OPCODE_QUERY = 0;
const OPCODE_NOTIFY = 4;
const RCODE_NAMES = new Map<number, string>(Object.entries(RCODE).map(([name, code]) => [code, name]));

/** Largest UDP response, whatever the client advertises (see the header comment). */
export const UDP_PAYLOAD_MAX = 1232;
/** RFC 1035 4.2.1 (no EDNS) and RFC 6891 6.2.5 (advertised sizes below 512 mean 512). */
export const UDP_PAYLOAD_MIN = 512;
const TCP_MESSAGE_MAX = 65535;

/** SOA timers. No secondary transfers this zone, so they only inform tools; values as RFC 1912 suggests. */
export const SOA_REFRESH = 3600;
export const SOA_RETRY = 600;
export const SOA_EXPIRE = 1_209_600;

const ACME_CHALLENGE = "_acme-challenge";

/** Type names for logs and metrics; others are written `TYPE<n>` (RFC 3597). */
const TYPE_NAMES = new Map<number, string>([
  [1, "A"], [2, "NS"], [5, "CNAME"], [6, "SOA"], [12, "PTR"], [13, "HINFO"], [15, "MX"], [16, "TXT"],
  [28, "AAAA"], [33, "SRV"], [35, "NAPTR"], [41, "OPT"], [43, "DS"], [46, "RRSIG"], [47, "NSEC"],
  [48, "DNSKEY"], [50, "NSEC3"], [52, "TLSA"], [64, "SVCB"], [65, "HTTPS"], [99, "SPF"], [251, "IXFR"],
  [252, "AXFR"], [255, "ANY"], [256, "URI"], [257, "CAA"],
]);

export function typeName(type: number): string {
  return TYPE_NAMES.get(type) ?? `TYPE${type}`;
}

export function rcodeName(rcode: number): string {
  return RCODE_NAMES.get(rcode) ?? `RCODE${rcode}`;
}

/** The SOA serial for a zone version: the version as an unsigned 32-bit number (RFC 1982 arithmetic wraps). */
export function soaSerial(version: number): number {
  return version >>> 0;
}

// --- What is derived once from a configuration.

interface HostAddresses {
  a: string[];
  aaaa: string[];
}

/** A configuration, with everything a query needs precomputed. */
export interface PreparedConfig {
  config: DnsConfig;
  zoneLabels: readonly string[];
  allow: AllowRanges;
  /** Sources a NOTIFY is accepted from. */
  allowNotify: AllowRanges;
  soa: Omit<SoaData, "serial">;
  /** RFC 2308 section 5: min(SOA MINIMUM, SOA TTL). */
  negativeTtl: number;
  /** In-zone name server names, relative to the zone and dot-joined ("" = the apex), with their addresses. */
  hosts: ReadonlyMap<string, HostAddresses>;
  /** Names that exist only because a name server lives below them (empty non-terminals). */
  nonTerminals: ReadonlySet<string>;
  /** The A/AAAA records of in-zone name servers, for the additional section of NS answers. */
  glue: ResourceRecord[];
  fast: FastPathConfig;
}

const preparedConfigs = new WeakMap<DnsConfig, PreparedConfig>();

export function prepare(config: DnsConfig): PreparedConfig {
  const cached = preparedConfigs.get(config);
  if (cached !== undefined) return cached;
  const zoneLabels = config.zone.toLowerCase().split(".");
  const allow = allowRanges(config.allow);
  const soa = {
    mname: config.nameServers[0]?.name ?? config.zone,
    rname: config.hostmaster,
    refresh: SOA_REFRESH,
    retry: SOA_RETRY,
    expire: SOA_EXPIRE,
    minimum: config.ttl.negative,
  };
  const negativeTtl = Math.min(config.ttl.negative, config.ttl.apex);
  const hosts = new Map<string, HostAddresses>();
  const nonTerminals = new Set<string>();
  let hostDepth = -1;
  const suffix = `.${config.zone.toLowerCase()}`;
  const glue: ResourceRecord[] = [];
  for (const server of config.nameServers) {
    const name = server.name.toLowerCase();
    const relative = name === config.zone.toLowerCase() ? "" : name.endsWith(suffix) ? name.slice(0, -suffix.length) : null;
    if (relative === null) continue;
    const host = hosts.get(relative) ?? { a: [], aaaa: [] };
    const owner = relative === "" ? [] : relative.split(".");
    for (const address of server.addresses) {
      const v6 = address.includes(":");
      (v6 ? host.aaaa : host.a).push(address);
      const rdata = v6 ? encodeRdata(codecs.aaaa, address) : encodeRdata(codecs.a, address);
      glue.push({ owner, type: v6 ? TYPE.AAAA : TYPE.A, ttl: config.ttl.apex, rdata });
    }
    hosts.set(relative, host);
    hostDepth = Math.max(hostDepth, owner.length);
    for (let i = 1; i < owner.length; i++) nonTerminals.add(owner.slice(i).join("."));
  }
  const prepared: PreparedConfig = {
    config,
    zoneLabels,
    allow,
    allowNotify: allowRanges(config.allowNotify ?? DEFAULT_ALLOW_NOTIFY),
    soa,
    negativeTtl,
    hosts,
    nonTerminals,
    glue,
    fast: prepareFastPath({ zone: config.zone, soa, ttl: config.ttl, negativeTtl, allow, hostDepth }),
  };
  preparedConfigs.set(config, prepared);
  return prepared;
}

// --- The entry point.

/**
 * Answers one DNS message (without the TCP length prefix). Never throws: a failure of its own becomes
 * SERVFAIL (or a drop when even the header is unreadable), logged with the error.
 */
export function answer(query: Buffer, source: QuerySource, zone: ZoneSnapshot, config: DnsConfig): Answer {
  try {
    const prepared = prepare(config);
    const fast = fastAnswer(query, source.transport === "tcp", zone, prepared.fast, soaSerial(zone.version));
    if (fast !== undefined) return finish(query, source, fast.response, fast.rcode, fast.qtype, true, null);
    return generalAnswer(query, source, zone, prepared);
  } catch (error) {
    return failure(query, source, error);
  }
}

/** The same answer without the fast path: what the fast path is tested against, and measured against. */
export function answerWithoutFastPath(query: Buffer, source: QuerySource, zone: ZoneSnapshot, config: DnsConfig): Answer {
  try {
    return generalAnswer(query, source, zone, prepare(config));
  } catch (error) {
    return failure(query, source, error);
  }
}

// --- Reading the query.

interface Question {
  /** Offset just past QTYPE and QCLASS (the question starts at 12). */
  end: number;
  /** Labels as asked (latin1, one char per byte) and lowercased (ASCII). */
  labels: string[];
  /** Offset of each label's length byte. */
  labelOffsets: number[];
  type: number;
  klass: number;
}

interface Edns {
  payload: number;
  version: number;
  dnssecOk: boolean;
}

interface ParsedQuery {
  id: number;
  flags: number;
  opcode: number;
  qdcount: number;
  /** The first question, when it could be read. */
  question: Question | null;
  edns: Edns | null;
  /** Why the message is malformed (FORMERR), or null. */
  problem: string | null;
}

const MAX_NAME_WIRE = 255;

/**
 * Reads the question's name at 12: labels only (a compression pointer there could only point into the header).
 * Returns the offset after the root label, or a string saying what is wrong.
 */
function readQuestionName(query: Buffer, labels: string[], labelOffsets: number[]): number | string {
  let offset = 12;
  for (;;) {
    if (offset >= query.length) return "question truncated";
    if (offset - 12 >= MAX_NAME_WIRE) return "question name longer than 255 octets";
    const length = query[offset]!;
    if (length === 0) return offset + 1;
    if (length > 63) return (length & 0xc0) === 0xc0 ? "compression pointer in the question" : "bad label type in the question";
    if (offset + 1 + length > query.length) return "question truncated";
    labelOffsets.push(offset);
    labels.push(query.toString("latin1", offset + 1, offset + 1 + length).toLowerCase());
    offset += 1 + length;
  }
}

/** Skips a name anywhere after the question (pointers allowed, not followed). Returns its end, or -1. */
function skipName(query: Buffer, offset: number): number {
  const start = offset;
  for (;;) {
    if (offset >= query.length || offset - start >= MAX_NAME_WIRE) return -1;
    const length = query[offset]!;
    if (length === 0) return offset + 1;
    if ((length & 0xc0) === 0xc0) return offset + 2 <= query.length ? offset + 2 : -1;
    if (length > 63) return -1;
    offset += 1 + length;
  }
}

/** Reads everything but the header's first four bytes' meaning; bounded by the message length, never throws. */
function parseQuery(query: Buffer): ParsedQuery {
  const flags = query.readUInt16BE(2);
  const parsed: ParsedQuery = {
    id: query.readUInt16BE(0),
    flags,
    opcode: (flags >> 11) & 0xf,
    qdcount: query.readUInt16BE(4),
    question: null,
    edns: null,
    problem: null,
  };
  const counts = [parsed.qdcount, query.readUInt16BE(6), query.readUInt16BE(8), query.readUInt16BE(10)] as const;
  let offset = 12;
  // Questions: the first one is read, the others (a FORMERR anyway) only skipped.
  for (let i = 0; i < counts[0]; i++) {
    let end: number;
    if (i === 0) {
      const labels: string[] = [];
      const labelOffsets: number[] = [];
      const read = readQuestionName(query, labels, labelOffsets);
      if (typeof read === "string") {
        parsed.problem = read;
        return parsed;
      }
      end = read + 4;
      if (end > query.length) {
        parsed.problem = "question truncated";
        return parsed;
      }
      parsed.question = { end, labels, labelOffsets, type: query.readUInt16BE(read), klass: query.readUInt16BE(read + 2) };
    } else {
      const nameEnd = skipName(query, offset);
      end = nameEnd + 4;
      if (nameEnd === -1 || end > query.length) {
        parsed.problem = "question truncated";
        return parsed;
      }
    }
    offset = end;
  }
  // Answer, authority and additional records: skipped by RDLENGTH; the OPT is read and checked.
  for (let section = 1; section <= 3; section++) {
    for (let i = 0; i < counts[section]!; i++) {
      const ownerEnd = skipName(query, offset);
      if (ownerEnd === -1 || ownerEnd + 10 > query.length) {
        parsed.problem = "record truncated";
        return parsed;
      }
      const type = query.readUInt16BE(ownerEnd);
      const rdlength = query.readUInt16BE(ownerEnd + 8);
      const end = ownerEnd + 10 + rdlength;
      if (end > query.length) {
        parsed.problem = "record truncated";
        return parsed;
      }
      if (type === TYPE.OPT) {
        const problem = readOpt(query, parsed, section, offset, ownerEnd, end);
        if (problem !== null) {
          parsed.problem = problem;
          return parsed;
        }
      }
      offset = end;
    }
  }
  return parsed;
}

/** RFC 6891 6.1.1: one OPT at most, in the additional section, owned by the root; options well formed. */
function readOpt(query: Buffer, parsed: ParsedQuery, section: number, start: number, ownerEnd: number, end: number): string | null {
  if (section !== 3) return "OPT outside the additional section";
  if (parsed.edns !== null) return "more than one OPT";
  const ttl = query.readUInt32BE(ownerEnd + 4);
  parsed.edns = { payload: query.readUInt16BE(ownerEnd + 2), version: (ttl >>> 16) & 0xff, dnssecOk: (ttl & 0x8000) !== 0 };
  if (ownerEnd !== start + 1) return "OPT owner is not the root";
  let offset = ownerEnd + 10;
  while (offset < end) {
    if (offset + 4 > end) return "EDNS option truncated";
    offset += 4 + query.readUInt16BE(offset + 2);
  }
  return offset === end ? null : "EDNS option overruns the OPT";
}

// --- Deciding the answer.

/** A record to write: its owner is the query name itself, or a name relative to the zone ([] = the apex). */
interface ResourceRecord {
  owner: "qname" | readonly string[];
  type: number;
  ttl: number;
  /** RDLENGTH and RDATA, as dns-packet encodes them. */
  rdata: Buffer;
}

interface Resolution {
  rcode: number;
  authoritative: boolean;
  answers: ResourceRecord[];
  authority: ResourceRecord[];
  additional: ResourceRecord[];
  /** Offset of the zone's first label in the question (for pointers to it). */
  zoneOffset: number;
}

interface RdataCodec<T> {
  encode(data: T, buf: Buffer, offset: number): Buffer;
  encodingLength(data: T): number;
}

/** dns-packet's per-type RDATA codecs: exported by its index.js, not declared by @types/dns-packet. */
const codecs = dnsPacket as unknown as {
  a: RdataCodec<string>;
  aaaa: RdataCodec<string>;
  ns: RdataCodec<string>;
  soa: RdataCodec<SoaData>;
  txt: RdataCodec<TxtData>;
  caa: RdataCodec<CaaData>;
};

function encodeRdata<T>(codec: RdataCodec<T>, data: T): Buffer {
  const buf = Buffer.alloc(codec.encodingLength(data));
  codec.encode(data, buf, 0);
  return buf;
}

/** A TXT value as character-strings of at most 255 bytes each (RFC 1035 3.3.14). */
function txtStrings(value: string): Buffer[] {
  const bytes = Buffer.from(value, "utf8");
  const strings: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += 255) strings.push(bytes.subarray(i, i + 255));
  return strings.length === 0 ? [Buffer.alloc(0)] : strings;
}

/** The `--caa` domains, then those the store names that the flags did not. */
function caaDomains(configured: readonly string[], published: readonly string[] | undefined): readonly string[] {
  if (!published || published.length === 0) return configured;
  return [...configured, ...published.filter((d) => !configured.includes(d))];
}

/** The RRsets a name has, in the order ANY picks from; null when the name does not exist. */
function rrsetsAt(relative: readonly string[], zone: ZoneSnapshot, p: PreparedConfig, serial: number): ResourceRecord[][] | null {
  const { ttl } = p.config;
  const at = (type: number, recordTtl: number, rdatas: Buffer[]): ResourceRecord[] =>
    rdatas.map((rdata) => ({ owner: "qname", type, ttl: recordTtl, rdata }));
  const hostRrsets = (host: HostAddresses | undefined): ResourceRecord[][] =>
    host === undefined
      ? []
      : [at(TYPE.A, ttl.apex, host.a.map((a) => encodeRdata(codecs.a, a))), at(TYPE.AAAA, ttl.apex, host.aaaa.map((a) => encodeRdata(codecs.aaaa, a)))];

  // No name of ours has a label holding a dot, so joined names below cannot be confused.
  if (relative.some((label) => label.includes("."))) return null;
  if (relative.length === 0) {
    return [
      at(TYPE.SOA, ttl.apex, [encodeRdata(codecs.soa, { ...p.soa, serial })]),
      at(TYPE.NS, ttl.apex, p.config.nameServers.map((ns) => encodeRdata(codecs.ns, ns.name))),
      at(TYPE.CAA, ttl.apex, caaDomains(p.config.caa, zone.caa).map((ca) => encodeRdata(codecs.caa, { flags: 0, tag: "issue", value: ca }))),
      ...hostRrsets(p.hosts.get("")),
    ];
  }
  const key = relative.join(".");
  const host = p.hosts.get(key);
  if (host !== undefined) return hostRrsets(host);
  if (p.nonTerminals.has(key)) return [];
  if (relative.length === 1) {
    const label = relative[0]!;
    return zone.activeLabels.has(label) || (zone.challenges.get(label)?.length ?? 0) > 0 ? [] : null;
  }
  if (relative.length !== 2) return null;
  const [first, label] = relative as [string, string];
  if (first === ACME_CHALLENGE) {
    const values = zone.challenges.get(label) ?? [];
    if (values.length > 0) return [at(TYPE.TXT, ttl.txt, values.map((value) => encodeRdata(codecs.txt, txtStrings(value))))];
    return zone.activeLabels.has(label) ? [] : null;
  }
  if (!zone.activeLabels.has(label)) return null;
  const address = decodeAddress(first);
  if (address === null || !p.allow.contains(address)) return null;
  return address.includes(":")
    ? [at(TYPE.AAAA, ttl.address, [encodeRdata(codecs.aaaa, address)])]
    : [at(TYPE.A, ttl.address, [encodeRdata(codecs.a, address)])];
}

function resolve(question: Question, zone: ZoneSnapshot, p: PreparedConfig): Resolution {
  const { labels, labelOffsets } = question;
  const zoneLabels = p.zoneLabels;
  const relativeCount = labels.length - zoneLabels.length;
  const refused: Resolution = { rcode: RCODE.REFUSED, authoritative: false, answers: [], authority: [], additional: [], zoneOffset: 0 };
  if (relativeCount < 0) return refused;
  for (let i = 0; i < zoneLabels.length; i++) {
    if (labels[relativeCount + i] !== zoneLabels[i]) return refused;
  }
  // The zone has at least one label (isZone), so the question has a label where the zone starts.
  const zoneOffset = labelOffsets[relativeCount]!;
  const serial = soaSerial(zone.version);
  const negative = (rcode: number): Resolution => ({
    rcode,
    authoritative: true,
    answers: [],
    authority: [{ owner: [], type: TYPE.SOA, ttl: p.negativeTtl, rdata: encodeRdata(codecs.soa, { ...p.soa, serial }) }],
    additional: [],
    zoneOffset,
  });
  const rrsets = rrsetsAt(labels.slice(0, relativeCount), zone, p, serial);
  if (rrsets === null) return negative(RCODE.NXDOMAIN);
  const nonEmpty = rrsets.filter((rrset) => rrset.length > 0);
  const answers = question.type === TYPE.ANY ? nonEmpty[0] : nonEmpty.find((rrset) => rrset[0]!.type === question.type);
  if (answers === undefined) return negative(RCODE.NOERROR);
  // Glue (RFC 9471): the addresses of the name servers inside the zone, with the NS RRset.
  const additional = question.type === TYPE.NS ? p.glue : [];
  return { rcode: RCODE.NOERROR, authoritative: true, answers, authority: [], additional, zoneOffset };
}

// --- Writing the response.

function ownerLength(owner: ResourceRecord["owner"]): number {
  if (owner === "qname") return 2;
  let length = 2;
  for (const label of owner) length += 1 + label.length;
  return length;
}

function writeOwner(buf: Buffer, offset: number, owner: ResourceRecord["owner"], zoneOffset: number): number {
  if (owner === "qname") {
    buf.writeUInt16BE(0xc00c, offset);
    return offset + 2;
  }
  for (const label of owner) {
    buf[offset] = label.length;
    buf.write(label, offset + 1, "latin1");
    offset += 1 + label.length;
  }
  buf.writeUInt16BE(0xc000 | zoneOffset, offset);
  return offset + 2;
}

interface Built {
  response: Buffer;
  /** The rcode sent: SERVFAIL when the answer did not fit even a TCP message. */
  rcode: number;
}

/**
 * Header, the question as asked, the records, and an OPT when the query had one. A response larger than
 * `limit` is cut to header + question + OPT with TC set (RFC 2181 9, RFC 6891 7); over TCP that cannot
 * happen below 65535 bytes, and beyond it the answer is SERVFAIL.
 */
function build(query: Buffer, parsed: ParsedQuery, rcode: number, resolution: Resolution | null, limit: number): Built {
  const question = parsed.qdcount === 1 ? parsed.question : null;
  const questionLength = question === null ? 0 : question.end - 12;
  const optLength = parsed.edns === null ? 0 : 11;
  let size = 12 + questionLength + optLength;
  const sections = resolution === null ? [] : [resolution.answers, resolution.authority, resolution.additional];
  for (const section of sections) for (const record of section) size += ownerLength(record.owner) + 8 + record.rdata.length;
  let truncated = false;
  let records = sections;
  if (size > limit) {
    if (limit >= TCP_MESSAGE_MAX) return build(query, parsed, RCODE.SERVFAIL, null, limit);
    truncated = true;
    records = [];
    size = 12 + questionLength + optLength;
  }
  const buf = Buffer.allocUnsafe(size);
  const authoritative = resolution?.authoritative === true;
  const flags =
    0x8000 | // QR
    (parsed.flags & 0x7800) | // OPCODE
    (authoritative ? 0x0400 : 0) |
    (truncated ? 0x0200 : 0) |
    (parsed.flags & 0x0100) | // RD
    (parsed.flags & 0x0010) | // CD
    (rcode & 0xf);
  buf.writeUInt16BE(parsed.id, 0);
  buf.writeUInt16BE(flags, 2);
  buf.writeUInt16BE(question === null ? 0 : 1, 4);
  buf.writeUInt16BE(records[0]?.length ?? 0, 6);
  buf.writeUInt16BE(records[1]?.length ?? 0, 8);
  buf.writeUInt16BE((records[2]?.length ?? 0) + (optLength > 0 ? 1 : 0), 10);
  let offset = 12;
  if (question !== null) offset += query.copy(buf, 12, 12, question.end);
  const zoneOffset = resolution?.zoneOffset ?? 0;
  for (const section of records) {
    for (const record of section) {
      offset = writeOwner(buf, offset, record.owner, zoneOffset);
      buf.writeUInt16BE(record.type, offset);
      buf.writeUInt16BE(CLASS_IN, offset + 2);
      buf.writeUInt32BE(record.ttl, offset + 4);
      offset += 8 + record.rdata.copy(buf, offset + 8);
    }
  }
  if (parsed.edns !== null) writeOpt(buf, offset, rcode, parsed.edns.dnssecOk);
  return { response: buf, rcode };
}

/** Our OPT: root owner, our payload size, the upper rcode bits, version 0, DO copied (RFC 3225 3), no options. */
function writeOpt(buf: Buffer, offset: number, rcode: number, dnssecOk: boolean): void {
  buf[offset] = 0;
  buf.writeUInt16BE(TYPE.OPT, offset + 1);
  buf.writeUInt16BE(UDP_PAYLOAD_MAX, offset + 3);
  buf[offset + 5] = rcode >> 4;
  buf[offset + 6] = 0;
  buf[offset + 7] = dnssecOk ? 0x80 : 0;
  buf[offset + 8] = 0;
  buf.writeUInt16BE(0, offset + 9);
}

export function udpLimit(payload: number | null): number {
  if (payload === null) return UDP_PAYLOAD_MIN;
  return Math.min(UDP_PAYLOAD_MAX, Math.max(UDP_PAYLOAD_MIN, payload));
}

function generalAnswer(query: Buffer, source: QuerySource, zone: ZoneSnapshot, p: PreparedConfig): Answer {
  if (query.length < 12) return drop(source, `${query.length} bytes, shorter than a header`);
  if ((query[2]! & 0x80) !== 0) return drop(source, "a response (QR=1), not a query");
  const parsed = parseQuery(query);
  const limit = source.transport === "tcp" ? TCP_MESSAGE_MAX : udpLimit(parsed.edns?.payload ?? null);
  const question = parsed.qdcount === 1 ? parsed.question : null;
  const reply = (rcode: number, resolution: Resolution | null, note: string | null): Answer => {
    const built = build(query, parsed, rcode, resolution, limit);
    return finish(query, source, built.response, built.rcode, question?.type ?? -1, question !== null, note);
  };
  if (parsed.opcode === OPCODE_NOTIFY) return notifyAnswer(parsed, question, source, p, reply);
  if (parsed.opcode !== OPCODE_QUERY) return reply(RCODE.NOTIMP, null, `opcode ${parsed.opcode}`);
  if (parsed.problem !== null) return reply(RCODE.FORMERR, null, parsed.problem);
  if (question === null) return reply(RCODE.FORMERR, null, `QDCOUNT=${parsed.qdcount}`);
  if (parsed.edns !== null && parsed.edns.version > 0) return reply(RCODE.BADVERS, null, `EDNS version ${parsed.edns.version}`);
  if (question.klass !== CLASS_IN && question.klass !== CLASS_ANY) return reply(RCODE.REFUSED, null, `class ${question.klass}`);
  if (question.type === TYPE.AXFR || question.type === TYPE.IXFR) return reply(RCODE.REFUSED, null, "zone transfers are not served");
  const resolution = resolve(question, zone, p);
  return reply(resolution.rcode, resolution, null);
}

/** An empty answer with AA: the NOTIFY response of RFC 1996 4.7 (question echoed, no records). */
const NOTIFY_ACK: Resolution = { rcode: RCODE.NOERROR, authoritative: true, answers: [], authority: [], additional: [], zoneOffset: 0 };

/** A NOTIFY's source as an address the ranges can test: an IPv4 client of a dual-stack socket is `::ffff:a.b.c.d`. */
function notifySource(address: string): string {
  return address.startsWith("::ffff:") && address.includes(".") ? address.slice(7) : address;
}

/**
 * RFC 1996: a NOTIFY of the zone's SOA from an allowed source is acknowledged and marked `accepted` (the
 * caller reloads); from elsewhere REFUSED before anything else is looked at, and never acted on.
 */
function notifyAnswer(
  parsed: ParsedQuery,
  question: Question | null,
  source: QuerySource,
  p: PreparedConfig,
  reply: (rcode: number, resolution: Resolution | null, note: string | null) => Answer,
): Answer {
  const outcome = (answer: Answer, notify: Answer["notify"]): Answer => ({ ...answer, notify });
  if (!p.allowNotify.contains(notifySource(source.address))) return outcome(reply(RCODE.REFUSED, null, "NOTIFY from a source outside --allow-notify"), "refused");
  if (parsed.problem !== null) return outcome(reply(RCODE.FORMERR, null, `NOTIFY: ${parsed.problem}`), "rejected");
  if (question === null) return outcome(reply(RCODE.FORMERR, null, `NOTIFY: QDCOUNT=${parsed.qdcount}`), "rejected");
  if (parsed.edns !== null && parsed.edns.version > 0) return outcome(reply(RCODE.BADVERS, null, `NOTIFY: EDNS version ${parsed.edns.version}`), "rejected");
  const ours = question.labels.length === p.zoneLabels.length && question.labels.every((label, i) => label === p.zoneLabels[i]);
  if (!ours || (question.klass !== CLASS_IN && question.klass !== CLASS_ANY)) return outcome(reply(RCODE.NOTAUTH, null, "NOTIFY for a zone not served here"), "rejected");
  if (question.type !== TYPE.SOA) return outcome(reply(RCODE.FORMERR, null, `NOTIFY for type ${typeName(question.type)}, not SOA`), "rejected");
  return outcome(reply(RCODE.NOERROR, NOTIFY_ACK, "NOTIFY: zone reload"), "accepted");
}

// --- The result and its log line.

function client(source: QuerySource): string {
  return `${source.transport} ${source.address.includes(":") ? `[${source.address}]` : source.address}#${source.port}`;
}

/** Scratch for presentName: a name of at most 255 octets is at most 254 characters unescaped. */
const nameText = Buffer.alloc(256);

function plainByte(c: number): boolean {
  return (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || (c >= 0x30 && c <= 0x39) || c === 0x2d || c === 0x5f || c === 0x2a;
}

/**
 * The question's name in presentation form as asked (case kept), for the log. Bytes outside [A-Za-z0-9_*-]
 * are written \DDD (RFC 1035 5.1), so a hostile name cannot break the log line. Assembled in a scratch
 * buffer: building it label by label as strings cost more than answering the query.
 */
export function presentName(query: Buffer): string {
  let offset = 12;
  let at = 0;
  while (offset < query.length && offset - 12 < 255) {
    const length = query[offset]!;
    if (length === 0 || length > 63 || offset + 1 + length > query.length) break;
    if (at > 0) nameText[at++] = 0x2e;
    for (let i = offset + 1; i <= offset + length; i++) {
      const c = query[i]!;
      if (!plainByte(c)) return escapedName(query);
      nameText[at++] = c;
    }
    offset += 1 + length;
  }
  return at === 0 ? "." : nameText.toString("latin1", 0, at);
}

function escapedName(query: Buffer): string {
  const labels: string[] = [];
  let offset = 12;
  while (offset < query.length) {
    const length = query[offset]!;
    if (length === 0 || length > 63 || offset + 1 + length > query.length) break;
    let label = "";
    for (let i = offset + 1; i <= offset + length; i++) {
      const c = query[i]!;
      label += plainByte(c) ? String.fromCharCode(c) : `\\${String(c).padStart(3, "0")}`;
    }
    labels.push(label);
    offset += 1 + length;
  }
  return labels.length === 0 ? "." : labels.join(".");
}

function finish(query: Buffer, source: QuerySource, response: Buffer, rcode: number, qtype: number, questionReadable: boolean, note: string | null): Answer {
  const qname = questionReadable ? presentName(query) : "-";
  const qtypeName = qtype < 0 ? "-" : typeName(qtype);
  const rcodeText = rcodeName(rcode);
  const truncated = (response[2]! & 0x02) !== 0;
  const answers = response.readUInt16BE(6);
  const log = `${client(source)} ${qname} ${qtypeName} ${rcodeText} answers=${answers}${truncated ? " TC" : ""}${note === null ? "" : ` (${note})`}`;
  return { response, log, rcode: rcodeText, qtype: qtypeName };
}

function drop(source: QuerySource, why: string): Answer {
  return { response: null, log: `${client(source)} - - DROP answers=0 (${why})`, rcode: "DROP", qtype: "-" };
}

/** A bug of ours: SERVFAIL with the ID when the header is there, so the client retries elsewhere at once. */
function failure(query: Buffer, source: QuerySource, error: unknown): Answer {
  const why = `internal error: ${error instanceof Error ? error.message : String(error)}`.replace(/[\r\n]+/g, " ");
  if (query.length < 12 || (query[2]! & 0x80) !== 0) return drop(source, why);
  const response = Buffer.alloc(12);
  query.copy(response, 0, 0, 2);
  response[2] = 0x80 | (query[2]! & 0x79);
  response[3] = RCODE.SERVFAIL;
  return { response, log: `${client(source)} - - SERVFAIL answers=0 (${why})`, rcode: "SERVFAIL", qtype: "-" };
}
