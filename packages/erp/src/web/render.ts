/**
 * The pages, server-rendered, in English or Italian (../messages/), every value escaped with the shared
 * escapeHtml; one stylesheet and one script per page, served by the database (/static/), the script with
 * the page's CSP nonce. Pure functions of what the routes gather (app.ts).
 *
 *   login    the operator's password
 *   iot      the database (UUID, kind, the issuer's answer), Connect a box (a token), the boxes
 *   pos      each box called from the browser through @boxcert/web: its status, a test request, and why
 *            not, or that it works degraded over the box's IP (static/pos.js, an ES module)
 *   message  a refused request: why, and the way back
 */
import { escapeHtml } from "@boxcert/shared";
import { LANGUAGES, messages, type Lang, type Messages } from "../messages/index.ts";
import type { DatabaseRecord } from "../database.ts";
import type { ReportStatus } from "../issuer-report.ts";
import type { BoxRecord } from "../store.ts";
import type { IssuedPairing } from "../pairing.ts";
import { boxHttpPort } from "./box-addresses.ts";
import { CSRF_FIELD } from "./guard.ts";

const DAY_MS = 86_400_000;

export type PagePath = "/iot" | "/pos" | "/login";

export interface PageContext {
  lang: Lang;
  now: number;
  nonce: string;
  csrfToken: string;
  /** Versioned paths of the stylesheet and scripts; `web` is the browser module @boxcert/web. */
  assets: { css: string; iot: string; pos: string; web: string };
  /** False with --insecure-no-login: the pages say so. */
  loginRequired: boolean;
  loggedIn: boolean;
}

export interface IotView {
  database: DatabaseRecord;
  report: ReportStatus;
  boxes: readonly BoxRecord[];
  /** The token just made by "Connect a box", shown once. */
  pairing: IssuedPairing | null;
}

/** `2026-11-26 10:00 UTC`. */
export function formatDate(iso: string): string {
  return iso.replace("T", " ").replace(/:\d\d(\.\d+)?Z$/, " UTC");
}

export function daysLeft(expiry: string, now: number, t: Messages): string {
  const days = Math.floor((Date.parse(expiry) - now) / DAY_MS);
  return days >= 0 ? t.daysLeft(days) : t.expiredAgo(-days);
}

function csrf(ctx: PageContext): string {
  return `<input type="hidden" name="${CSRF_FIELD}" value="${escapeHtml(ctx.csrfToken)}">`;
}

function languageSwitch(ctx: PageContext, path: PagePath): string {
  const t = messages(ctx.lang);
  const links = LANGUAGES.map((lang) =>
    lang === ctx.lang
      ? `<strong lang="${lang}">${escapeHtml(messages(lang).langName)}</strong>`
      : `<a href="${path}?lang=${lang}" lang="${lang}" hreflang="${lang}">${escapeHtml(messages(lang).langName)}</a>`,
  );
  return `<nav class="lang" aria-label="${escapeHtml(t.switchLanguage)}">${links.join(" · ")}</nav>`;
}

function navigation(ctx: PageContext, path: PagePath): string {
  const t = messages(ctx.lang);
  if (path === "/login") return "";
  const link = (to: PagePath, label: string): string => (to === path ? `<strong>${escapeHtml(label)}</strong>` : `<a href="${to}">${escapeHtml(label)}</a>`);
  const logout = ctx.loginRequired && ctx.loggedIn
    ? `<form method="post" action="/logout" class="inline">${csrf(ctx)}<button type="submit" class="linkish" id="logout">${escapeHtml(t.nav.logout)}</button></form>`
    : "";
  return `<nav class="pages">${link("/iot", t.nav.iot)} ${link("/pos", t.nav.pos)} ${logout}</nav>`;
}

interface LayoutOptions {
  path: PagePath;
  title: string;
  main: string;
  script?: string;
  /** The script is an ES module importing these bare names (an import map, with the page's nonce). */
  imports?: Record<string, string>;
}

/**
 * The page's script tags. A module's import map names the versioned URL of what it imports, so the
 * module's own file never changes with it; inline, so it carries the nonce (script-src allows nothing
 * else), and the module's imports are allowed because a nonced module passes its nonce to them.
 */
function scriptTags(ctx: PageContext, options: LayoutOptions): string {
  if (!options.script) return "";
  const nonce = escapeHtml(ctx.nonce);
  if (!options.imports) return `<script nonce="${nonce}" src="${escapeHtml(options.script)}"></script>`;
  // In a <script> element only "</script" and "<!--" could end it early: JSON escapes "<" so neither can occur.
  const map = JSON.stringify({ imports: options.imports }).replaceAll("<", "\\u003c");
  return `<script type="importmap" nonce="${nonce}">${map}</script>\n<script type="module" nonce="${nonce}" src="${escapeHtml(options.script)}"></script>`;
}

function layout(ctx: PageContext, options: LayoutOptions): string {
  const t = messages(ctx.lang);
  const warning = ctx.loginRequired ? "" : `<p class="warning" id="no-login">${escapeHtml(t.noLogin)}</p>`;
  const script = scriptTags(ctx, options);
  return `<!doctype html>
<html lang="${ctx.lang}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(t.title(options.title))}</title>
<link rel="stylesheet" href="${escapeHtml(ctx.assets.css)}">
</head>
<body>
<header><h1>${escapeHtml(t.appName)}</h1>${navigation(ctx, options.path)}${languageSwitch(ctx, options.path)}</header>
<main>
${warning}
<h2>${escapeHtml(options.title)}</h2>
${options.main}
</main>
${script}
</body>
</html>
`;
}

export function renderLoginPage(ctx: PageContext, next: PagePath): string {
  const t = messages(ctx.lang);
  const main = `<p>${escapeHtml(t.loginIntro)}</p>
<form method="post" action="/login" class="login">${csrf(ctx)}<input type="hidden" name="next" value="${escapeHtml(next)}">
<label>${escapeHtml(t.password)}<input type="password" name="password" id="password" required autocomplete="current-password"></label>
<button type="submit" id="login">${escapeHtml(t.login)}</button></form>`;
  return layout(ctx, { path: "/login", title: t.loginTitle, main });
}

function issuerAnswer(ctx: PageContext, report: ReportStatus): string {
  const t = messages(ctx.lang);
  const parts: string[] = [];
  const { recorded, failure } = report;
  if (recorded) {
    parts.push(`<p id="recorded-kind" data-kind="${escapeHtml(recorded.kind)}">${escapeHtml(t.recordedAs(t.kinds[recorded.kind], recorded.subscription, formatDate(recorded.at)))}</p>`);
    if (recorded.kind !== "production") parts.push(`<p class="warning">${escapeHtml(t.notProduction)}</p>`);
  } else if (!failure) {
    parts.push(`<p id="recorded-kind">${escapeHtml(t.notReported)}</p>`);
  }
  if (failure) parts.push(`<p class="error" id="report-failure">${escapeHtml(t.reportFailed(failure.detail, formatDate(failure.nextAttemptAt)))}</p>`);
  return parts.join("\n");
}

function databaseSection(ctx: PageContext, view: IotView): string {
  const t = messages(ctx.lang);
  const { database } = view;
  return `<section id="database"><h3>${escapeHtml(t.databaseHeading)}</h3><table>
<tr><th scope="row">${escapeHtml(t.dbUuid)}</th><td><code id="db-uuid">${escapeHtml(database.dbUuid)}</code></td></tr>
<tr><th scope="row">${escapeHtml(t.declaredKind)}</th><td id="declared-kind">${escapeHtml(t.kinds[database.kind])}</td></tr>
<tr><th scope="row">${escapeHtml(t.issuerAnswer)}</th><td>${issuerAnswer(ctx, view.report)}</td></tr></table></section>`;
}

function connectSection(ctx: PageContext, pairing: IssuedPairing | null): string {
  const t = messages(ctx.lang);
  const token = pairing
    ? `<label for="token">${escapeHtml(t.tokenLabel)}</label>
<div class="token"><input type="text" id="token" readonly value="${escapeHtml(pairing.token)}" spellcheck="false">
<button type="button" id="copy-token" data-copy="token" data-copied="${escapeHtml(t.copied)}">${escapeHtml(t.copy)}</button></div>
<p id="token-validity">${escapeHtml(t.tokenValidUntil(formatDate(pairing.expiresAt)))}</p>`
    : "";
  return `<section id="connect"><h3>${escapeHtml(t.connectHeading)}</h3><p>${escapeHtml(t.connectIntro)}</p>
<form method="post" action="/iot/connect">${csrf(ctx)}<button type="submit" id="connect-box">${escapeHtml(t.connectButton)}</button></form>
${token}</section>`;
}

function boxRow(ctx: PageContext, box: BoxRecord): string {
  const t = messages(ctx.lang);
  const https = box.httpsUrl ? `<a href="${escapeHtml(box.httpsUrl)}" rel="noreferrer" target="_blank">${escapeHtml(box.httpsUrl)}</a>` : escapeHtml(t.noCertificate);
  const expiry = box.certificateExpiry
    ? `${escapeHtml(formatDate(box.certificateExpiry))} (<strong class="days-left">${escapeHtml(daysLeft(box.certificateExpiry, ctx.now, t))}</strong>)`
    : "—";
  const logs = box.httpsUrl ? `<button type="button" class="secondary download-logs" data-url="${escapeHtml(box.httpsUrl)}">${escapeHtml(t.downloadLogs)}</button><span class="reach" role="status"></span>` : "";
  return `<tr data-identifier="${escapeHtml(box.identifier)}"><td class="name">${escapeHtml(box.name)}</td><td>${https}</td><td>${expiry}</td><td>${escapeHtml(formatDate(box.lastSeen))}</td><td>${escapeHtml(box.version)}</td><td>${logs}</td></tr>`;
}

function boxesSection(ctx: PageContext, boxes: readonly BoxRecord[]): string {
  const t = messages(ctx.lang);
  if (boxes.length === 0) return `<section id="boxes"><h3>${escapeHtml(t.boxesHeading)}</h3><p id="no-boxes">${escapeHtml(t.noBoxes)}</p></section>`;
  const c = t.columns;
  const head = [c.name, c.https, c.expiry, c.lastSeen, c.version, c.logs].map((h) => `<th scope="col">${escapeHtml(h)}</th>`).join("");
  return `<section id="boxes"><h3>${escapeHtml(t.boxesHeading)}</h3>
<table class="boxes" data-reaching="${escapeHtml(t.reaching)}" data-unreachable="${escapeHtml(t.unreachable)}"><thead><tr>${head}</tr></thead>
<tbody>${boxes.map((box) => boxRow(ctx, box)).join("\n")}</tbody></table></section>`;
}

export function renderIotPage(ctx: PageContext, view: IotView): string {
  const t = messages(ctx.lang);
  const main = `${databaseSection(ctx, view)}\n${connectSection(ctx, view.pairing)}\n${boxesSection(ctx, view.boxes)}`;
  return layout(ctx, { path: "/iot", title: t.iotTitle, main, script: ctx.assets.iot });
}

/**
 * One box: what @boxcert/web needs to reach it (its HTTPS address, IP and plain-HTTP port) on the row;
 * the path the module found (a badge, "degraded" when over the IP), its words on a problem, the answer.
 */
function posRow(ctx: PageContext, box: BoxRecord & { httpsUrl: string }): string {
  const t = messages(ctx.lang);
  const url = escapeHtml(box.httpsUrl);
  const port = boxHttpPort(box);
  const reach = `data-https-url="${url}" data-ip="${escapeHtml(box.ip)}" data-http-port="${port}"`;
  return `<tr data-identifier="${escapeHtml(box.identifier)}" ${reach}><td class="name">${escapeHtml(box.name)}</td>
<td><a href="${url}" rel="noreferrer" target="_blank">${url}</a><br><code class="ip">${escapeHtml(box.ip)}:${port}</code></td>
<td><button type="button" data-call="status">${escapeHtml(t.callBox)}</button> <button type="button" class="secondary" data-call="test">${escapeHtml(t.testRequest)}</button></td>
<td><p class="via" role="status"></p><div class="problem" aria-live="polite" hidden><p class="message"></p><p class="advice-title">${escapeHtml(t.whatToDo)}</p><ol class="advice"></ol></div><pre class="answer" aria-live="polite"></pre></td></tr>`;
}

export function renderPosPage(ctx: PageContext, boxes: readonly BoxRecord[]): string {
  const t = messages(ctx.lang);
  const reachable = boxes.filter((box): box is BoxRecord & { httpsUrl: string } => box.httpsUrl !== null);
  const c = t.columns;
  const table = reachable.length === 0
    ? `<p id="no-boxes">${escapeHtml(t.noPosBoxes)}</p>`
    : `<table class="pos" data-lang="${ctx.lang}" data-answered="${escapeHtml(t.answered("{status}"))}" data-unreachable="${escapeHtml(t.posUnreachable)}" data-via-https="${escapeHtml(t.viaHttps)}" data-degraded="${escapeHtml(t.degraded)}" data-call-failed="${escapeHtml(t.callFailed("{detail}"))}">
<thead><tr><th scope="col">${escapeHtml(c.name)}</th><th scope="col">${escapeHtml(t.columnsPos.address)}</th><th scope="col">${escapeHtml(t.columnsPos.call)}</th><th scope="col">${escapeHtml(t.columnsPos.answer)}</th></tr></thead>
<tbody>${reachable.map((box) => posRow(ctx, box)).join("\n")}</tbody></table>`;
  const main = `<p>${escapeHtml(t.posIntro)}</p>\n${table}`;
  return layout(ctx, { path: "/pos", title: t.posTitle, main, script: ctx.assets.pos, imports: { "@boxcert/web": ctx.assets.web } });
}

export function renderMessagePage(ctx: PageContext, heading: string, text: string): string {
  const t = messages(ctx.lang);
  const main = `<section class="error" id="refusal"><p id="refusal-message">${escapeHtml(text)}</p><p><a href="/iot">${escapeHtml(t.back)}</a></p></section>`;
  return layout(ctx, { path: "/login", title: heading, main });
}
