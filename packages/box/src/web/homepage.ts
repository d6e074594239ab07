/**
 * The box's pages, server-rendered, in English or Italian (../messages/), everything escaped, nothing fetched
 * from outside the box: one stylesheet and one script (/static/), the script with the page's CSP nonce.
 *
 *   home          who the box is, where it answers over HTTPS (or why it does not), the certificate banner,
 *                 and on an error the exact code, what it means and what to do (the shared catalogue)
 *   gear menu     Credential, Log level, Download logs, Certificate details, Connect to a database,
 *                 Diagnostics, Admin password: entries in the HTML, forms in <dialog>s the script opens
 *   message page  a refused or bad request: what happened and the way back
 *
 * Pure functions of the box's view and a context: the route plugins gather both (page-kit.ts). Display
 * strings (the error code with its HTTP status, the HTTPS address) are made here, from the view's fields.
 */
import { escapeHtml, formatErrorCode, LOG_LEVELS } from "@boxcert/shared";
import type { BoxView } from "./status.ts";
import { httpsUrl } from "./status.ts";
import { LANGUAGES, messages } from "../messages/index.ts";
import type { Lang, Notice, PageMessages } from "../messages/index.ts";
import { CSRF_FIELD } from "./request-guard.ts";
import { PAIRING_INVALID } from "../database/registration.ts";
import type { RegistrationProblem } from "../database/registration.ts";

const DAY_MS = 86_400_000;

export interface PageContext {
  lang: Lang;
  now: number;
  /** Nonce of the page's script, also in its Content-Security-Policy. */
  nonce: string;
  /** The hidden field of every form (request-guard.ts). */
  csrfToken: string;
  /** Path of the stylesheet and script, with their version for caching. */
  assets: { css: string; js: string };
  dataDir: string;
  /** The issuer's address, for "open it in a browser to check whether it is up". */
  issuerUrl: string;
  /** The page was opened over HTTP by an IP address: the script tries the HTTPS address from this device. */
  byIp: boolean;
  admin: { passwordSet: boolean; loggedIn: boolean };
  /** The credential, masked; null fields are not set. */
  credential: { dbUuid: string | null; enterpriseCode: string | null };
  certificate: { chainPem: string; fingerprint256: string; serial: string } | null;
  /** A notice after a change. */
  notice: Notice | null;
}

function row(label: string, valueHtml: string): string {
  return `<tr><th scope="row">${escapeHtml(label)}</th><td>${valueHtml}</td></tr>`;
}

/** An ISO time as the pages show it (`2026-11-26 10:00:00 UTC`), not escaped. */
function dateText(iso: string | null): string {
  return iso ? iso.replace("T", " ").replace(/(\.\d+)?Z$/, " UTC") : "—";
}

function date(iso: string | null): string {
  return escapeHtml(dateText(iso));
}

function csrf(ctx: PageContext): string {
  return `<input type="hidden" name="${CSRF_FIELD}" value="${escapeHtml(ctx.csrfToken)}">`;
}

/** A gear-menu entry: opens its dialog, or the login dialog when the menu is locked. */
function opener(ctx: PageContext, dialog: string, label: string, protectedEntry = true): string {
  const target = protectedEntry && locked(ctx) ? "login" : dialog;
  return `<button type="button" class="linkish" data-open="dlg-${target}">${escapeHtml(label)}</button>`;
}

function locked(ctx: PageContext): boolean {
  return ctx.admin.passwordSet && !ctx.admin.loggedIn;
}

function downloadLink(ctx: PageContext, label: string): string {
  return locked(ctx) ? opener(ctx, "login", label) : `<a href="/logs/download" download id="download-logs">${escapeHtml(label)}</a>`;
}

function errorSection(view: BoxView, ctx: PageContext): string {
  const catalogue = messages(ctx.lang);
  const t = catalogue.pages;
  const error = view.certificate.error;
  if (!error) return "";
  const { code, httpStatus, detail, reason } = error;
  const info = catalogue.errors.codes[code];
  const facts: string[] = [];
  const remedies = info.remedies.map((r) => `<li>${escapeHtml(r)}</li>`);
  const actions: string[] = [];
  if (code === "ERR_IOT_HTTPS_LOAD_REQUEST_STATUS" && httpStatus !== null) {
    facts.push(`<p class="http-status">${escapeHtml(t.httpStatus(String(httpStatus), t.statusMeanings[httpStatus] ?? ""))}</p>`);
    remedies.push(`<li>${escapeHtml(t.quoteStatus(String(httpStatus)))}</li>`);
  }
  if (code === "ERR_IOT_HTTPS_LOAD_REQUEST_STATUS" || code === "ERR_IOT_HTTPS_LOAD_REQUEST_EXCEPTION") {
    facts.push(`<p class="issuer">${escapeHtml(t.issuerAddress)}: <a href="${escapeHtml(ctx.issuerUrl)}" rel="noreferrer" target="_blank">${escapeHtml(ctx.issuerUrl)}</a></p>`);
  }
  if (code === "ERR_IOT_HTTPS_LOAD_REQUEST_NO_RESULT" && reason) {
    const text = catalogue.errors.refusals[reason];
    facts.push(`<p class="reason">${escapeHtml(t.issuerReason)}: <strong>${escapeHtml(text)}</strong> (<code>${escapeHtml(reason)}</code>)</p>`);
  }
  if (detail) facts.push(`<p class="detail">${escapeHtml(t.detail)}: <code>${escapeHtml(detail)}</code></p>`);
  if (code === "ERR_IOT_HTTPS_LOAD_REQUEST_EXCEPTION") {
    remedies.push(`<li>${escapeHtml(t.logsWhere(`${ctx.dataDir}/logs/box.log`))}</li>`);
    actions.push(downloadLink(ctx, t.openLogs), opener(ctx, "log-level", t.openLogLevel));
  }
  if (code === "ERR_IOT_HTTPS_CHECK_CERT_READ_EXCEPTION") remedies.push(`<li>${escapeHtml(t.certificateFileWhere(`${ctx.dataDir}/https.pem`))}</li>`);
  if (code === "ERR_IOT_HTTPS_CHECK_NO_SERVER") actions.push(opener(ctx, "connect", t.openConnect));
  if (code === "ERR_IOT_HTTPS_LOAD_NO_CREDENTIAL") actions.push(opener(ctx, "credential", t.openCredential));
  return `<section class="error" id="error" data-code="${escapeHtml(code)}">
<h2>${escapeHtml(t.error)} <code class="code">${escapeHtml(formatErrorCode(code, httpStatus ?? undefined))}</code></h2>
<h3>${escapeHtml(t.whatItMeans)}</h3>
<p class="meaning">${escapeHtml(info.meaning)}</p>
${facts.join("\n")}
<h3>${escapeHtml(t.whatToDo)}</h3>
<ul class="remedies">${remedies.join("")}</ul>
${actions.length > 0 ? `<p class="actions">${actions.join(" ")}</p>` : ""}
</section>`;
}

function httpsCell(status: BoxView, ctx: PageContext): string {
  const t = messages(ctx.lang).pages;
  const url = httpsUrl(status.https);
  if (url) {
    const link = `<a href="${escapeHtml(url)}" id="https-link">${escapeHtml(url)}</a>`;
    const check = ctx.byIp
      ? `<p id="browser-check" class="browser-check" data-url="${escapeHtml(url)}" data-ok="${escapeHtml(t.browserCheckOk(url))}" data-fail="${escapeHtml(t.browserCheckFail(url))}">${escapeHtml(t.browserCheckTrying(url))}</p>`
      : "";
    return link + check;
  }
  if (status.checking) return escapeHtml(t.httpsNoneChecking);
  if (status.certificate.error) return `<a href="#error">${escapeHtml(t.httpsNoneError)}</a>`;
  return escapeHtml(t.httpsNoneNever);
}

function databaseCell(status: BoxView, ctx: PageContext): string {
  const t = messages(ctx.lang).pages;
  if (status.server) {
    const uuid = ctx.credential.dbUuid ? ` (${escapeHtml(t.databaseUuid)} <code>${escapeHtml(ctx.credential.dbUuid)}</code>)` : "";
    const missing = status.hasCredential ? "" : ` <span class="warn">— ${escapeHtml(t.credentialMissing)}</span>`;
    return `<span id="database">${escapeHtml(status.server)}</span>${uuid}${missing}`;
  }
  const how = `boxcert box connect --data-dir ${ctx.dataDir} --server URL --db-uuid UUID --enterprise-code CODE`;
  return `<span id="database">${escapeHtml(t.notConnected)}</span> ${escapeHtml(t.howToConnect)} <code>${escapeHtml(how)}</code> ${opener(ctx, "connect", t.openConnect)}`;
}

/** What the homepage says of a registration problem, in the page's language, with the detail as it came. */
function registrationProblem(problem: RegistrationProblem, t: PageMessages): string {
  if (problem.kind === "not-paired") return `<span class="warn">${escapeHtml(t.registrationNotPaired)}</span>`;
  const text =
    problem.kind === "failed" ? t.registrationFailed : problem.code === PAIRING_INVALID ? t.registrationPairingInvalid : t.registrationRefused(problem.code);
  return `<span class="warn">${escapeHtml(text)}</span> <span class="detail">${escapeHtml(t.detail)}: <code>${escapeHtml(problem.detail)}</code></span>`;
}

/** The registration with the database: when it last succeeded, or why the box is not registered. */
function registrationCell(status: BoxView, ctx: PageContext): string {
  const t = messages(ctx.lang).pages;
  const { registered, registeredAt, pairingHeld, problem } = status.database;
  const parts: string[] = [];
  if (registered) parts.push(escapeHtml(t.registered(dateText(registeredAt))));
  if (problem) parts.push(registrationProblem(problem, t));
  else if (pairingHeld && !registered) parts.push(escapeHtml(t.registrationPending));
  const state = problem ? problem.kind : registered ? "registered" : pairingHeld ? "pending" : "none";
  return `<span id="registration" data-state="${state}">${parts.length > 0 ? parts.join("<br>") : "—"}</span>`;
}

function certificateSection(status: BoxView, ctx: PageContext): string {
  const t = messages(ctx.lang).pages;
  const c = status.certificate;
  const rows = [row(t.status, `<span class="cert-status cert-${c.status}">${escapeHtml(t.statusWords[c.status])}</span>`)];
  if (c.notBefore && c.notAfter) {
    const left = Math.floor((Date.parse(c.notAfter) - ctx.now) / DAY_MS);
    const days = left >= 0 ? t.daysLeft(left) : t.expiredAgo(-left);
    rows.push(row(t.valid, `${escapeHtml(t.validFromUntil(date(c.notBefore), date(c.notAfter)))} (<strong id="days-left">${escapeHtml(days)}</strong>)`));
    rows.push(row(t.renewalFrom, date(c.renewAfter)));
  }
  if (c.subject) rows.push(row(t.subject, escapeHtml(c.subject)));
  if (c.issuer) rows.push(row(t.issuer, escapeHtml(c.issuer)));
  if (c.names.length > 0) rows.push(row(t.names, c.names.map((n) => `<code>${escapeHtml(n)}</code>`).join(", ")));
  rows.push(row(t.lastCheck, status.checking ? escapeHtml(t.runningNow) : date(status.lastCheck)));
  const diagnose = httpsUrl(status.https) ? ` <a href="/diagnostics" class="button secondary">${escapeHtml(t.diagnoseNetwork)}</a>` : "";
  return `<section class="banner banner-${c.status}" id="certificate"><h2>${escapeHtml(t.certificate)}</h2><table>${rows.join("")}</table>
<form method="post" action="/check" class="inline">${csrf(ctx)}<button type="submit" id="check-again">${escapeHtml(t.checkAgain)}</button></form>${diagnose}</section>`;
}

function dialog(id: string, title: string, body: string, t: PageMessages): string {
  return `<dialog id="dlg-${id}" aria-labelledby="dlg-${id}-title"><h2 id="dlg-${id}-title">${escapeHtml(title)}</h2>
${body}
<form method="dialog" class="close"><button type="submit" class="secondary">${escapeHtml(t.close)}</button></form></dialog>`;
}

function field(name: string, label: string, type = "text", extra = ""): string {
  return `<label>${escapeHtml(label)}<input type="${type}" name="${name}" ${extra}></label>`;
}

function dialogs(status: BoxView, ctx: PageContext): string {
  const t = messages(ctx.lang).pages;
  const out: string[] = [];
  const cred = ctx.credential;
  out.push(
    dialog(
      "credential",
      t.credential,
      `<p>${escapeHtml(t.credentialIntro)}</p>
<table><tr><th>${escapeHtml(t.dbUuidLabel)}</th><td><code id="masked-uuid">${escapeHtml(cred.dbUuid ?? t.credentialNone)}</code></td></tr>
<tr><th>${escapeHtml(t.codeLabel)}</th><td><code id="masked-code">${escapeHtml(cred.enterpriseCode ?? t.credentialNone)}</code></td></tr></table>
<form method="post" action="/credential">${csrf(ctx)}
${field("dbUuid", t.dbUuidLabel, "text", 'required autocomplete="off" spellcheck="false"')}
${field("enterpriseCode", t.codeLabel, "password", 'required autocomplete="off"')}
<button type="submit" id="credential-save">${escapeHtml(t.save)}</button></form>
<form method="post" action="/credential/clear">${csrf(ctx)}<button type="submit" class="danger" id="credential-clear">${escapeHtml(t.clearCredential)}</button></form>`,
      t,
    ),
  );
  out.push(
    dialog(
      "log-level",
      t.logLevel,
      `<p>${escapeHtml(t.logLevelIntro)}</p><form method="post" action="/log-level">${csrf(ctx)}
<fieldset>${LOG_LEVELS.map((level) => `<label class="radio"><input type="radio" name="level" value="${level}"${level === status.logLevel ? " checked" : ""}> ${escapeHtml(t.logLevels[level])}</label>`).join("")}</fieldset>
<button type="submit" id="log-level-save">${escapeHtml(t.save)}</button></form>`,
      t,
    ),
  );
  out.push(
    dialog(
      "connect",
      t.connect,
      `<p>${escapeHtml(t.connectIntro)}</p><form method="post" action="/connect">${csrf(ctx)}
${field("token", t.tokenLabel, "text", 'autocomplete="off" spellcheck="false"')}
<p class="or">— ${escapeHtml(t.or)} —</p>
${field("server", t.serverLabel, "url", 'placeholder="https://erp.example.com/"')}
${field("dbUuid", t.dbUuidLabel, "text", 'autocomplete="off" spellcheck="false"')}
${field("enterpriseCode", t.codeLabel, "password", 'autocomplete="off"')}
<button type="submit" id="connect-save">${escapeHtml(t.connectButton)}</button></form>`,
      t,
    ),
  );
  const c = ctx.certificate;
  out.push(
    dialog(
      "certificate",
      t.certificateDetails,
      c
        ? `<table><tr><th>${escapeHtml(t.fingerprint)}</th><td><code id="fingerprint">${escapeHtml(c.fingerprint256)}</code></td></tr>
<tr><th>${escapeHtml(t.serial)}</th><td><code>${escapeHtml(c.serial)}</code></td></tr></table>
<h3>${escapeHtml(t.chain)}</h3><pre id="chain">${escapeHtml(c.chainPem)}</pre>`
        : `<p>${escapeHtml(t.noCertificate)}</p>`,
      t,
    ),
  );
  const passwordForm = ctx.admin.passwordSet
    ? `<p>${escapeHtml(t.passwordIntroSet)}</p><form method="post" action="/admin-password">${csrf(ctx)}
${field("current", t.currentPassword, "password", 'required autocomplete="current-password"')}
${field("password", t.newPassword, "password", 'autocomplete="new-password"')}
${field("repeat", t.repeatPassword, "password", 'autocomplete="new-password"')}
<button type="submit" name="action" value="set" id="password-save">${escapeHtml(t.setPassword)}</button>
<button type="submit" name="action" value="clear" class="danger" id="password-clear" formnovalidate>${escapeHtml(t.clearPassword)}</button></form>`
    : `<p>${escapeHtml(t.passwordIntroNone)}</p><form method="post" action="/admin-password">${csrf(ctx)}
${field("password", t.newPassword, "password", 'required minlength="8" autocomplete="new-password"')}
${field("repeat", t.repeatPassword, "password", 'required minlength="8" autocomplete="new-password"')}
<button type="submit" name="action" value="set" id="password-save">${escapeHtml(t.setPassword)}</button></form>`;
  out.push(dialog("password", t.adminPassword, passwordForm, t));
  out.push(
    dialog(
      "login",
      t.login,
      `<p>${escapeHtml(t.locked)}</p><form method="post" action="/login">${csrf(ctx)}
${field("password", t.password, "password", 'required autocomplete="current-password" id="login-password"')}
<button type="submit" id="login-submit">${escapeHtml(t.login)}</button></form>`,
      t,
    ),
  );
  return out.join("\n");
}

function gearMenu(ctx: PageContext): string {
  const t = messages(ctx.lang).pages;
  const entries = [
    opener(ctx, "credential", t.credential),
    opener(ctx, "log-level", t.logLevel),
    downloadLink(ctx, t.downloadLogs),
    opener(ctx, "certificate", t.certificateDetails, false),
    opener(ctx, "connect", t.connect),
    `<a href="/diagnostics">${escapeHtml(t.diagnostics)}</a>`,
    opener(ctx, "password", t.adminPassword),
  ];
  if (ctx.admin.loggedIn) {
    entries.push(`<form method="post" action="/logout" class="inline">${csrf(ctx)}<button type="submit" class="linkish">${escapeHtml(t.logout)}</button></form>`);
  }
  return `<details class="gear" id="gear"><summary aria-label="${escapeHtml(t.gear)}" title="${escapeHtml(t.gear)}"><span aria-hidden="true">⚙</span></summary>
<ul>${entries.map((e) => `<li>${e}</li>`).join("")}</ul></details>`;
}

function languageSwitch(ctx: PageContext, path: string): string {
  const t = messages(ctx.lang).pages;
  return `<nav class="lang" aria-label="${escapeHtml(t.switchLanguage)}">${LANGUAGES.map((lang: Lang) =>
    lang === ctx.lang
      ? `<strong lang="${lang}">${escapeHtml(messages(lang).pages.langName)}</strong>`
      : `<a href="${escapeHtml(path)}?lang=${lang}" lang="${lang}" hreflang="${lang}">${escapeHtml(messages(lang).pages.langName)}</a>`,
  ).join(" · ")}</nav>`;
}

function layout(status: BoxView, ctx: PageContext, options: { path: string; main: string; checking?: boolean }): string {
  const t = messages(ctx.lang).pages;
  const notice = ctx.notice ? `<p class="notice" role="status" id="notice">${escapeHtml(t.notices[ctx.notice])}</p>` : "";
  return `<!doctype html>
<html lang="${ctx.lang}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(t.title(status.name))}</title>
<link rel="stylesheet" href="${escapeHtml(ctx.assets.css)}">
</head>
<body data-checking="${options.checking ? "1" : "0"}">
<header><h1><a href="/">${escapeHtml(status.name)}</a></h1>${languageSwitch(ctx, options.path)}${gearMenu(ctx)}</header>
<main>
${notice}
${options.main}
</main>
${dialogs(status, ctx)}
<script nonce="${escapeHtml(ctx.nonce)}" src="${escapeHtml(ctx.assets.js)}"></script>
</body>
</html>
`;
}

export function renderHomepage(status: BoxView, ctx: PageContext): string {
  const t = messages(ctx.lang).pages;
  const rows = [
    row(t.name, `<span id="box-name">${escapeHtml(status.name)}</span>`),
    row(t.ip, `<span id="box-ip">${escapeHtml(status.ip)}</span>`),
    row(t.identifier, `<code id="box-identifier">${escapeHtml(status.identifier)}</code>`),
    row(t.database, databaseCell(status, ctx)),
    ...(status.server ? [row(t.registration, registrationCell(status, ctx))] : []),
    row(t.httpsAddress, httpsCell(status, ctx)),
    row(t.httpAddress, `<a href="${escapeHtml(status.httpUrl)}">${escapeHtml(status.httpUrl)}</a>`),
    row(t.logLevel, `<span id="log-level">${escapeHtml(t.logLevels[status.logLevel])}</span>`),
  ];
  const main = `${status.checking ? `<p class="checking" id="checking">${escapeHtml(t.checking)}</p>` : ""}
<table class="facts">${rows.join("")}</table>
${certificateSection(status, ctx)}
${errorSection(status, ctx)}`;
  return layout(status, ctx, { path: "/", main, checking: status.checking });
}

/** A refused or bad request, in the page's language: what happened and the way back. */
export function renderMessagePage(status: BoxView, ctx: PageContext, heading: string, message: string): string {
  const t = messages(ctx.lang).pages;
  const main = `<section class="error" id="refusal"><h2>${escapeHtml(heading)}</h2><p id="refusal-message">${escapeHtml(message)}</p>
<p><a href="/">${escapeHtml(t.back)}</a></p></section>`;
  return layout(status, ctx, { path: "/", main });
}

/** What a confirmation page shows and carries (the form's own fields, sent again with `confirm=yes`). */
export interface Confirmation {
  action: "/connect" | "/credential";
  /** The fields as posted (the CSRF field excluded), carried in hidden inputs. */
  fields: Record<string, string>;
  /** The connection held now and the one asked for, as shown (masked). */
  current: { server: string | null; dbUuid: string | null };
  next: { server: string | null; dbUuid: string | null };
  replacing: boolean;
  plaintext: boolean;
}

function connectionRow(label: string, value: { server: string | null; dbUuid: string | null }): string {
  const parts = [value.server, value.dbUuid].filter((part): part is string => part !== null);
  return `<tr><th scope="row">${escapeHtml(label)}</th><td><code>${escapeHtml(parts.join(" · "))}</code></td></tr>`;
}

/** "Replace the box's connection?" (and/or "this address is http://"), with Save anyway and Cancel. */
export function renderConfirmPage(status: BoxView, ctx: PageContext, confirmation: Confirmation): string {
  const t = messages(ctx.lang).pages;
  const hidden = Object.entries(confirmation.fields)
    .map(([name, value]) => `<input type="hidden" name="${escapeHtml(name)}" value="${escapeHtml(value)}">`)
    .join("");
  const texts = [confirmation.replacing ? t.confirmReplace : null, confirmation.plaintext ? t.confirmPlaintext : null]
    .filter((text): text is string => text !== null)
    .map((text) => `<p>${escapeHtml(text)}</p>`)
    .join("");
  const table = confirmation.replacing
    ? `<table>${connectionRow(t.confirmCurrent, confirmation.current)}${connectionRow(t.confirmNew, confirmation.next)}</table>`
    : "";
  const main = `<section class="error" id="confirm"><h2>${escapeHtml(t.confirmHeading)}</h2>${texts}${table}
<form method="post" action="${confirmation.action}">${csrf(ctx)}${hidden}<input type="hidden" name="confirm" value="yes">
<button type="submit" id="confirm-save">${escapeHtml(t.confirmButton)}</button> <a href="/" id="confirm-cancel">${escapeHtml(t.cancel)}</a></form></section>`;
  return layout(status, ctx, { path: "/", main });
}

/** The diagnostics page: the report's fragment (already escaped HTML, diagnostics/render.ts) in the layout. */
export function renderDiagnosticsPage(status: BoxView, ctx: PageContext, fragmentHtml: string): string {
  const t = messages(ctx.lang).pages;
  // The fragment brings its own section and title (diagnostics/render.ts).
  const main = `<div class="diagnostics-page"><p class="intro">${escapeHtml(t.diagnosticsIntro)}</p>
${fragmentHtml}
<p><a href="/diagnostics" class="button" id="diagnostics-again">${escapeHtml(t.runAgain)}</a> <a href="/">${escapeHtml(t.back)}</a></p></div>`;
  return layout(status, ctx, { path: "/diagnostics", main });
}
