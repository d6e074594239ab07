/**
 * `boxcert erp`'s flag values, validated once at the edge with the shared parsers' conventions: each
 * throws a ValueError that asArgument turns into commander's usage error (one line, exit 1).
 */
import { isZone, parseHostPort, ValueError, type HostPort } from "@boxcert/shared";
import { isEnterpriseCode } from "./database.ts";

/** --listen: a host name or an address, and a port (0 lets the system pick one). */
export function parseListen(value: string): HostPort {
  return parseHostPort(value, { ipOnly: false });
}

/** A URL that carries no secret and names a server: http(s), no user, query or fragment. */
function parseServerUrl(flag: string, value: string): URL {
  let url: URL;
  try {
    url = new URL(value.trim());
  } catch {
    throw new ValueError(`${flag} is not a URL (example: https://erp.example.com/)`);
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") throw new ValueError(`${flag} must start with https:// (or http:// for tests), not "${url.protocol}"`);
  // Not repeated in the message: it may be the secret.
  if (url.username || url.password) throw new ValueError(`${flag} must not contain a user name or password`);
  if (url.search || url.hash) throw new ValueError(`${flag} must not contain a query or a fragment`);
  return url;
}

/** --issuer: the issuer's base URL (a path prefix is kept: /v1/database is appended to it). */
export function parseIssuerUrl(value: string): URL {
  return parseServerUrl("--issuer", value);
}

/**
 * --public-url: the origin boxes and browsers use. No path: the pages and the boxes' endpoint are at the
 * root, and a box appends api/iot/boxes to it.
 */
export function parsePublicUrl(value: string): URL {
  const url = parseServerUrl("--public-url", value);
  if (url.pathname !== "/") throw new ValueError("--public-url must be an origin such as https://erp.example.com/ (no path)");
  return url;
}

export function parseEnterpriseCode(value: string): string {
  const code = value.trim();
  if (!isEnterpriseCode(code)) throw new ValueError("--enterprise-code must be 1 to 200 printable characters without spaces");
  return code;
}

/** --zone: the vendor's zone, lower-cased as the issuer's and the box's are. */
export function parseZone(value: string): string {
  const zone = value.trim().toLowerCase();
  if (!isZone(zone)) throw new ValueError(`--zone must be a DNS zone name such as iot.example.net, not "${value}"`);
  return zone;
}
