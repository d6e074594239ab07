/**
 * The command line of `boxcert dns`, validated once at the edge: every value below this file is typed and
 * already checked (zone syntax, NAME=IP pairs, CIDR ranges, HOST:PORT, TCP limits).
 */
import { isIP } from "node:net";
import { InvalidArgumentError } from "commander";
import { isZone, parseDuration, parseHostPort, ValueError, type HostPort, type LogLevel } from "@boxcert/shared";
import { DEFAULT_TCP_LIMITS, type TcpLimits } from "./tcp.ts";
import { DEFAULT_ALLOW, DEFAULT_ALLOW_NOTIFY, DEFAULT_TTL, type DnsConfig, type NameServer } from "./zone.ts";
import { AllowRanges } from "./ranges.ts";

/** The flags as commander hands them over (after the per-flag parsers below). */
export interface DnsFlags {
  zone: string;
  listen: HostPort;
  store: string;
  ns?: Array<{ name: string; address: string | null }>;
  caa?: string[];
  allow?: string[];
  /** `--allow-notify`, repeatable: CIDR ranges a DNS NOTIFY is accepted from. */
  allowNotify?: string[];
  hostmaster?: string;
  metrics?: HostPort;
  logLevel: LogLevel;
  /** TCP limits; DEFAULT_TCP_LIMITS for those left out. */
  tcpMaxConnections?: number;
  tcpMaxPerClient?: number;
  /** Milliseconds. */
  tcpIdleTimeout?: number;
  /** `--poll-interval`, milliseconds: how often the store's zone version is read (POLL_INTERVAL_MS). */
  pollInterval?: number;
}

/**
 * The most connections a limit may allow: each connection may hold two 64 KiB frames, so more could hold
 * gigabytes, and would pass a usual descriptor limit long before.
 */
export const MAX_TCP_CONNECTIONS = 65_535;
/** A client far away needs a round trip or two between queries on one connection. */
const MIN_IDLE_TIMEOUT_MS = 1000;
/** NSD's default; longer only lets idle connections pile up (RFC 7766 6.2.3 speaks of seconds). */
const MAX_IDLE_TIMEOUT_MS = 120_000;

/** Commander's accumulator for repeatable flags (`--ns a=1 --ns b=2`). */
export function collect<T>(parse: (value: string) => T): (value: string, previous: T[] | undefined) => T[] {
  return (value, previous) => [...(previous ?? []), parse(value)];
}

/** A domain name given on the command line: lowercase, no trailing dot (`Ns1.Example.NET.` is accepted). */
export function parseDomainName(value: string, what = "domain name"): string {
  const name = value.trim().toLowerCase().replace(/\.$/, "");
  if (!isZone(name)) throw new InvalidArgumentError(`"${value}" is not a ${what} (example: iot.example.net)`);
  return name;
}

export function parseZone(value: string): string {
  return parseDomainName(value, "DNS zone name");
}

/**
 * `IP:PORT` or `[IPv6]:PORT`, an address and not a name: a DNS server binds addresses, and the UDP socket's
 * family (udp4/udp6) must be known before anything is resolved.
 */
export function parseAddressPort(value: string): HostPort {
  return parseHostPort(value, { ipOnly: true });
}

/** `--ns NAME=IP`; the address may be left out only for a name server outside the zone (no glue needed). */
export function parseNameServer(value: string): { name: string; address: string | null } {
  const [rawName, address, ...rest] = value.split("=");
  if (rest.length > 0 || rawName === undefined) throw new InvalidArgumentError(`--ns "${value}" is not NAME=IP (example: ns1.iot.example.net=192.0.2.53)`);
  const name = parseDomainName(rawName, "name server name");
  if (address === undefined) return { name, address: null };
  if (isIP(address.trim()) === 0) throw new InvalidArgumentError(`--ns "${value}": "${address}" is not an IP address`);
  return { name, address: address.trim().toLowerCase() };
}

/** One CIDR range (`10.0.0.0/8`, `fd00::/8`); a bare address is a one-address range. */
export function parseCidr(value: string): string {
  const [address = "", prefix, ...rest] = value.trim().split("/");
  const family = isIP(address);
  const max = family === 4 ? 32 : 128;
  const bits = prefix === undefined ? max : Number(prefix);
  if (family === 0 || rest.length > 0 || (prefix !== undefined && !/^\d{1,3}$/.test(prefix)) || bits > max) {
    throw new InvalidArgumentError(`"${value}" is not a CIDR range (examples: 10.0.0.0/8, fd00::/8)`);
  }
  return `${address.toLowerCase()}/${bits}`;
}

/** `--allow 10.0.0.0/8,192.168.0.0/16`: the list replaces the default ranges. */
export function parseAllow(value: string): string[] {
  const ranges = value.split(",").map((part) => part.trim()).filter((part) => part !== "");
  if (ranges.length === 0) throw new InvalidArgumentError(`--allow "${value}" names no range`);
  return ranges.map(parseCidr);
}

/** `--tcp-max-connections`, `--tcp-max-per-client`: a whole number of connections. */
export function parseConnectionCount(value: string): number {
  const text = value.trim();
  const count = Number(text);
  if (!/^\d{1,6}$/.test(text) || count < 1 || count > MAX_TCP_CONNECTIONS) {
    throw new ValueError(`"${value}" is not a number of connections from 1 to ${MAX_TCP_CONNECTIONS}`);
  }
  return count;
}

/** `--tcp-idle-timeout`: a duration from 1s to 2m. */
export function parseIdleTimeout(value: string): number {
  return parseDuration(value, { min: MIN_IDLE_TIMEOUT_MS, max: MAX_IDLE_TIMEOUT_MS });
}

/** `--poll-interval`: 50ms to 10m. Shorter would read the store for little; longer leaves a change unseen for long when a NOTIFY is lost. */
export function parsePollInterval(value: string): number {
  return parseDuration(value, { min: 50, max: 600_000 });
}

/** The TCP listener's limits, from the flags and DEFAULT_TCP_LIMITS; a per-client limit above the cap is a mistake. */
export function buildTcpLimits(flags: DnsFlags): TcpLimits {
  const limits: TcpLimits = {
    maxConnections: flags.tcpMaxConnections ?? DEFAULT_TCP_LIMITS.maxConnections,
    maxPerClient: flags.tcpMaxPerClient ?? Math.min(DEFAULT_TCP_LIMITS.maxPerClient, flags.tcpMaxConnections ?? Infinity),
    idleTimeoutMs: flags.tcpIdleTimeout ?? DEFAULT_TCP_LIMITS.idleTimeoutMs,
  };
  if (limits.maxPerClient > limits.maxConnections) {
    throw new Error(`--tcp-max-per-client ${limits.maxPerClient} is above --tcp-max-connections ${limits.maxConnections}: lower it, or raise the cap`);
  }
  return limits;
}

function isUnspecified(host: string): boolean {
  return host === "0.0.0.0" || /^[0:]+$/.test(host);
}

function inZone(name: string, zone: string): boolean {
  return name === zone || name.endsWith(`.${zone}`);
}

/** The answer function's configuration, from the flags and the defaults docs/dns.md lists. */
export function buildDnsConfig(flags: DnsFlags): DnsConfig {
  const zone = flags.zone;
  let given = flags.ns;
  if (!given || given.length === 0) {
    if (isUnspecified(flags.listen.host)) {
      throw new Error(`--listen ${flags.listen.host} is every address, so it says nothing about where resolvers reach this server: give --ns NAME=IP`);
    }
    given = [{ name: `ns1.${zone}`, address: flags.listen.host }];
  }
  // Several --ns flags with one name are one name server with several addresses (A and AAAA glue).
  const byName = new Map<string, NameServer>();
  for (const { name, address } of given) {
    const server = byName.get(name) ?? { name, addresses: [] };
    if (address !== null && !server.addresses.includes(address)) server.addresses.push(address);
    byName.set(name, server);
  }
  for (const server of byName.values()) {
    if (inZone(server.name, zone) && server.addresses.length === 0) {
      throw new Error(`--ns ${server.name} is inside the zone ${zone}: give its address (--ns ${server.name}=IP) so the apex can answer its glue`);
    }
  }
  const allowNotify = flags.allowNotify && flags.allowNotify.length > 0 ? [...new Set(flags.allowNotify)] : [...DEFAULT_ALLOW_NOTIFY];
  try {
    new AllowRanges(allowNotify);
  } catch (err) {
    throw new Error(`--allow-notify: ${(err as Error).message}`, { cause: err });
  }
  return {
    zone,
    nameServers: [...byName.values()],
    caa: flags.caa && flags.caa.length > 0 ? [...new Set(flags.caa)] : ["letsencrypt.org"],
    allow: flags.allow ?? [...DEFAULT_ALLOW],
    allowNotify,
    ttl: { ...DEFAULT_TTL },
    hostmaster: flags.hostmaster ?? `hostmaster.${zone}`,
  };
}
