/**
 * Network diagnostics for the box's homepage: "reachable by IP but not by the name" (the original page's
 * troubleshooting case) told apart from its causes, plus the issuer's reachability and the box's clock.
 *
 *   DNS     the box's HTTPS name asked of the LAN's resolvers and of the zone's own servers (dns.ts)
 *   issuer  one GET to the issuer, TLS verified; latency and clock offset from its Date header (issuer.ts)
 *
 * Everything runs at once and within timeoutMs; nothing throws: a failure is a field of the report, which is
 * plain JSON. renderDiagnosticsHtml (render.ts) turns it into a fragment in English or Italian.
 */
import { getServers } from "node:dns";
import { isIPv6 } from "node:net";
import type { Clock } from "../clock.ts";
import { systemClock } from "../clock.ts";
import {
  classifyLookup,
  discoverAuthoritative,
  dnsVerdict,
  DNS_SEVERITY,
  lookupAt,
  systemDnsClient,
  type AuthoritativeServers,
  type DnsClientFactory,
  type DnsVerdict,
  type Lookup,
  type Severity,
} from "./dns.ts";
import { CLOCK_SEVERITY, probeIssuer, type IssuerProbe } from "./issuer.ts";
import type { BoxView } from "../web/status.ts";

export { renderDiagnosticsHtml, DIAGNOSTICS_MESSAGES } from "./render.ts";
export { dnsVerdict, classifyLookup, type DnsVerdict, type Lookup, type LookupOutcome, type Severity, type DnsClient, type DnsClientFactory } from "./dns.ts";
export { clockOffset, clockVerdict, CLOCK_WARN_MS, type ClockVerdict, type IssuerProbe } from "./issuer.ts";

export type { Lang } from "../messages/index.ts";

export const DEFAULT_TIMEOUT_MS = 3000;

export interface DiagnosticsInput {
  /** The box's HTTPS host name (`192-168-1-42.<label>.<zone>`), null before the first certificate. */
  hostname: string | null;
  /** The LAN address the box advertises: what the name must resolve to. */
  ip: string;
  /** The zone; derived from the hostname (all but its first two labels) when null. */
  zone: string | null;
  issuerUrl: string;
  /** Extra CA(s) trusted for an https:// issuer, as for the box's real requests. */
  issuerCa?: string | Buffer[] | undefined;
  /** The LAN's resolvers (`IP` or `IP:PORT`); default: the system's (`dns.getServers()`). */
  lanResolvers?: string[];
  /** The zone's authoritative servers as `HOST:PORT`; default: the NS of the zone, found through the LAN resolvers. */
  authoritative?: string[];
  /** Port of the discovered authoritative servers (default 53; tests use another). */
  authoritativePort?: number;
  /** Bound of the whole run, ms (default 3000). */
  timeoutMs?: number;
}

export interface DiagnosticsDeps {
  clock?: Clock;
  dnsClient?: DnsClientFactory;
  /** The system's resolvers (default `dns.getServers()`). */
  systemResolvers?: () => string[];
}

export interface DnsReport {
  verdict: DnsVerdict;
  severity: Severity;
  /** A (IPv4 box) or AAAA (IPv6 box). */
  recordType: "A" | "AAAA";
  /** One row per LAN resolver. */
  lan: Lookup[];
  authoritative: AuthoritativeServers & { lookups: Lookup[] };
  /** For "wrong-address": who answered another address, and which. */
  mismatch: { at: "lan" | "authoritative"; addresses: string[] } | null;
}

export interface DiagnosticsReport {
  /** When the run started, ISO 8601 UTC. */
  checkedAt: string;
  durationMs: number;
  timeoutMs: number;
  hostname: string | null;
  ip: string;
  zone: string | null;
  /** The worst of the parts. */
  severity: Severity;
  dns: DnsReport;
  issuer: IssuerProbe & { severity: Severity; clockSeverity: Severity };
}

/** The zone of a box name: what follows `<address>.<label>.`. */
export function zoneOf(hostname: string): string | null {
  const parts = hostname.split(".");
  return parts.length >= 4 ? parts.slice(2).join(".") : null;
}

/** What to diagnose, from the box's view: its HTTPS host name, the zone of its certificate, its address. */
export function diagnosticsTarget(view: Pick<BoxView, "ip" | "https">): { hostname: string | null; zone: string | null; ip: string } {
  return { hostname: view.https?.host ?? null, zone: view.https?.zone ?? null, ip: view.ip };
}

const WORST: Severity[] = ["ok", "warn", "error"];
function worst(...all: Severity[]): Severity {
  return all.reduce((a, b) => (WORST.indexOf(b) > WORST.indexOf(a) ? b : a), "ok");
}

function mismatchOf(verdict: DnsVerdict, ip: string, lan: Lookup[], authoritative: Lookup[]): DnsReport["mismatch"] {
  if (verdict !== "wrong-address") return null;
  const others = (lookups: Lookup[]) => [...new Set(lookups.filter((l) => classifyLookup(l, ip) === "other").flatMap((l) => l.addresses))];
  const fromAuthoritative = others(authoritative);
  return fromAuthoritative.length > 0 ? { at: "authoritative", addresses: fromAuthoritative } : { at: "lan", addresses: others(lan) };
}

async function diagnoseDns(input: DiagnosticsInput, lanServers: string[], timeoutMs: number, factory: DnsClientFactory): Promise<DnsReport> {
  const family = isIPv6(input.ip) ? 6 : 4;
  const recordType = family === 6 ? "AAAA" : "A";
  const zone = input.zone ?? (input.hostname ? zoneOf(input.hostname) : null);
  const hostname = input.hostname;
  if (hostname === null) {
    return {
      verdict: "no-hostname",
      severity: DNS_SEVERITY["no-hostname"],
      recordType,
      lan: [],
      authoritative: { source: "none", nameServers: [], servers: [], error: null, lookups: [] },
      mismatch: null,
    };
  }
  const started = performance.now();
  const left = () => Math.max(1, timeoutMs - (performance.now() - started));
  const lanLookups = Promise.all(lanServers.map((server) => lookupAt(server, hostname, family, timeoutMs, factory)));
  const authoritativeLookups = (async () => {
    const found: AuthoritativeServers =
      input.authoritative && input.authoritative.length > 0
        ? { source: "override", nameServers: [], servers: [...input.authoritative], error: null }
        : zone
          ? await discoverAuthoritative(zone, lanServers, input.authoritativePort ?? 53, timeoutMs / 2, factory)
          : { source: "none", nameServers: [], servers: [], error: "the zone is not known" };
    const remaining = left();
    const lookups = await Promise.all(found.servers.map((server) => lookupAt(server, hostname, family, remaining, factory)));
    return { ...found, lookups };
  })();
  const [lan, authoritative] = await Promise.all([lanLookups, authoritativeLookups]);
  const verdict = dnsVerdict({ hostname, ip: input.ip, lan, authoritative: authoritative.lookups });
  return { verdict, severity: DNS_SEVERITY[verdict], recordType, lan, authoritative, mismatch: mismatchOf(verdict, input.ip, lan, authoritative.lookups) };
}

/** Runs every check at once, within input.timeoutMs (default 3 s). Never throws. */
export async function runDiagnostics(input: DiagnosticsInput, deps: DiagnosticsDeps = {}): Promise<DiagnosticsReport> {
  const clock = deps.clock ?? systemClock;
  const factory = deps.dnsClient ?? systemDnsClient;
  const timeoutMs = input.timeoutMs && input.timeoutMs > 0 ? input.timeoutMs : DEFAULT_TIMEOUT_MS;
  const checkedAt = clock();
  const started = performance.now();
  let lanServers: string[];
  try {
    lanServers = input.lanResolvers ?? (deps.systemResolvers ?? getServers)();
  } catch {
    lanServers = [];
  }
  const [dns, issuer] = await Promise.all([
    diagnoseDns(input, lanServers, timeoutMs, factory).catch((err: unknown): DnsReport => failedDns(input.ip, err)),
    probeIssuer({ issuerUrl: input.issuerUrl, issuerCa: input.issuerCa, timeoutMs, clock }),
  ]);
  const issuerSeverity: Severity = issuer.reachable ? "ok" : "error";
  const clockSeverity = CLOCK_SEVERITY[issuer.clock];
  // Unknown clock is only worth a warning when the issuer answered (no Date header); unreachable says enough.
  const clockCounts = issuer.reachable ? clockSeverity : "ok";
  return {
    checkedAt: new Date(checkedAt).toISOString(),
    durationMs: Math.round(performance.now() - started),
    timeoutMs,
    hostname: input.hostname,
    ip: input.ip,
    zone: input.zone ?? (input.hostname ? zoneOf(input.hostname) : null),
    severity: worst(dns.severity, issuerSeverity, clockCounts),
    dns,
    issuer: { ...issuer, severity: issuerSeverity, clockSeverity },
  };
}

/** Not expected (the lookups never throw), but the report must exist whatever happens. */
function failedDns(ip: string, err: unknown): DnsReport {
  return {
    verdict: "authoritative-unreachable",
    severity: "error",
    recordType: isIPv6(ip) ? "AAAA" : "A",
    lan: [],
    authoritative: { source: "none", nameServers: [], servers: [], error: `diagnostics failed: ${(err as Error).message}`, lookups: [] },
    mismatch: null,
  };
}
