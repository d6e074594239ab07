/**
 * What the dns component answers from: its configuration (flags) and a snapshot of the store (labels and
 * challenge values), refreshed on change by zone-loader.ts, never read per query.
 */

export interface ZoneSnapshot {
  /** Moves whenever boxes or challenge values change; the SOA serial is derived from it. */
  version: number;
  /** Labels of boxes that exist and are neither revoked nor freed (lowercase). */
  activeLabels: ReadonlySet<string>;
  /** `_acme-challenge.<label>.<zone>` TXT values, by label (lowercase). */
  challenges: ReadonlyMap<string, readonly string[]>;
  /** CA domains the issuer's ACME directories name (published in the store), added to the `--caa` ones. */
  caa?: readonly string[];
}

export interface NameServer {
  /** Absolute name, lowercase, no trailing dot, e.g. `ns1.iot.example.net` (may be outside the zone). */
  name: string;
  /** Its addresses; answered at the apex as glue when the name is inside the zone. */
  addresses: string[];
}

export interface DnsConfig {
  /** Lowercase, no trailing dot, e.g. `iot.example.net`. */
  zone: string;
  nameServers: NameServer[];
  /** CA domains for `CAA 0 issue "<domain>"` at the apex (every CA the issuer may use). */
  caa: string[];
  /** CIDR ranges an encoded address must fall in to be answered. */
  allow: string[];
  /** CIDR ranges a DNS NOTIFY is accepted from (`--allow-notify`); DEFAULT_ALLOW_NOTIFY when left out. */
  allowNotify?: string[];
  ttl: { address: number; txt: number; apex: number; negative: number };
  /** SOA RNAME, e.g. `hostmaster.iot.example.net`. */
  hostmaster: string;
}

/** Private and local ranges answered by default (RFC 1918, CGNAT, link-local, loopback, ULA). */
export const DEFAULT_ALLOW = [
  "10.0.0.0/8",
  "172.16.0.0/12",
  "192.168.0.0/16",
  "100.64.0.0/10",
  "169.254.0.0/16",
  "127.0.0.0/8",
  "fc00::/7",
  "fe80::/10",
  "::1/128",
];

/** NOTIFY sources accepted by default: this machine only (an issuer elsewhere needs `--allow-notify`). */
export const DEFAULT_ALLOW_NOTIFY: readonly string[] = ["127.0.0.0/8", "::1/128"];

export const DEFAULT_TTL = { address: 300, txt: 30, apex: 3600, negative: 60 };

/** Where the answer function is told a query came from. */
export interface QuerySource {
  address: string;
  port: number;
  transport: "udp" | "tcp";
}

/** The result of answering one packet: bytes to send (null = drop) and one log line. */
export interface Answer {
  response: Buffer | null;
  /** One line, for the debug log (warning-level problems are logged by the caller from `rcode`). */
  log: string;
  /** Response code name (NOERROR, NXDOMAIN, REFUSED, NOTAUTH, FORMERR, NOTIMP, BADVERS, SERVFAIL) or "DROP". */
  rcode: string;
  /** Question type name, or "-" when there was no readable question. */
  qtype: string;
  /**
   * For a NOTIFY (opcode 4) only: `accepted` (the zone should be reloaded now), `refused` (a source outside
   * the allowed ranges), `rejected` (malformed, or not our zone's SOA).
   */
  notify?: "accepted" | "refused" | "rejected";
}
