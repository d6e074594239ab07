/**
 * Counters of what the DNS server answered, in the Prometheus text exposition format (version 0.0.4).
 * Recording is a Map increment or two per query; the text is built only when scraped.
 *
 * Label values are bounded: rcodes are the few answer.ts sends, and query types outside a fixed list are
 * counted as "OTHER", so a client sending every type number cannot grow the series without limit; the
 * reasons a TCP connection is closed are a fixed list (tcp.ts).
 */
import type { Answer } from "./zone.ts";
import { TCP_CLOSE_REASONS, type TcpCloseReason } from "./tcp.ts";

const RCODES = ["NOERROR", "NXDOMAIN", "REFUSED", "NOTAUTH", "FORMERR", "NOTIMP", "SERVFAIL", "BADVERS"] as const;
const NOTIFY_OUTCOMES = ["accepted", "refused", "rejected"] as const;
const QTYPES = new Set([
  "A", "AAAA", "TXT", "SOA", "NS", "CAA", "ANY", "CNAME", "MX", "PTR", "SRV", "HTTPS", "SVCB", "DS", "DNSKEY",
  "NSEC", "NSEC3", "RRSIG", "HINFO", "NAPTR", "TLSA", "AXFR", "IXFR", "OPT", "SPF", "URI",
]);

export class DnsMetrics {
  private readonly responses = new Map<string, number>(RCODES.map((rcode) => [rcode, 0]));
  private readonly queries = new Map<string, number>();
  private readonly notifies = new Map<string, number>(NOTIFY_OUTCOMES.map((outcome) => [outcome, 0]));
  private dropped = 0;
  private truncated = 0;
  private readonly tcpClosed = new Map<TcpCloseReason, number>(TCP_CLOSE_REASONS.map((reason) => [reason, 0]));

  /** One call per packet answer() handled, dropped ones included. */
  recordAnswer(answer: Answer): void {
    const qtype = answer.qtype === "-" ? "NONE" : QTYPES.has(answer.qtype) ? answer.qtype : "OTHER";
    this.queries.set(qtype, (this.queries.get(qtype) ?? 0) + 1);
    if (answer.notify !== undefined) this.notifies.set(answer.notify, (this.notifies.get(answer.notify) ?? 0) + 1);
    if (answer.response === null) {
      this.dropped++;
      return;
    }
    this.responses.set(answer.rcode, (this.responses.get(answer.rcode) ?? 0) + 1);
    if (answer.response.length > 2 && (answer.response[2]! & 0x02) !== 0) this.truncated++;
  }

  /** One call per TCP connection the server closed (not those the client closed). */
  recordTcpClose(reason: TcpCloseReason): void {
    this.tcpClosed.set(reason, (this.tcpClosed.get(reason) ?? 0) + 1);
  }

  prometheusText(): string {
    const lines = [
      "# HELP boxcert_dns_queries_total DNS packets received, by query type (NONE: no readable question, OTHER: a rarer type).",
      "# TYPE boxcert_dns_queries_total counter",
      ...[...this.queries].sort(([a], [b]) => a.localeCompare(b)).map(([qtype, n]) => `boxcert_dns_queries_total{qtype="${qtype}"} ${n}`),
      "# HELP boxcert_dns_responses_total DNS responses sent, by response code.",
      "# TYPE boxcert_dns_responses_total counter",
      ...[...this.responses].map(([rcode, n]) => `boxcert_dns_responses_total{rcode="${escapeLabel(rcode)}"} ${n}`),
      "# HELP boxcert_dns_notifies_received_total DNS NOTIFY messages (RFC 1996) received and answered.",
      "# TYPE boxcert_dns_notifies_received_total counter",
      `boxcert_dns_notifies_received_total ${[...this.notifies.values()].reduce((a, b) => a + b, 0)}`,
      "# HELP boxcert_dns_notifies_total DNS NOTIFY messages by outcome (accepted: the zone reloaded; refused: a source outside --allow-notify; rejected: malformed, or not the zone's SOA).",
      "# TYPE boxcert_dns_notifies_total counter",
      ...[...this.notifies].map(([outcome, n]) => `boxcert_dns_notifies_total{outcome="${outcome}"} ${n}`),
      "# HELP boxcert_dns_dropped_total DNS packets dropped unanswered (shorter than a header, or responses).",
      "# TYPE boxcert_dns_dropped_total counter",
      `boxcert_dns_dropped_total ${this.dropped}`,
      "# HELP boxcert_dns_truncated_total UDP responses sent truncated (TC) because the answer did not fit.",
      "# TYPE boxcert_dns_truncated_total counter",
      `boxcert_dns_truncated_total ${this.truncated}`,
      "# HELP boxcert_dns_tcp_closed_total TCP connections the server closed, by reason (idle_timeout; client_limit, global_cap: an idle one closed to make room; refused_*: a new one closed, none being idle).",
      "# TYPE boxcert_dns_tcp_closed_total counter",
      ...[...this.tcpClosed].map(([reason, n]) => `boxcert_dns_tcp_closed_total{reason="${reason}"} ${n}`),
    ];
    return `${lines.join("\n")}\n`;
  }
}

function escapeLabel(value: string): string {
  return value.replace(/[\\"\n]/g, (c) => (c === "\n" ? "\\n" : `\\${c}`));
}

/** The process's counters, as `boxcert dns` wires them (cli.ts); tests make their own DnsMetrics. */
const processMetrics = new DnsMetrics();

export function recordAnswer(answer: Answer): void {
  processMetrics.recordAnswer(answer);
}

export function recordTcpClose(reason: TcpCloseReason): void {
  processMetrics.recordTcpClose(reason);
}

export function prometheusText(): string {
  return processMetrics.prometheusText();
}
