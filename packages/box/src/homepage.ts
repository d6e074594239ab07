/**
 * The box homepage: server-rendered plain HTML, no external resource, everything escaped. What the person
 * in front of the box needs: who the box is, where it answers over HTTPS (or why it does not), the
 * certificate's validity, and on an error the exact code, what it means and what to do (BOX_ERRORS).
 *
 * While a check runs, a small inline script polls /api/status and reloads the page when it ends.
 */
import { BOX_ERRORS, BOX_ERROR_CODES } from "@boxcert/shared";
import type { BoxErrorCode } from "@boxcert/shared";
import type { BoxStatus } from "./status.ts";

export function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c] as string);
}

const DAY_MS = 86_400_000;

const STATUS_WORDS: Record<BoxStatus["certificate"]["status"], string> = {
  ok: "Valid",
  renewing: "Valid, renewal pending",
  error: "No valid certificate",
  missing: "No certificate yet",
};

export interface HomepageContext {
  now: number;
  /** Nonce of the inline script, also in the page's Content-Security-Policy. */
  nonce: string;
  /** Shown in the "how to connect" hint. */
  dataDir: string;
}

function row(label: string, valueHtml: string): string {
  return `<tr><th>${escapeHtml(label)}</th><td>${valueHtml}</td></tr>`;
}

function date(iso: string | null): string {
  return iso ? escapeHtml(iso.replace("T", " ").replace(/\.\d+Z$/, " UTC")) : "—";
}

function baseCode(errorCode: string): BoxErrorCode | null {
  const code = errorCode.split(" ")[0] as string;
  return (BOX_ERROR_CODES as readonly string[]).includes(code) ? (code as BoxErrorCode) : null;
}

function errorSection(status: BoxStatus): string {
  const { errorCode, detail } = status.certificate;
  if (!errorCode) return "";
  const code = baseCode(errorCode);
  const info = code ? BOX_ERRORS[code] : null;
  return `<section class="error" id="error">
<h2>Error <code>${escapeHtml(errorCode)}</code></h2>
${info ? `<p>${escapeHtml(info.meaning)}</p>` : ""}
${detail ? `<p class="detail">Detail: <code>${escapeHtml(detail)}</code></p>` : ""}
${info ? `<h3>What to do</h3><ul>${info.remedies.map((r) => `<li>${escapeHtml(r)}</li>`).join("")}</ul>` : ""}
</section>`;
}

function httpsCell(status: BoxStatus): string {
  if (status.httpsUrl) return `<a href="${escapeHtml(status.httpsUrl)}">${escapeHtml(status.httpsUrl)}</a>`;
  if (status.checking) return "None yet: the box is asking for a certificate now.";
  if (status.certificate.errorCode) return `None: the box has no certificate (see the error <a href="#error">below</a>).`;
  return "None yet: the box has not asked for a certificate.";
}

function serverCell(status: BoxStatus, ctx: HomepageContext): string {
  if (status.server) {
    return `${escapeHtml(status.server)}${status.hasCredential ? "" : " (database UUID or subscription code missing)"}`;
  }
  const how = `boxcert box connect --data-dir ${ctx.dataDir} --server URL --db-uuid UUID --enterprise-code CODE`;
  return `Not connected. Connect the box to your database from its IoT page, or run <code>${escapeHtml(how)}</code>`;
}

function certificateSection(status: BoxStatus, now: number): string {
  const c = status.certificate;
  const rows = [row("Status", escapeHtml(STATUS_WORDS[c.status]))];
  if (c.notBefore && c.notAfter) {
    const left = Math.floor((Date.parse(c.notAfter) - now) / DAY_MS);
    const days = left >= 0 ? `${left} day${left === 1 ? "" : "s"} left` : `expired ${-left} day${left === -1 ? "" : "s"} ago`;
    rows.push(row("Valid", `from ${date(c.notBefore)} until ${date(c.notAfter)} (${escapeHtml(days)})`));
    rows.push(row("Renewal from", date(c.renewAfter)));
  }
  if (c.subject) rows.push(row("Subject", escapeHtml(c.subject)));
  if (c.issuer) rows.push(row("Issuer", escapeHtml(c.issuer)));
  if (c.names.length > 0) rows.push(row("Names", c.names.map((n) => `<code>${escapeHtml(n)}</code>`).join(", ")));
  rows.push(row("Last check", status.checking ? "running now…" : date(status.lastCheck)));
  return `<section><h2>HTTPS certificate</h2><table>${rows.join("")}</table>
<p><a href="/?check=1">Check again</a></p></section>`;
}

const POLL_SCRIPT = `(function () {
  function poll() {
    fetch("/api/status", { cache: "no-store" })
      .then(function (r) { return r.json(); })
      .then(function (s) { if (s.checking) setTimeout(poll, 1000); else location.reload(); })
      .catch(function () { setTimeout(poll, 3000); });
  }
  setTimeout(poll, 1000);
})();`;

export function renderHomepage(status: BoxStatus, ctx: HomepageContext): string {
  const rows = [
    row("Name", escapeHtml(status.name)),
    row("IP address", escapeHtml(status.ip)),
    row("Identifier", `<code>${escapeHtml(status.identifier)}</code>`),
    row("HTTP address", `<a href="${escapeHtml(status.httpUrl)}">${escapeHtml(status.httpUrl)}</a>`),
    row("HTTPS address", httpsCell(status)),
    row("Connected server", serverCell(status, ctx)),
    row("Log level", escapeHtml(status.logLevel)),
  ];
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(status.name)} · IoT box</title>
<style>
body { font-family: system-ui, sans-serif; max-width: 52rem; margin: 1.5rem auto; padding: 0 1rem; color: #222; }
table { border-collapse: collapse; width: 100%; }
th { text-align: left; width: 11rem; vertical-align: top; padding: .3rem .6rem .3rem 0; color: #555; font-weight: 600; }
td { padding: .3rem 0; overflow-wrap: anywhere; }
.error { border: 2px solid #b00020; padding: .2rem 1rem; margin-top: 1rem; border-radius: 6px; }
.checking { background: #fff7d6; padding: .5rem 1rem; border-radius: 6px; }
code { font-size: .95em; }
</style>
</head>
<body>
<h1>${escapeHtml(status.name)}</h1>
${status.checking ? `<p class="checking" id="checking">Checking the HTTPS certificate… this page reloads when it is done.</p>` : ""}
<table>${rows.join("")}</table>
${certificateSection(status, ctx.now)}
${errorSection(status)}
${status.checking ? `<script nonce="${escapeHtml(ctx.nonce)}">${POLL_SCRIPT}</script>` : ""}
</body>
</html>
`;
}
