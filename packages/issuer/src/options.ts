/**
 * The issuer's command-line values, validated once at the edge with the shared parsers; their errors
 * become commander's InvalidArgumentError (one line, exit 1).
 */
import { InvalidArgumentError } from "commander";
import { parseDuration, parseHostPort, type HostPort } from "@boxcert/shared";

/** --listen: a host name or an address, and a port (0 lets the system pick one). */
export function parseListen(value: string): HostPort {
  return parseHostPort(value, { ipOnly: false });
}

/** --acme-dns-server: an authoritative server of the zone, by name or address, on a real port. */
export function parseDnsServer(value: string): HostPort {
  return parseHostPort(value, { ipOnly: false, minPort: 1 });
}

/** --cert-lifetime: at least a second. */
export function parseLifetime(value: string): number {
  return parseDuration(value, { min: 1000 });
}

export function parsePositiveInt(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < 1) throw new InvalidArgumentError(`"${value}" is not a positive whole number`);
  return n;
}
