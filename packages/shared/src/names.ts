/**
 * Name encoding of the contract: `192-168-1-42.<label>.<zone>` for IPv4, `fd00--1.<label>.<zone>` for IPv6
 * (dashes for colons, `--` for `::`). Hand-written because it is our own format; node:net validates.
 */
import { isIPv4, isIPv6 } from "node:net";
import { randomBytes } from "node:crypto";

const BASE32 = "abcdefghijklmnopqrstuvwxyz234567";

/** A random label: 16 base32 characters = 80 bits, lowercase, valid as a DNS label. */
export function newLabel(): string {
  const bytes = randomBytes(10);
  let bits = 0;
  let value = 0;
  let out = "";
  for (const byte of bytes) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += BASE32[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  return out;
}

export function isLabel(value: string): boolean {
  return /^[a-z2-7]{16,52}$/.test(value);
}

export function isZone(value: string): boolean {
  return (
    value.length <= 200 &&
    value.split(".").every((part) => /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/.test(part)) &&
    value.includes(".")
  );
}

/** The names a box with this label is owed, in the order certificates carry them. */
export function certificateNames(label: string, zone: string): [string, string] {
  return [`*.${label}.${zone}`, `${label}.${zone}`];
}

/**
 * The same names, in any order (a certificate's SANs against the names a box is owed). Exact, case
 * included: the names boxcert makes are lowercase, and a CSR or certificate that spells them otherwise is
 * not the one it asked for.
 */
export function sameNames(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  const sorted = (names: readonly string[]): string => [...names].sort().join("\n");
  return sorted(a) === sorted(b);
}

/** Encode an IP address as the first DNS label of a box's HTTPS name. */
export function encodeAddress(ip: string): string {
  if (isIPv4(ip)) return ip.replaceAll(".", "-");
  if (isIPv6(ip)) {
    const lower = ip.toLowerCase();
    if (lower.includes(".")) throw new Error(`IPv4-mapped IPv6 addresses are not encodable: ${ip}`);
    return lower.replaceAll(":", "-");
  }
  throw new Error(`not an IP address: ${ip}`);
}

/** Decode the first label of a box name back to an address; null when it is not an encoded address. */
export function decodeAddress(encoded: string): string | null {
  const lower = encoded.toLowerCase();
  if (/^\d{1,3}(-\d{1,3}){3}$/.test(lower)) {
    const ip = lower.replaceAll("-", ".");
    return isIPv4(ip) && ip.split(".").every((p) => String(Number(p)) === p) ? ip : null;
  }
  if (/^[0-9a-f-]+$/.test(lower) && lower.includes("-")) {
    const ip = lower.replaceAll("-", ":");
    return isIPv6(ip) ? ip : null;
  }
  return null;
}

/** The HTTPS host name of a box at this address. */
export function boxHostname(ip: string, label: string, zone: string): string {
  return `${encodeAddress(ip)}.${label}.${zone}`;
}
