/**
 * The DNS half of the box's diagnostics: the box's HTTPS name asked of the LAN's resolvers and, directly, of
 * the zone's authoritative servers (node:dns `Resolver`, one per server so each answer is told apart), and
 * the pure verdict over what they said. No DNS library: the box installs without one.
 */
import { Resolver } from "node:dns/promises";
import { BlockList, isIP, isIPv6 } from "node:net";

/** What one server said about one name, as the homepage shows it. */
export type LookupOutcome =
  | "answer" // NOERROR with addresses
  | "nxdomain" // the name does not exist
  | "nodata" // the name exists, no address of this type (or an empty answer)
  | "servfail"
  | "refused"
  | "timeout" // nothing came back in time
  | "unreachable" // connection refused (nothing listens there)
  | "error"; // anything else: a bad server address, a malformed answer...

export interface Lookup {
  /** The server asked, as given to `Resolver.setServers` (`192.168.1.1`, `127.0.0.1:5353`, `[::1]:53`). */
  server: string;
  outcome: LookupOutcome;
  /** The addresses answered (only for "answer"). */
  addresses: string[];
  /** The resolver's error code (`ENOTFOUND`, `EREFUSED`, `ETIMEOUT`...), null for an answer. */
  code: string | null;
  /** Wall time of the query, ms. */
  ms: number;
}

/** How the authoritative servers were found. */
export interface AuthoritativeServers {
  source: "override" | "discovered" | "none";
  /** The NS names of the zone (discovered only). */
  nameServers: string[];
  /** The servers to ask, `HOST:PORT`. */
  servers: string[];
  /** Why discovery found nothing, when it did. */
  error: string | null;
}

/** The part of a node:dns Resolver the diagnostics use (tests may pass their own). */
export interface DnsClient {
  resolve4(name: string): Promise<string[]>;
  resolve6(name: string): Promise<string[]>;
  resolveNs(name: string): Promise<string[]>;
  cancel(): void;
}

/** Makes a client asking exactly these servers, giving up on each query after timeoutMs. */
export type DnsClientFactory = (servers: string[], timeoutMs: number) => DnsClient;

export const systemDnsClient: DnsClientFactory = (servers, timeoutMs) => {
  // tries: 1 so that timeoutMs bounds a query to one server; the deadline below bounds it anyway.
  const resolver = new Resolver({ timeout: Math.max(1, Math.round(timeoutMs)), tries: 1 });
  resolver.setServers(servers);
  return resolver;
};

const OUTCOME_BY_CODE: Record<string, LookupOutcome> = {
  ENOTFOUND: "nxdomain",
  ENODATA: "nodata",
  ESERVFAIL: "servfail",
  EREFUSED: "refused",
  ETIMEOUT: "timeout",
  ECANCELLED: "timeout",
  ECONNREFUSED: "unreachable",
};

export function outcomeOf(code: string | undefined): LookupOutcome {
  return code !== undefined && Object.hasOwn(OUTCOME_BY_CODE, code) ? (OUTCOME_BY_CODE[code] as LookupOutcome) : "error";
}

class Deadline extends Error {
  readonly code = "ETIMEOUT";
}

/** `work` or a timeout after ms, whichever comes first; the client's pending queries are cancelled at the deadline. */
async function within<T>(client: DnsClient | null, work: () => Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      client?.cancel();
      reject(new Deadline(`no answer within ${ms} ms`));
    }, Math.max(0, ms));
  });
  try {
    return await Promise.race([work(), deadline]);
  } finally {
    clearTimeout(timer);
  }
}

function errorCode(err: unknown): string {
  const code = (err as { code?: unknown }).code;
  return typeof code === "string" ? code : "ERROR";
}

/** Asks one server for the name's A (IPv4 box) or AAAA (IPv6 box) records. Never throws. */
export async function lookupAt(server: string, name: string, family: 4 | 6, timeoutMs: number, factory: DnsClientFactory): Promise<Lookup> {
  const started = performance.now();
  const ms = () => Math.round(performance.now() - started);
  let client: DnsClient | null = null;
  try {
    client = factory([server], timeoutMs);
    const dns = client;
    const addresses = await within(dns, () => (family === 6 ? dns.resolve6(name) : dns.resolve4(name)), timeoutMs);
    return { server, outcome: addresses.length > 0 ? "answer" : "nodata", addresses, code: null, ms: ms() };
  } catch (err) {
    const code = errorCode(err);
    return { server, outcome: outcomeOf(code), addresses: [], code, ms: ms() };
  }
}

/** `HOST:PORT` for Resolver.setServers, brackets around IPv6. */
export function serverAddress(host: string, port: number): string {
  return isIPv6(host) ? `[${host}]:${port}` : `${host}:${port}`;
}

/** At most this many authoritative addresses are asked (production zones have 2 to 4). */
const MAX_AUTHORITATIVE = 4;

/**
 * The zone's name servers and their addresses, asked of the LAN resolvers (NS records and a name server's
 * public address pass rebinding filters). IPv4 addresses first; IPv6 ones only when a server has no IPv4.
 */
export async function discoverAuthoritative(zone: string, lanServers: string[], port: number, timeoutMs: number, factory: DnsClientFactory): Promise<AuthoritativeServers> {
  if (lanServers.length === 0) return { source: "none", nameServers: [], servers: [], error: "no DNS server is configured on this box" };
  let client: DnsClient | null = null;
  try {
    client = factory(lanServers, timeoutMs);
    const dns = client;
    return await within(
      dns,
      async () => {
        const nameServers = (await dns.resolveNs(zone)).map((n) => n.toLowerCase().replace(/\.$/, "")).sort();
        const perServer = await Promise.all(
          nameServers.map(async (ns) => {
            const v4 = await dns.resolve4(ns).catch(() => [] as string[]);
            return v4.length > 0 ? v4 : await dns.resolve6(ns).catch(() => [] as string[]);
          }),
        );
        const servers = [...new Set(perServer.flat())].slice(0, MAX_AUTHORITATIVE).map((ip) => serverAddress(ip, port));
        const error = servers.length === 0 ? `the addresses of the name servers of ${zone} (${nameServers.join(", ")}) did not resolve` : null;
        return { source: servers.length > 0 ? ("discovered" as const) : ("none" as const), nameServers, servers, error };
      },
      timeoutMs,
    );
  } catch (err) {
    const code = errorCode(err);
    return { source: "none", nameServers: [], servers: [], error: `looking up the name servers of ${zone} through ${lanServers.join(", ")}: ${code}` };
  }
}

// ---------------------------------------------------------------------------------------------------------
// The verdict: pure, over outcomes.

export type DnsVerdict =
  | "ok" // the LAN resolver answers the box's address (and the zone's server too, or it was not reachable directly)
  | "rebinding" // the zone's server answers the address, the LAN resolver withholds it
  | "wrong-address" // an answer carries another address than the box's
  | "name-unknown" // the zone's server says the name does not exist
  | "authoritative-unreachable" // no answer from the zone's servers, none with the address on the LAN
  | "lan-unreachable" // the zone's server answers, the LAN resolvers do not answer at all
  | "no-hostname"; // no certificate yet: no name to look up

/** What one answer means for the box: its address, another address, a refusal to answer, or silence. */
export type AnswerClass = "match" | "other" | "negative" | "silent";

export function sameAddress(a: string, b: string): boolean {
  const family = isIP(a);
  if (family === 0 || family !== isIP(b)) return false;
  const list = new BlockList();
  list.addAddress(a, family === 6 ? "ipv6" : "ipv4");
  return list.check(b, family === 6 ? "ipv6" : "ipv4");
}

export function classifyLookup(lookup: Lookup, expectedIp: string): AnswerClass {
  switch (lookup.outcome) {
    case "answer":
      if (lookup.addresses.length === 0) return "negative";
      return lookup.addresses.some((a) => sameAddress(a, expectedIp)) ? "match" : "other";
    case "nxdomain":
    case "nodata":
    case "servfail":
    case "refused":
      return "negative";
    default:
      return "silent";
  }
}

export interface VerdictInput {
  hostname: string | null;
  ip: string;
  lan: Lookup[];
  /** Empty when no authoritative server was found (discovery failed). */
  authoritative: Lookup[];
}

/**
 * Which of the LAN's resolvers decide: one resolver giving another address, or refusing, is what some
 * devices on the LAN will see (stub resolvers move on to the next server only on silence).
 */
function lanState(classes: AnswerClass[]): "ok" | "wrong" | "blocked" | "silent" {
  if (classes.includes("other")) return "wrong";
  if (classes.includes("negative")) return "blocked";
  if (classes.includes("match")) return "ok";
  return "silent";
}

function authoritativeState(lookups: Lookup[], ip: string): "ok" | "wrong" | "unknown" | "silent" {
  const classes = lookups.map((l) => classifyLookup(l, ip));
  if (classes.includes("match")) return "ok";
  if (classes.includes("other")) return "wrong";
  // NXDOMAIN / no address from the zone's own server: the name is not (or no longer) in the zone. SERVFAIL or
  // REFUSED from it means that server cannot answer for the zone: as good as unreachable.
  if (lookups.some((l) => l.outcome === "nxdomain" || l.outcome === "nodata")) return "unknown";
  return "silent";
}

export function dnsVerdict(input: VerdictInput): DnsVerdict {
  if (input.hostname === null) return "no-hostname";
  const lan = lanState(input.lan.map((l) => classifyLookup(l, input.ip)));
  const authoritative = authoritativeState(input.authoritative, input.ip);
  if (authoritative === "wrong") return "wrong-address";
  if (authoritative === "unknown") return "name-unknown";
  if (authoritative === "silent") return lan === "ok" ? "ok" : lan === "wrong" ? "wrong-address" : "authoritative-unreachable";
  switch (lan) {
    case "ok":
      return "ok";
    case "blocked":
      return "rebinding";
    case "wrong":
      return "wrong-address";
    case "silent":
      return "lan-unreachable";
  }
}

export type Severity = "ok" | "warn" | "error";

export const DNS_SEVERITY: Record<DnsVerdict, Severity> = {
  ok: "ok",
  rebinding: "warn",
  "wrong-address": "warn",
  "no-hostname": "warn",
  "name-unknown": "error",
  "authoritative-unreachable": "error",
  "lan-unreachable": "error",
};
