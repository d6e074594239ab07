/**
 * What every route plugin needs from a request: its cookies, language and admin session, the page context
 * (homepage.ts), and the replies they share: a page, a refusal, a bad-input page, the redirect after a
 * change. One kit per listener (its scheme decides the cookies' Secure flag).
 */
import { createHash, X509Certificate } from "node:crypto";
import type { HttpReply, HttpRequest } from "./http-app.ts";
import type { Logger } from "pino";
import type { BoxConfig, ConfigPatch } from "../config.ts";
import type { Clock } from "../clock.ts";
import type { StoredCertificate } from "../certificate/certificate-file.ts";
import type { DiagnosticsReport } from "../diagnostics/index.ts";
import { isLang, messages } from "../messages/index.ts";
import type { Lang, Notice, PageMessages } from "../messages/index.ts";
import { chooseLang, LANG_COOKIE } from "./i18n.ts";
import { cookieHeader, CSRF_COOKIE, CsrfTokens, hostOf, parseCookies } from "./request-guard.ts";
import type { GuardRefusal } from "./request-guard.ts";
import { AdminSessions } from "./admin-password.ts";
import { packageFile } from "../package-files.ts";
import { renderConfirmPage, renderMessagePage } from "./homepage.ts";
import { maskedCode, maskedUuid } from "../secrets.ts";
import type { Confirmation, PageContext } from "./homepage.ts";
import { cspNonce } from "./request-data.ts";
import { clip, RequestLog } from "./request-log.ts";
import type { BoxView } from "./status.ts";

export const SESSION_COOKIE = "boxcert_session";

/** What the web layer asks of the rest of the box. */
export interface WebDeps {
  view(): BoxView;
  /** The homepage was opened: re-read the configuration, maybe start a background check. Never waits for it. */
  homepageOpened(): Promise<void>;
  /** "Check again": start a check now (or join the running one), in the background. */
  checkAgain(): void;
  /** The configuration as the agent holds it (the credential, the admin password's hash). */
  config(): BoxConfig;
  /** Writes these changes to config.json (atomically) and applies them at once; a function is given the file as read. */
  changeConfig(patch: ConfigPatch | ((current: BoxConfig) => ConfigPatch)): Promise<BoxConfig>;
  /** The origin of the database the box is paired with (web/cors.ts), or null. */
  pairedOrigin(): string | null;
  /** The certificate the box serves, if any. */
  served(): StoredCertificate | null;
  /** The last diagnostics report, or a new one when the last is older than 10 s. */
  diagnostics(): Promise<DiagnosticsReport>;
  logFile: string;
  issuerUrl: string;
  logger: Logger;
  clock: Clock;
  dataDir: string;
}

/** Shared by both listeners: one CSRF secret and one set of admin sessions per process. */
export interface WebState {
  csrf: CsrfTokens;
  sessions: AdminSessions;
  /** The refusals any web page can cause, logged at a bounded rate (request-log.ts). */
  requestLog: RequestLog;
  /** The paired database's POS test requests, logged at a bounded rate too. */
  posLog: RequestLog;
  /** POS test requests answered since the box started (both listeners): the count the POS page sees. */
  posTests: { count: number };
}

export function newWebState(clock: Clock, logger: Logger): WebState {
  return {
    csrf: new CsrfTokens(),
    sessions: new AdminSessions(clock),
    requestLog: new RequestLog(logger, { now: clock }),
    posLog: new RequestLog(logger, {
      now: clock,
      event: "pos_test",
      summaryEvent: "pos_tests_summary",
      level: "info",
      summary: (count) => `${count} more POS test requests in this interval (not logged one by one)`,
    }),
    posTests: { count: 0 },
  };
}

export interface Asset {
  body: Buffer;
  type: string;
  version: string;
}

function asset(file: string, type: string): Asset {
  const body = packageFile(`static/${file}`);
  return { body, type, version: createHash("sha256").update(body).digest("hex").slice(0, 12) };
}

/** The one stylesheet and script, read once; their version (a hash) makes their URLs cacheable. */
export const ASSETS: Readonly<Record<string, Asset>> = {
  "box.css": asset("box.css", "text/css; charset=utf-8"),
  "box.js": asset("box.js", "text/javascript; charset=utf-8"),
};

function fingerprint(chainPem: string): { fingerprint256: string; serial: string } | null {
  try {
    const leaf = new X509Certificate(chainPem);
    return { fingerprint256: leaf.fingerprint256, serial: leaf.serialNumber };
  } catch {
    return null;
  }
}

/** A query field, own properties only: `?notice=constructor` or `?__proto__=` name nothing here. */
function queryField(request: HttpRequest, name: string): unknown {
  return Object.hasOwn(request.query, name) ? request.query[name] : undefined;
}

/** The notice a `?notice=` names, when it is one of ours (an own key of the catalogue, not an inherited name). */
function noticeOf(value: unknown, lang: Lang): Notice | null {
  return typeof value === "string" && Object.hasOwn(messages(lang).pages.notices, value) ? (value as Notice) : null;
}

export type Refusal = GuardRefusal | "login-needed" | "wrong-password" | "too-many" | "busy";

export class PageKit {
  readonly deps: WebDeps;
  readonly scheme: "http" | "https";
  readonly state: WebState;

  constructor(deps: WebDeps, scheme: "http" | "https", state: WebState) {
    this.deps = deps;
    this.scheme = scheme;
    this.state = state;
  }

  cookies(request: HttpRequest): Record<string, string> {
    return parseCookies(request.headers.cookie);
  }

  langOf(request: HttpRequest): Lang {
    const query = queryField(request, "lang");
    return chooseLang({
      query: typeof query === "string" ? query : undefined,
      cookie: this.cookies(request)[LANG_COOKIE],
      acceptLanguage: request.headers["accept-language"],
    });
  }

  loggedIn(request: HttpRequest): boolean {
    return this.state.sessions.valid(this.cookies(request)[SESSION_COOKIE]);
  }

  /** No admin password is set, or the request carries a valid session. */
  adminOk(request: HttpRequest): boolean {
    return this.deps.config().adminPassword === null || this.loggedIn(request);
  }

  /** A route-level preHandler: the gear menu's changes and the log download need the admin session. */
  readonly requireAdmin = async (request: HttpRequest, reply: HttpReply): Promise<HttpReply | undefined> => {
    return this.adminOk(request) ? undefined : this.refuse(request, reply, "login-needed");
  };

  /** The page's context; sets the CSRF cookie (and the language cookie after a switch) on the reply. */
  pageContext(request: HttpRequest, reply: HttpReply): PageContext {
    const { deps, scheme } = this;
    const secure = scheme === "https";
    const jar = this.cookies(request);
    let csrfCookie = jar[CSRF_COOKIE];
    const setCookies: string[] = [];
    if (!csrfCookie || !/^[A-Za-z0-9_-]{16,64}$/.test(csrfCookie)) {
      csrfCookie = this.state.csrf.newCookieValue();
      setCookies.push(cookieHeader(CSRF_COOKIE, csrfCookie, { secure }));
    }
    const lang = this.langOf(request);
    const query = queryField(request, "lang");
    if (isLang(query) && jar[LANG_COOKIE] !== query) {
      setCookies.push(cookieHeader(LANG_COOKIE, query, { secure, httpOnly: false, sameSite: "Lax", maxAgeS: 365 * 86400 }));
    }
    if (setCookies.length > 0) reply.header("set-cookie", setCookies);
    const config = deps.config();
    const served = deps.served();
    const details = served ? fingerprint(served.chainPem) : null;
    const host = hostOf(request.headers.host);
    return {
      lang,
      now: deps.clock(),
      nonce: cspNonce(request),
      csrfToken: this.state.csrf.tokenFor(csrfCookie),
      assets: { css: `/static/box.css?v=${ASSETS["box.css"]!.version}`, js: `/static/box.js?v=${ASSETS["box.js"]!.version}` },
      dataDir: deps.dataDir,
      issuerUrl: deps.issuerUrl,
      byIp: scheme === "http" && host !== null && (/^[\d.]+$/.test(host) || host.includes(":")),
      admin: { passwordSet: config.adminPassword !== null, loggedIn: this.loggedIn(request) },
      credential: this.adminOk(request)
        ? { dbUuid: maskedUuid(config.dbUuid), enterpriseCode: maskedCode(config.enterpriseCode) }
        : { dbUuid: config.dbUuid ? "••••••••" : null, enterpriseCode: config.enterpriseCode ? "••••••••" : null },
      certificate: served && details ? { chainPem: served.chainPem, ...details } : null,
      notice: noticeOf(queryField(request, "notice"), lang),
    };
  }

  /** An HTML page; the security headers are added by the onSend hook (hooks.ts). */
  sendPage(reply: HttpReply, html: string, code = 200): HttpReply {
    return reply.code(code).type("text/html; charset=utf-8").send(html);
  }

  message(request: HttpRequest, reply: HttpReply, code: number, heading: (t: PageMessages) => string, text: (t: PageMessages) => string): HttpReply {
    const ctx = this.pageContext(request, reply);
    const t = messages(ctx.lang).pages;
    return this.sendPage(reply, renderMessagePage(this.deps.view(), ctx, heading(t), text(t)), code);
  }

  refuse(request: HttpRequest, reply: HttpReply, why: Refusal, code = 403): HttpReply {
    this.state.requestLog.refused(
      why,
      { path: clip(request.url), origin: clip(request.headers.origin), host: clip(request.headers.host) },
      "a request to the homepage was refused",
    );
    return this.message(request, reply, code, (t) => t.refused, (t) => t.refusals[why]);
  }

  /** Asks before a change that replaces the connection or sends it over http:// (homepage.ts renderConfirmPage). */
  confirm(request: HttpRequest, reply: HttpReply, confirmation: Confirmation): HttpReply {
    return this.sendPage(reply, renderConfirmPage(this.deps.view(), this.pageContext(request, reply), confirmation));
  }

  badInput(request: HttpRequest, reply: HttpReply, text: (t: PageMessages) => string): HttpReply {
    return this.message(request, reply, 400, (t) => t.badInput, text);
  }

  /** After a change: back to the homepage, which shows the notice. */
  done(reply: HttpReply, notice: Notice): HttpReply {
    return reply.redirect(`/?notice=${notice}`, 303);
  }

  /** Sets or clears the admin session cookie. */
  sessionCookie(reply: HttpReply, session: string | null): void {
    const secure = this.scheme === "https";
    reply.header("set-cookie", session === null ? cookieHeader(SESSION_COOKIE, "", { secure, maxAgeS: 0 }) : cookieHeader(SESSION_COOKIE, session, { secure }));
  }
}
