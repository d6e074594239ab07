/**
 * The hot queries, answered without building objects: A and AAAA at `<address>.<label>.<zone>`, TXT at
 * `_acme-challenge.<label>.<zone>`, and the NXDOMAIN/NODATA answers (with the SOA) around them; with no EDNS
 * or one plain OPT (version 0, any options, which are ignored).
 *
 * Why hand-written: the general path (answer.ts) reads the query into arrays of strings and encodes every
 * RDATA with dns-packet into its own buffer: a few microseconds a query, against a UDP socket that costs
 * 12-16 us, where the project's target (0.85 of a bare Node responder) leaves room for about two. Here the
 * question is walked once in place, the zone suffix compared byte by byte, the address parsed from the
 * label's bytes, and the response written into one buffer, with its records pointing to the question.
 *
 * Anything else returns undefined and goes the general way; answer-property.test.ts holds the two paths to
 * the same bytes. The encoded-address parsers below follow @boxcert/shared's decodeAddress exactly (the
 * tests compare them on generated labels).
 */
import type { AllowRanges } from "./ranges.ts";
import type { ZoneSnapshot } from "./zone.ts";

/** What the fast path needs of a configuration, prepared once by answer.ts. */
export interface FastPathInput {
  zone: string;
  soa: { mname: string; rname: string; refresh: number; retry: number; expire: number; minimum: number };
  ttl: { address: number; txt: number };
  negativeTtl: number;
  allow: AllowRanges;
  /** Deepest in-zone name server name, in labels below the zone (-1: none); shallower names go the general way. */
  hostDepth: number;
}

export interface FastPathConfig {
  /** False when a configured name is not plain ASCII labels: then every query takes the general path. */
  enabled: boolean;
  /** The zone in wire form, lowercase, with its root label. */
  zoneWire: Buffer;
  zoneLabelCount: number;
  hostDepth: number;
  allow: AllowRanges;
  addressTtl: number;
  txtTtl: number;
  negativeTtl: number;
  /** RDLENGTH + SOA RDATA with a zero serial, which sits 20 bytes before the end. */
  soaRdata: Buffer;
}

export interface FastResult {
  response: Buffer;
  rcode: number;
  qtype: number;
}

const TYPE_A = 1;
const TYPE_TXT = 16;
const TYPE_AAAA = 28;
const TYPE_SOA = 6;
const TYPE_OPT = 41;
const NOERROR = 0;
const NXDOMAIN = 3;
const UDP_MIN = 512;
const UDP_MAX = 1232;
const TCP_MAX = 65535;
const ACME_CHALLENGE = Buffer.from("_acme-challenge", "latin1");

/** Plain names only (what dns-packet writes the same way): labels of 1-63 printable ASCII characters, no escapes. */
function wireName(name: string): Buffer | null {
  const labels = name.split(".");
  if (!labels.every((label) => /^[\x21-\x7e]{1,63}$/.test(label) && !label.includes("\\"))) return null;
  return Buffer.concat([...labels.map((label) => Buffer.concat([Buffer.from([label.length]), Buffer.from(label, "latin1")])), Buffer.from([0])]);
}

export function prepareFastPath(input: FastPathInput): FastPathConfig {
  const zoneWire = wireName(input.zone.toLowerCase());
  const mname = wireName(input.soa.mname);
  const rname = wireName(input.soa.rname);
  const enabled = zoneWire !== null && mname !== null && rname !== null;
  let soaRdata = Buffer.alloc(0);
  if (mname !== null && rname !== null) {
    const timers = Buffer.alloc(20);
    timers.writeUInt32BE(input.soa.refresh, 4);
    timers.writeUInt32BE(input.soa.retry, 8);
    timers.writeUInt32BE(input.soa.expire, 12);
    timers.writeUInt32BE(input.soa.minimum, 16);
    const length = Buffer.alloc(2);
    length.writeUInt16BE(mname.length + rname.length + 20);
    soaRdata = Buffer.concat([length, mname, rname, timers]);
  }
  return {
    enabled,
    zoneWire: zoneWire ?? Buffer.alloc(0),
    zoneLabelCount: input.zone.split(".").length,
    hostDepth: input.hostDepth,
    allow: input.allow,
    addressTtl: input.ttl.address,
    txtTtl: input.ttl.txt,
    negativeTtl: input.negativeTtl,
    soaRdata,
  };
}

// Scratch space, reused by every call (answering is synchronous, so no two calls overlap).
/** Offsets of the question's label length bytes (a name of 255 octets has at most 127 labels). */
const labelStarts = new Int32Array(128);
/** The eight 16-bit groups of an IPv6 address being parsed. */
const groups = new Int32Array(8);

/**
 * decodeAddress's IPv4 branch on the label's bytes: the address (unsigned), -1 when the label has the IPv4
 * shape (`^\d{1,3}(-\d{1,3}){3}$`) but is not an address (a part above 255 or with a leading zero), -2 when
 * it does not have that shape (then it may be IPv6).
 */
export function dashedIPv4(bytes: Buffer, start: number, end: number): number {
  let value = 0;
  let part = 0;
  let digits = 0;
  let dashes = 0;
  let valid = true;
  let leadingZero = false;
  for (let i = start; i < end; i++) {
    const c = bytes[i]!;
    if (c >= 0x30 && c <= 0x39) {
      if (digits === 3) return -2;
      if (digits === 0) leadingZero = c === 0x30;
      part = part * 10 + (c - 0x30);
      digits++;
    } else if (c === 0x2d) {
      if (digits === 0 || dashes === 3) return -2;
      if (part > 255 || (leadingZero && digits > 1)) valid = false;
      value = value * 256 + part;
      dashes++;
      part = 0;
      digits = 0;
    } else {
      return -2;
    }
  }
  if (digits === 0 || dashes !== 3) return -2;
  if (part > 255 || (leadingZero && digits > 1)) valid = false;
  return valid ? value * 256 + part : -1;
}

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  const lower = c | 0x20;
  if (lower >= 0x61 && lower <= 0x66) return lower - 0x61 + 10;
  return -1;
}

/**
 * decodeAddress's IPv6 branch on the label's bytes (dashes for colons, `--` for `::`, 1-4 hex digits a
 * group, no embedded IPv4 since a label has no dots): true and the groups in `groups`, or false.
 */
export function dashedIPv6(bytes: Buffer, start: number, end: number, out: Int32Array = groups): boolean {
  let count = 0;
  let gap = -1;
  let i = start;
  if (end - start >= 2 && bytes[start] === 0x2d && bytes[start + 1] === 0x2d) {
    gap = 0;
    i += 2;
  }
  while (i < end) {
    let value = 0;
    let digits = 0;
    while (i < end) {
      const h = hexValue(bytes[i]!);
      if (h < 0) break;
      if (++digits > 4) return false;
      value = value * 16 + h;
      i++;
    }
    if (digits === 0 || count === 8) return false;
    out[count++] = value;
    if (i === end) break;
    if (bytes[i] !== 0x2d) return false;
    i++;
    if (i === end) return false;
    if (bytes[i] === 0x2d) {
      if (gap !== -1) return false;
      gap = count;
      i++;
    }
  }
  if (gap === -1) return count === 8;
  if (count > 7) return false;
  // Move the groups after the gap to the end and zero the gap.
  const after = count - gap;
  for (let k = 0; k < after; k++) out[7 - k] = out[count - 1 - k]!;
  for (let k = gap; k < 8 - after; k++) out[k] = 0;
  return true;
}

function sameIgnoringAsciiCase(bytes: Buffer, start: number, lowercase: Buffer): boolean {
  for (let j = 0; j < lowercase.length; j++) {
    let c = bytes[start + j]!;
    if (c >= 0x41 && c <= 0x5a) c |= 0x20;
    if (c !== lowercase[j]) return false;
  }
  return true;
}

/**
 * What the phases below read from the query and decide, kept between them in one reused object (no
 * allocation a query). Valid only during one fastAnswer() call.
 */
const parsed = {
  /** Labels in the question name (their offsets in labelStarts). */
  labelCount: 0,
  /** Offset just past the question name's root label, and past the question. */
  nameEnd: 0,
  questionEnd: 0,
  qtype: 0,
  edns: false,
  /** The client's EDNS UDP payload size, and its DO bit (0x80 or 0). */
  payload: UDP_MIN,
  dnssecOk: 0,
  /** Where the zone's labels start in the question (the SOA's owner name points there). */
  zoneStart: 0,
  rcode: NXDOMAIN,
  /** TYPE_A or TYPE_AAAA when the answer holds one address (address4, or the IPv6 groups), else 0. */
  addressType: 0,
  address4: 0,
  /** The TXT values answered, or undefined. */
  values: undefined as readonly string[] | undefined,
};

/** Header and question: one query for A, AAAA or TXT in class IN, no answer or authority records. */
function readQuestion(query: Buffer): boolean {
  const length = query.length;
  // Header: QR=0 and OPCODE=0; QDCOUNT=1, ANCOUNT=NSCOUNT=0, ARCOUNT 0 or 1.
  if ((query[2]! & 0xf8) !== 0 || query[4] !== 0 || query[5] !== 1 || query[6] !== 0 || query[7] !== 0) return false;
  if (query[8] !== 0 || query[9] !== 0 || query[10] !== 0 || query[11]! > 1) return false;
  // The question name, in place.
  let offset = 12;
  let count = 0;
  for (;;) {
    if (offset >= length || offset - 12 > 254) return false;
    const labelLength = query[offset]!;
    if (labelLength === 0) break;
    if (labelLength > 63) return false;
    labelStarts[count++] = offset;
    offset += 1 + labelLength;
  }
  const nameEnd = offset + 1;
  const questionEnd = nameEnd + 4;
  if (questionEnd > length) return false;
  const qtype = (query[nameEnd]! << 8) | query[nameEnd + 1]!;
  if ((qtype !== TYPE_A && qtype !== TYPE_AAAA && qtype !== TYPE_TXT) || query[nameEnd + 2] !== 0 || query[nameEnd + 3] !== 1) return false;
  parsed.labelCount = count;
  parsed.nameEnd = nameEnd;
  parsed.questionEnd = questionEnd;
  parsed.qtype = qtype;
  return true;
}

/** EDNS: none, or exactly one OPT right after the question, version 0, options well formed. */
function readEdns(query: Buffer): boolean {
  parsed.edns = false;
  parsed.payload = UDP_MIN;
  parsed.dnssecOk = 0;
  if (query[11] !== 1) return true;
  const length = query.length;
  const opt = parsed.questionEnd;
  if (opt + 11 > length || query[opt] !== 0 || query[opt + 1] !== 0 || query[opt + 2] !== TYPE_OPT || query[opt + 6] !== 0) return false;
  const end = opt + 11 + ((query[opt + 9]! << 8) | query[opt + 10]!);
  if (end > length) return false;
  let option = opt + 11;
  while (option < end) {
    if (option + 4 > end) return false;
    option += 4 + ((query[option + 2]! << 8) | query[option + 3]!);
  }
  if (option !== end) return false;
  parsed.edns = true;
  parsed.payload = (query[opt + 3]! << 8) | query[opt + 4]!;
  parsed.dnssecOk = query[opt + 7]! & 0x80;
  return true;
}

/** In the zone, two or more labels below it, below any in-zone name server name: the zone's start, else -1. */
function zoneStartOf(query: Buffer, fast: FastPathConfig): number {
  const relative = parsed.labelCount - fast.zoneLabelCount;
  if (relative < 2 || relative <= fast.hostDepth) return -1;
  const zoneStart = labelStarts[relative]!;
  if (parsed.nameEnd - zoneStart !== fast.zoneWire.length || !sameIgnoringAsciiCase(query, zoneStart, fast.zoneWire)) return -1;
  return zoneStart;
}

/** What `<first>.<label>.<zone>` holds: rcode, and an address or TXT values (rcode NXDOMAIN for deeper names). */
function lookUp(query: Buffer, zone: ZoneSnapshot, fast: FastPathConfig): void {
  parsed.rcode = NXDOMAIN;
  parsed.addressType = 0;
  parsed.values = undefined;
  if (parsed.labelCount - fast.zoneLabelCount !== 2) return;
  const qtype = parsed.qtype;
  const labelStart = labelStarts[1]!;
  const label = query.toString("latin1", labelStart + 1, labelStart + 1 + query[labelStart]!).toLowerCase();
  const active = zone.activeLabels.has(label);
  const firstLength = query[12]!;
  if (firstLength === ACME_CHALLENGE.length && sameIgnoringAsciiCase(query, 13, ACME_CHALLENGE)) {
    const values = zone.challenges.get(label);
    if ((values !== undefined && values.length > 0) || active) parsed.rcode = NOERROR;
    if (qtype === TYPE_TXT && values !== undefined && values.length > 0) parsed.values = values;
    return;
  }
  if (!active) return;
  const v4 = dashedIPv4(query, 13, 13 + firstLength);
  if (v4 >= 0) {
    if (!fast.allow.containsIPv4(v4)) return;
    parsed.rcode = NOERROR;
    if (qtype === TYPE_A) {
      parsed.addressType = TYPE_A;
      parsed.address4 = v4;
    }
  } else if (v4 === -2 && dashedIPv6(query, 13, 13 + firstLength)) {
    if (!fast.allow.containsIPv6((groups[0]! << 16) | groups[1]!, (groups[2]! << 16) | groups[3]!, (groups[4]! << 16) | groups[5]!, (groups[6]! << 16) | groups[7]!)) return;
    parsed.rcode = NOERROR;
    if (qtype === TYPE_AAAA) parsed.addressType = TYPE_AAAA;
  }
}

/** The answer section's size in bytes, or -1 when a TXT value needs several character-strings (general path). */
function answerBytes(): number {
  if (parsed.addressType === TYPE_A) return 16;
  if (parsed.addressType === TYPE_AAAA) return 28;
  const values = parsed.values;
  if (values === undefined) return 0;
  let bytes = 0;
  for (const value of values) {
    const length = Buffer.byteLength(value, "utf8");
    if (length > 255) return -1;
    bytes += 13 + length;
  }
  return bytes;
}

/** The header of the response, over the copied question: QR, AA, RD and CD copied, RA=0, OPCODE 0. */
function writeHeader(out: Buffer, query: Buffer, answerCount: number, withSoa: boolean): void {
  out[2] = 0x84 | (query[2]! & 0x01);
  out[3] = (query[3]! & 0x10) | parsed.rcode;
  out[6] = 0;
  out[7] = answerCount;
  out[8] = 0;
  out[9] = withSoa ? 1 : 0;
  out[10] = 0;
  out[11] = parsed.edns ? 1 : 0;
}

/** A record's owner (a pointer), type, class IN and TTL; RDLENGTH and RDATA follow at `at + 10`. */
function writeRecordStart(out: Buffer, at: number, owner: number, type: number, ttl: number): void {
  out.writeUInt16BE(0xc000 | owner, at);
  out[at + 2] = 0;
  out[at + 3] = type;
  out[at + 4] = 0;
  out[at + 5] = 1;
  out.writeUInt32BE(ttl, at + 6);
}

/** The answer (an address or the TXT values) or the SOA in the authority section; returns the end offset. */
function writeRecords(out: Buffer, at: number, fast: FastPathConfig, serial: number): number {
  const values = parsed.values;
  if (parsed.addressType === TYPE_A) {
    writeRecordStart(out, at, 12, TYPE_A, fast.addressTtl);
    out[at + 10] = 0;
    out[at + 11] = 4;
    out.writeUInt32BE(parsed.address4, at + 12);
    return at + 16;
  }
  if (parsed.addressType === TYPE_AAAA) {
    writeRecordStart(out, at, 12, TYPE_AAAA, fast.addressTtl);
    out[at + 10] = 0;
    out[at + 11] = 16;
    for (let g = 0; g < 8; g++) out.writeUInt16BE(groups[g]!, at + 12 + 2 * g);
    return at + 28;
  }
  if (values !== undefined) {
    for (const value of values) {
      writeRecordStart(out, at, 12, TYPE_TXT, fast.txtTtl);
      const bytes = out.write(value, at + 13, "utf8");
      out.writeUInt16BE(bytes + 1, at + 10);
      out[at + 12] = bytes;
      at += 13 + bytes;
    }
    return at;
  }
  writeRecordStart(out, at, parsed.zoneStart, TYPE_SOA, fast.negativeTtl);
  at += 10 + fast.soaRdata.copy(out, at + 10);
  out.writeUInt32BE(serial, at - 20);
  return at;
}

/** Our OPT record: payload UDP_MAX, the client's DO bit, no options. */
function writeOpt(out: Buffer, at: number): void {
  out[at] = 0;
  out[at + 1] = 0;
  out[at + 2] = TYPE_OPT;
  out[at + 3] = UDP_MAX >> 8;
  out[at + 4] = UDP_MAX & 0xff;
  out[at + 5] = 0;
  out[at + 6] = 0;
  out[at + 7] = parsed.dnssecOk;
  out[at + 8] = 0;
  out[at + 9] = 0;
  out[at + 10] = 0;
}

/**
 * The response to a hot query, or undefined for anything else (including a response that would need TC).
 * `serial` is the SOA serial of this zone version (answer.ts's soaSerial). Phases: read the question and
 * EDNS, find the zone, look the name up, size the response, write it into one buffer.
 */
export function fastAnswer(query: Buffer, tcp: boolean, zone: ZoneSnapshot, fast: FastPathConfig, serial: number): FastResult | undefined {
  if (query.length < 17 || !fast.enabled) return undefined;
  if (!readQuestion(query) || !readEdns(query)) return undefined;
  const zoneStart = zoneStartOf(query, fast);
  if (zoneStart < 0) return undefined;
  parsed.zoneStart = zoneStart;
  lookUp(query, zone, fast);

  const answers = answerBytes();
  if (answers < 0) return undefined;
  const answerCount = parsed.addressType !== 0 ? 1 : (parsed.values?.length ?? 0);
  const soaBytes = answerCount === 0 ? 10 + fast.soaRdata.length : 0;
  const questionEnd = parsed.questionEnd;
  const size = questionEnd + answers + soaBytes + (parsed.edns ? 11 : 0);
  const limit = tcp ? TCP_MAX : parsed.edns ? Math.min(UDP_MAX, Math.max(UDP_MIN, parsed.payload)) : UDP_MIN;
  if (size > limit) return undefined;

  const out = Buffer.allocUnsafe(size);
  query.copy(out, 0, 0, questionEnd);
  writeHeader(out, query, answerCount, soaBytes !== 0);
  const end = writeRecords(out, questionEnd, fast, serial);
  if (parsed.edns) writeOpt(out, end);
  return { response: out, rcode: parsed.rcode, qtype: parsed.qtype };
}
