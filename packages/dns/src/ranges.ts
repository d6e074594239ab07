/**
 * The allow-list of address ranges an encoded name must fall in to be answered (`DnsConfig.allow`).
 *
 * Parsed once per list into integer base/mask pairs, so a containment test on the hot path is a few integer
 * operations and no allocation: IPv4 as one 32-bit word, IPv6 as four. Hand-written rather than node:net's
 * BlockList because BlockList re-parses the address string and crosses into C++ on every check.
 *
 * IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`) are IPv6 here: they are inside an IPv4 range only if the
 * list has the mapped range itself. The name encoding never produces them for an IPv4 box.
 */

/** Strict dotted quad (no leading zeros, no shorthand) as an unsigned 32-bit number; null when not one. */
export function parseIPv4(text: string): number | null {
  const parts = text.split(".");
  if (parts.length !== 4) return null;
  let value = 0;
  for (const part of parts) {
    if (!/^(0|[1-9][0-9]{0,2})$/.test(part)) return null;
    const octet = Number(part);
    if (octet > 255) return null;
    value = value * 256 + octet;
  }
  return value;
}

/**
 * IPv6 text (RFC 4291 section 2.2: `::` once at most, an optional trailing dotted quad) as four 32-bit
 * words, most significant first; null when not an address. Zone indices (`%eth0`) are refused.
 */
export function parseIPv6(text: string): [number, number, number, number] | null {
  if (text.length > 45 || text.includes("%")) return null;
  const double = text.indexOf("::");
  if (double !== -1 && text.indexOf("::", double + 1) !== -1) return null;
  const head = parseGroups(double === -1 ? text : text.slice(0, double), double === -1);
  const tail = double === -1 ? [] : parseGroups(text.slice(double + 2), true);
  if (head === null || tail === null) return null;
  const explicit = head.length + tail.length;
  if (double === -1 ? explicit !== 8 : explicit > 7) return null;
  const full = [...head, ...new Array<number>(8 - explicit).fill(0), ...tail];
  return [
    (full[0]! * 0x10000 + full[1]!) >>> 0,
    (full[2]! * 0x10000 + full[3]!) >>> 0,
    (full[4]! * 0x10000 + full[5]!) >>> 0,
    (full[6]! * 0x10000 + full[7]!) >>> 0,
  ];
}

/** Colon-separated 16-bit groups; the last one may be a dotted quad (two groups) when `v4Last`. */
function parseGroups(text: string, v4Last: boolean): number[] | null {
  if (text === "") return [];
  const parts = text.split(":");
  const groups: number[] = [];
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i]!;
    if (v4Last && i === parts.length - 1 && part.includes(".")) {
      const v4 = parseIPv4(part);
      if (v4 === null) return null;
      groups.push(v4 >>> 16, v4 & 0xffff);
    } else if (/^[0-9a-fA-F]{1,4}$/.test(part)) {
      groups.push(parseInt(part, 16));
    } else {
      return null;
    }
  }
  return groups;
}

function prefixMask(bits: number): number {
  if (bits <= 0) return 0;
  if (bits >= 32) return -1;
  return (0xffffffff << (32 - bits)) | 0;
}

/** A parsed allow-list. Words are kept as signed 32-bit values so `(word & mask) === base` needs no `>>> 0`. */
export class AllowRanges {
  /** base, mask pairs. */
  private readonly v4: Int32Array;
  /** base0..3, mask0..3 per range. */
  private readonly v6: Int32Array;

  /** Throws on a range that is not `address/prefix` (or a bare address), or that has host bits set. */
  constructor(cidrs: readonly string[]) {
    const v4: number[] = [];
    const v6: number[] = [];
    for (const cidr of cidrs) {
      const slash = cidr.indexOf("/");
      const addressText = slash === -1 ? cidr : cidr.slice(0, slash);
      const prefixText = slash === -1 ? null : cidr.slice(slash + 1);
      const address4 = parseIPv4(addressText);
      const address6 = address4 === null ? parseIPv6(addressText) : null;
      if (address4 === null && address6 === null) throw new Error(`allow range ${JSON.stringify(cidr)}: not an IPv4 or IPv6 address`);
      const width = address4 !== null ? 32 : 128;
      const prefix = prefixText === null ? width : /^[0-9]{1,3}$/.test(prefixText) ? Number(prefixText) : NaN;
      if (!(prefix >= 0 && prefix <= width)) throw new Error(`allow range ${JSON.stringify(cidr)}: prefix length must be 0..${width}`);
      if (address4 !== null) {
        const mask = prefixMask(prefix);
        if ((address4 & ~mask) !== 0) throw new Error(`allow range ${JSON.stringify(cidr)}: host bits set (the range starts at ${format4(address4 & mask)})`);
        v4.push(address4 | 0, mask);
      } else {
        const masks = [0, 1, 2, 3].map((i) => prefixMask(prefix - 32 * i));
        if (address6!.some((word, i) => (word & ~masks[i]!) !== 0)) throw new Error(`allow range ${JSON.stringify(cidr)}: host bits set`);
        v6.push(...address6!.map((word) => word | 0), ...masks);
      }
    }
    this.v4 = Int32Array.from(v4);
    this.v6 = Int32Array.from(v6);
  }

  /** `address`: the IPv4 address as a 32-bit number (signed or unsigned). */
  containsIPv4(address: number): boolean {
    const v4 = this.v4;
    for (let i = 0; i < v4.length; i += 2) {
      if ((address & v4[i + 1]!) === v4[i]) return true;
    }
    return false;
  }

  /** The IPv6 address as four 32-bit words, most significant first (signed or unsigned). */
  containsIPv6(w0: number, w1: number, w2: number, w3: number): boolean {
    const v6 = this.v6;
    for (let i = 0; i < v6.length; i += 8) {
      if (
        (w0 & v6[i + 4]!) === v6[i] &&
        (w1 & v6[i + 5]!) === v6[i + 1] &&
        (w2 & v6[i + 6]!) === v6[i + 2] &&
        (w3 & v6[i + 7]!) === v6[i + 3]
      ) {
        return true;
      }
    }
    return false;
  }

  /** Textual address (IPv4 dotted quad or IPv6); false for anything that is not an address. */
  contains(address: string): boolean {
    const v4 = parseIPv4(address);
    if (v4 !== null) return this.containsIPv4(v4);
    const v6 = parseIPv6(address);
    return v6 !== null && this.containsIPv6(v6[0], v6[1], v6[2], v6[3]);
  }
}

function format4(value: number): string {
  return [value >>> 24, (value >>> 16) & 255, (value >>> 8) & 255, value & 255].join(".");
}

const parsed = new WeakMap<readonly string[], AllowRanges>();

/** The parsed form of an allow-list, parsed once per list object (configuration is immutable once built). */
export function allowRanges(cidrs: readonly string[]): AllowRanges {
  let ranges = parsed.get(cidrs);
  if (ranges === undefined) {
    ranges = new AllowRanges(cidrs);
    parsed.set(cidrs, ranges);
  }
  return ranges;
}
