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
 * The response to a hot query, or undefined for anything else (including a response that would need TC).
 * `serial` is the SOA serial of this zone version (answer.ts's soaSerial).
 */
export function fastAnswer(query: Buffer, tcp: boolean, zone: ZoneSnapshot, fast: FastPathConfig, serial: number): FastResult | undefined {
  const length = query.length;
  if (length < 17 || !fast.enabled) return undefined;
  // Header: QR=0 and OPCODE=0; QDCOUNT=1, ANCOUNT=NSCOUNT=0, ARCOUNT 0 or 1.
  if ((query[2]! & 0xf8) !== 0 || query[4] !== 0 || query[5] !== 1 || query[6] !== 0 || query[7] !== 0) return undefined;
  if (query[8] !== 0 || query[9] !== 0 || query[10] !== 0 || query[11]! > 1) return undefined;

  // The question name, in place.
  let offset = 12;
  let count = 0;
  for (;;) {
    if (offset >= length || offset - 12 > 254) return undefined;
    const labelLength = query[offset]!;
    if (labelLength === 0) break;
    if (labelLength > 63) return undefined;
    labelStarts[count++] = offset;
    offset += 1 + labelLength;
  }
  const nameEnd = offset + 1;
  const questionEnd = nameEnd + 4;
  if (questionEnd > length) return undefined;
  const qtype = (query[nameEnd]! << 8) | query[nameEnd + 1]!;
  if ((qtype !== TYPE_A && qtype !== TYPE_AAAA && qtype !== TYPE_TXT) || query[nameEnd + 2] !== 0 || query[nameEnd + 3] !== 1) return undefined;

  // EDNS: exactly one OPT right after the question, version 0, options well formed.
  let edns = false;
  let payload = UDP_MIN;
  let dnssecOk = 0;
  if (query[11] === 1) {
    const opt = questionEnd;
    if (opt + 11 > length || query[opt] !== 0 || query[opt + 1] !== 0 || query[opt + 2] !== TYPE_OPT || query[opt + 6] !== 0) return undefined;
    payload = (query[opt + 3]! << 8) | query[opt + 4]!;
    dnssecOk = query[opt + 7]! & 0x80;
    const end = opt + 11 + ((query[opt + 9]! << 8) | query[opt + 10]!);
    if (end > length) return undefined;
    let option = opt + 11;
    while (option < end) {
      if (option + 4 > end) return undefined;
      option += 4 + ((query[option + 2]! << 8) | query[option + 3]!);
    }
    if (option !== end) return undefined;
    edns = true;
  }

  // In the zone, two or more labels below it, below any in-zone name server name.
  const relative = count - fast.zoneLabelCount;
  if (relative < 2 || relative <= fast.hostDepth) return undefined;
  const zoneStart = labelStarts[relative]!;
  if (nameEnd - zoneStart !== fast.zoneWire.length || !sameIgnoringAsciiCase(query, zoneStart, fast.zoneWire)) return undefined;

  // What the name holds: rcode, and the records (0 = none, else a TXT count or one address).
  let rcode = NXDOMAIN;
  let addressType = 0;
  let address4 = 0;
  let values: readonly string[] | undefined;
  if (relative === 2) {
    const labelStart = labelStarts[1]!;
    const label = query.toString("latin1", labelStart + 1, labelStart + 1 + query[labelStart]!).toLowerCase();
    const active = zone.activeLabels.has(label);
    const firstLength = query[12]!;
    if (firstLength === ACME_CHALLENGE.length && sameIgnoringAsciiCase(query, 13, ACME_CHALLENGE)) {
      values = zone.challenges.get(label);
      if (values !== undefined && values.length > 0) rcode = NOERROR;
      else if (active) rcode = NOERROR;
      if (qtype !== TYPE_TXT || values?.length === 0) values = undefined;
    } else if (active) {
      const v4 = dashedIPv4(query, 13, 13 + firstLength);
      if (v4 >= 0) {
        if (fast.allow.containsIPv4(v4)) {
          rcode = NOERROR;
          if (qtype === TYPE_A) {
            addressType = TYPE_A;
            address4 = v4;
          }
        }
      } else if (v4 === -2 && dashedIPv6(query, 13, 13 + firstLength)) {
        if (fast.allow.containsIPv6((groups[0]! << 16) | groups[1]!, (groups[2]! << 16) | groups[3]!, (groups[4]! << 16) | groups[5]!, (groups[6]! << 16) | groups[7]!)) {
          rcode = NOERROR;
          if (qtype === TYPE_AAAA) addressType = TYPE_AAAA;
        }
      }
    }
  }

  // Size, then one buffer.
  let answerBytes = 0;
  let answerCount = 0;
  if (addressType === TYPE_A) {
    answerBytes = 16;
    answerCount = 1;
  } else if (addressType === TYPE_AAAA) {
    answerBytes = 28;
    answerCount = 1;
  } else if (values !== undefined) {
    for (const value of values) {
      const bytes = Buffer.byteLength(value, "utf8");
      if (bytes > 255) return undefined; // several character-strings: the general path
      answerBytes += 13 + bytes;
    }
    answerCount = values.length;
  }
  const soaBytes = answerCount === 0 ? 10 + fast.soaRdata.length : 0;
  const size = questionEnd + answerBytes + soaBytes + (edns ? 11 : 0);
  const limit = tcp ? TCP_MAX : edns ? Math.min(UDP_MAX, Math.max(UDP_MIN, payload)) : UDP_MIN;
  if (size > limit) return undefined;

  const out = Buffer.allocUnsafe(size);
  query.copy(out, 0, 0, questionEnd);
  out[2] = 0x84 | (query[2]! & 0x01); // QR, AA, RD copied; OPCODE 0
  out[3] = (query[3]! & 0x10) | rcode; // CD copied, RA=0
  out[6] = 0;
  out[7] = answerCount;
  out[8] = 0;
  out[9] = soaBytes === 0 ? 0 : 1;
  out[10] = 0;
  out[11] = edns ? 1 : 0;
  let at = questionEnd;
  if (addressType !== 0) {
    out[at] = 0xc0;
    out[at + 1] = 0x0c;
    out[at + 2] = 0;
    out[at + 3] = addressType;
    out[at + 4] = 0;
    out[at + 5] = 1;
    out.writeUInt32BE(fast.addressTtl, at + 6);
    if (addressType === TYPE_A) {
      out[at + 10] = 0;
      out[at + 11] = 4;
      out.writeUInt32BE(address4, at + 12);
      at += 16;
    } else {
      out[at + 10] = 0;
      out[at + 11] = 16;
      for (let g = 0; g < 8; g++) out.writeUInt16BE(groups[g]!, at + 12 + 2 * g);
      at += 28;
    }
  } else if (values !== undefined) {
    for (const value of values) {
      out[at] = 0xc0;
      out[at + 1] = 0x0c;
      out[at + 2] = 0;
      out[at + 3] = TYPE_TXT;
      out[at + 4] = 0;
      out[at + 5] = 1;
      out.writeUInt32BE(fast.txtTtl, at + 6);
      const bytes = out.write(value, at + 13, "utf8");
      out.writeUInt16BE(bytes + 1, at + 10);
      out[at + 12] = bytes;
      at += 13 + bytes;
    }
  } else {
    out.writeUInt16BE(0xc000 | zoneStart, at);
    out[at + 2] = 0;
    out[at + 3] = TYPE_SOA;
    out[at + 4] = 0;
    out[at + 5] = 1;
    out.writeUInt32BE(fast.negativeTtl, at + 6);
    at += 10 + fast.soaRdata.copy(out, at + 10);
    out.writeUInt32BE(serial, at - 20);
  }
  if (edns) {
    out[at] = 0;
    out[at + 1] = 0;
    out[at + 2] = TYPE_OPT;
    out[at + 3] = UDP_MAX >> 8;
    out[at + 4] = UDP_MAX & 0xff;
    out[at + 5] = 0;
    out[at + 6] = 0;
    out[at + 7] = dnssecOk;
    out[at + 8] = 0;
    out[at + 9] = 0;
    out[at + 10] = 0;
  }
  return { response: out, rcode, qtype };
}
