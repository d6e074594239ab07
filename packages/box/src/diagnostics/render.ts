/**
 * The diagnostics report as an HTML fragment for the box's homepage, in English or Italian: a heading, one
 * verdict box per finding (class `diag-ok`, `diag-warn` or `diag-error`) with what to do, and a table of
 * what each server said. Every value is escaped; the texts are plain templates where `{name}` takes a value
 * and `backticks` mark code, so a value can never add markup.
 */
import { escapeHtml } from "@boxcert/shared";
import { messages } from "../messages/index.ts";
import type { DiagnosticsKey, Lang } from "../messages/index.ts";
import type { DiagnosticsReport } from "./index.ts";
import type { DnsVerdict, Lookup, LookupOutcome, Severity } from "./dns.ts";
import type { ClockVerdict } from "./issuer.ts";

/** Every text of the fragment, per language (a test checks both have the same keys and placeholders). */
export const DIAGNOSTICS_MESSAGES: Record<Lang, Record<DiagnosticsKey, string>> = { en: messages("en").diagnostics, it: messages("it").diagnostics };

type Vars = Record<string, string | number>;

/** A template as HTML: `{name}` takes vars[name], `...` becomes <code>; everything escaped. */
export function fill(template: string, vars: Vars = {}): string {
  return template
    .split("`")
    .map((segment, i) => {
      const text = escapeHtml(segment.replace(/\{(\w+)\}/g, (_, name: string) => (Object.hasOwn(vars, name) ? String(vars[name]) : "")));
      return i % 2 === 1 ? `<code>${text}</code>` : text;
    })
    .join("");
}

function t(lang: Lang, key: DiagnosticsKey, vars?: Vars): string {
  return fill(messages(lang).diagnostics[key], vars);
}

function box(severity: Severity, check: string, verdict: string, title: string, body: string, steps: string[] = [], notes: string[] = []): string {
  const list = steps.length > 0 ? `<ul>${steps.map((s) => `<li>${s}</li>`).join("")}</ul>` : "";
  const extra = notes.map((n) => `<p>${n}</p>`).join("");
  return `<div class="diag-box diag-${severity}" data-check="${escapeHtml(check)}" data-verdict="${escapeHtml(verdict)}"><h3>${title}</h3><p>${body}</p>${list}${extra}</div>`;
}

const REBINDING_STEPS: DiagnosticsKey[] = ["dns.rebinding.dnsmasq", "dns.rebinding.openwrt", "dns.rebinding.unbound", "dns.rebinding.fritzbox", "dns.rebinding.pfsense"];
const REBINDING_NOTES: DiagnosticsKey[] = ["dns.rebinding.publicDns", "dns.rebinding.devices", "dns.rebinding.terminals"];

function dnsBox(report: DiagnosticsReport, lang: Lang): string {
  const { dns } = report;
  const verdict: DnsVerdict = dns.verdict;
  const vars: Vars = {
    hostname: report.hostname ?? "",
    ip: report.ip,
    zone: report.zone ?? "",
    servers: dns.lan.map((l) => l.server).join(", ") || messages(lang).diagnostics.none,
    authoritative: dns.authoritative.servers.join(", ") || messages(lang).diagnostics.none,
    addresses: dns.mismatch?.addresses.join(", ") ?? "",
  };
  const title = t(lang, `dns.${verdict}.title`);
  switch (verdict) {
    case "rebinding":
      return box(
        dns.severity,
        "dns",
        verdict,
        title,
        t(lang, "dns.rebinding.body", vars),
        REBINDING_STEPS.map((k) => t(lang, k, vars)),
        REBINDING_NOTES.map((k) => t(lang, k, vars)),
      );
    case "wrong-address":
      return box(dns.severity, "dns", verdict, title, t(lang, dns.mismatch?.at === "authoritative" ? "dns.wrong-address.authoritative" : "dns.wrong-address.lan", vars));
    case "ok": {
      const reachedDirectly = dns.authoritative.lookups.some((l) => l.outcome === "answer");
      return box(dns.severity, "dns", verdict, title, t(lang, "dns.ok.body", vars), [], reachedDirectly ? [] : [t(lang, "dns.ok.noDirect")]);
    }
    default:
      return box(dns.severity, "dns", verdict, title, t(lang, `dns.${verdict}.body`, vars));
  }
}

function issuerHost(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return url;
  }
}

function relation(lang: Lang, offsetMs: number): string {
  const seconds = Math.round(Math.abs(offsetMs) / 1000);
  return messages(lang).diagnostics[offsetMs >= 0 ? "clock.behind" : "clock.ahead"].replace("{seconds}", String(seconds));
}

function issuerBoxes(report: DiagnosticsReport, lang: Lang): string {
  const { issuer } = report;
  if (!issuer.reachable) {
    return box("error", "issuer", "unreachable", t(lang, "issuer.error.title"), t(lang, "issuer.error.body", { error: issuer.error ?? "", host: issuerHost(issuer.url) }));
  }
  const reached = box("ok", "issuer", "ok", t(lang, "issuer.ok.title"), t(lang, "issuer.ok.body", { url: issuer.url, status: issuer.status ?? "", latency: issuer.latencyMs ?? "" }));
  const verdict: ClockVerdict = issuer.clock;
  const vars = { relation: issuer.clockOffsetMs === null ? "" : relation(lang, issuer.clockOffsetMs) };
  return reached + box(issuer.clockSeverity, "clock", verdict, t(lang, `clock.${verdict}.title`), t(lang, `clock.${verdict}.body`, vars));
}

function outcomeText(lang: Lang, lookup: Lookup): string {
  const key: `outcome.${LookupOutcome}` = `outcome.${lookup.outcome}`;
  return t(lang, key, { addresses: lookup.addresses.join(", "), code: lookup.code ?? "" });
}

function row(cells: string[]): string {
  const [head, ...rest] = cells;
  return `<tr><th scope="row">${head}</th>${rest.map((c) => `<td>${c}</td>`).join("")}</tr>`;
}

function lookupRow(lang: Lang, label: DiagnosticsKey, lookup: Lookup): string {
  return row([t(lang, label), `<code>${escapeHtml(lookup.server)}</code>`, outcomeText(lang, lookup), `${lookup.ms} ms`]);
}

function table(report: DiagnosticsReport, lang: Lang): string {
  const rows: string[] = [];
  const { dns, issuer } = report;
  if (report.hostname !== null) {
    if (dns.lan.length === 0) rows.push(row([t(lang, "row.lan"), "—", t(lang, "lan.none"), ""]));
    for (const lookup of dns.lan) rows.push(lookupRow(lang, "row.lan", lookup));
    if (dns.authoritative.lookups.length === 0) {
      rows.push(row([t(lang, "row.authoritative"), "—", t(lang, "authoritative.none", { error: dns.authoritative.error ?? "" }), ""]));
    }
    for (const lookup of dns.authoritative.lookups) rows.push(lookupRow(lang, "row.authoritative", lookup));
  }
  rows.push(
    row([
      t(lang, "row.issuer"),
      `<code>${escapeHtml(issuer.url)}</code>`,
      issuer.reachable ? escapeHtml(`HTTP ${issuer.status ?? ""}`) : escapeHtml(issuer.error ?? ""),
      issuer.latencyMs === null ? "" : `${issuer.latencyMs} ms`,
    ]),
  );
  if (issuer.clockOffsetMs !== null) {
    const sign = issuer.clockOffsetMs >= 0 ? "+" : "−";
    rows.push(row([t(lang, "row.clock"), escapeHtml(issuer.serverDate ?? ""), escapeHtml(relation(lang, issuer.clockOffsetMs)), `${sign}${Math.round(Math.abs(issuer.clockOffsetMs) / 1000)} s ±1 s`]));
  }
  const head = `<thead><tr>${(["col.check", "col.server", "col.result", "col.time"] as const).map((k) => `<th scope="col">${t(lang, k)}</th>`).join("")}</tr></thead>`;
  return `<table class="diag-table">${head}<tbody>${rows.join("")}</tbody></table>`;
}

function when(iso: string): string {
  return iso.replace("T", " ").replace(/\.\d+Z$/, " UTC").replace(/Z$/, " UTC");
}

/** The report as an escaped HTML fragment: h2, verdict boxes, table. */
export function renderDiagnosticsHtml(report: DiagnosticsReport, lang: Lang): string {
  const language: Lang = lang === "it" ? "it" : "en";
  return `<section class="diagnostics" id="diagnostics" lang="${language}" data-severity="${escapeHtml(report.severity)}">
<h2>${t(language, "title")}</h2>
<p class="diag-intro">${t(language, "intro", { checkedAt: when(report.checkedAt), durationMs: report.durationMs })}</p>
${dnsBox(report, language)}
${issuerBoxes(report, language)}
${table(report, language)}
</section>`;
}
