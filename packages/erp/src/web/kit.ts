/**
 * What the page routes share: the request's cookies, language and session, the page context (with the
 * CSRF cookie set on the reply), and the replies (a page, a refusal). One kit per app.
 */
import { createHash, randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import type { FastifyReply, FastifyRequest } from "fastify";
import type { Logger } from "pino";
import { isLang, messages, type Lang, type Refusal } from "../messages/index.ts";
import type { Database } from "../database.ts";
import type { ReportStatus } from "../issuer-report.ts";
import type { JsonStore } from "../store.ts";
import { chooseLang } from "./i18n.ts";
import { packageFile } from "../package-files.ts";
import { cookieHeader, CSRF_COOKIE, CsrfTokens, LANG_COOKIE, parseCookies, SESSION_COOKIE } from "./guard.ts";
import type { OperatorLogin } from "./login.ts";
import { renderMessagePage, type PageContext } from "./render.ts";
import { clip, RefusalLog } from "./refusal-log.ts";

/** What the web layer needs from the rest of the database. */
export interface WebDeps {
  database: Database;
  store: JsonStore;
  report: () => ReportStatus;
  /** The https URL boxes and browsers use; the token's server and the pages' own origin. */
  publicUrl: URL;
  /** The zone the boxes' names live in, when known: put in the token. */
  zone: string | null;
  /** null with --insecure-no-login. */
  login: OperatorLogin | null;
  clock: () => number;
  logger: Logger;
}

export interface Asset {
  body: Buffer;
  type: string;
  version: string;
}

function assetOf(body: Buffer, type: string): Asset {
  return { body, type, version: createHash("sha256").update(body).digest("hex").slice(0, 12) };
}

function asset(file: string, type: string): Asset {
  return assetOf(packageFile(`static/${file}`), type);
}

/**
 * The browser module @boxcert/web as its package has it (resolved like an import, never a copy that could
 * drift): the POS page imports it from this origin, which its CSP's script-src allows through the nonce
 * of the page's own module script (imports of a nonced module script are allowed).
 */
function webModule(): Asset {
  const path = createRequire(import.meta.url).resolve("@boxcert/web");
  return assetOf(readFileSync(path), "text/javascript; charset=utf-8");
}

/** Read once; their version (a hash) makes their URLs cacheable for a year. */
export const ASSETS: Readonly<Record<string, Asset>> = {
  "erp.css": asset("erp.css", "text/css; charset=utf-8"),
  "iot.js": asset("iot.js", "text/javascript; charset=utf-8"),
  "pos.js": asset("pos.js", "text/javascript; charset=utf-8"),
  "boxcert-web.js": webModule(),
};

function assetPath(file: string): string {
  return `/static/${file}?v=${ASSETS[file]!.version}`;
}

const NONCES = new WeakMap<FastifyRequest, string>();

/** The nonce of this response's script, shared by the page and its CSP header. */
export function cspNonce(request: FastifyRequest): string {
  let nonce = NONCES.get(request);
  if (nonce === undefined) {
    nonce = randomBytes(16).toString("base64");
    NONCES.set(request, nonce);
  }
  return nonce;
}

/** A query field, own properties only (`?lang=__proto__` names nothing). */
export function queryField(request: FastifyRequest, name: string): string | undefined {
  const query = request.query as Record<string, unknown> | undefined;
  const value = query && Object.hasOwn(query, name) ? query[name] : undefined;
  return typeof value === "string" ? value : undefined;
}

/** The form's string fields (a JSON body cannot smuggle objects in). */
export function formOf(request: FastifyRequest): Record<string, string> {
  const form = Object.create(null) as Record<string, string>;
  if (typeof request.body === "object" && request.body !== null) {
    for (const [key, value] of Object.entries(request.body)) if (typeof value === "string") form[key] = value;
  }
  return form;
}

export class WebKit {
  readonly deps: WebDeps;
  readonly csrf = new CsrfTokens();
  readonly refusals: RefusalLog;
  /** Cookies are Secure when browsers reach the pages over https (the public URL), even behind a TLS proxy. */
  readonly secureCookies: boolean;

  constructor(deps: WebDeps) {
    this.deps = deps;
    this.refusals = new RefusalLog(deps.logger, deps.clock);
    this.secureCookies = deps.publicUrl.protocol === "https:";
  }

  cookies(request: FastifyRequest): Record<string, string> {
    return parseCookies(request.headers.cookie);
  }

  langOf(request: FastifyRequest): Lang {
    return chooseLang({ query: queryField(request, "lang"), cookie: this.cookies(request)[LANG_COOKIE], acceptLanguage: request.headers["accept-language"] });
  }

  loggedIn(request: FastifyRequest): boolean {
    return this.deps.login === null || this.deps.login.validSession(this.cookies(request)[SESSION_COOKIE]);
  }

  /** The page's context; sets the CSRF cookie (and the language cookie after a switch) on the reply. */
  pageContext(request: FastifyRequest, reply: FastifyReply): PageContext {
    const jar = this.cookies(request);
    const setCookies: string[] = [];
    let csrfCookie = jar[CSRF_COOKIE];
    if (!csrfCookie || !/^[A-Za-z0-9_-]{16,64}$/.test(csrfCookie)) {
      csrfCookie = this.csrf.newCookieValue();
      setCookies.push(cookieHeader(CSRF_COOKIE, csrfCookie, { secure: this.secureCookies }));
    }
    const query = queryField(request, "lang");
    if (isLang(query) && jar[LANG_COOKIE] !== query) {
      setCookies.push(cookieHeader(LANG_COOKIE, query, { secure: this.secureCookies, httpOnly: false, sameSite: "Lax", maxAgeS: 365 * 86400 }));
    }
    if (setCookies.length > 0) reply.header("set-cookie", setCookies);
    return {
      lang: this.langOf(request),
      now: this.deps.clock(),
      nonce: cspNonce(request),
      csrfToken: this.csrf.tokenFor(csrfCookie),
      assets: { css: assetPath("erp.css"), iot: assetPath("iot.js"), pos: assetPath("pos.js"), web: assetPath("boxcert-web.js") },
      loginRequired: this.deps.login !== null,
      loggedIn: this.loggedIn(request),
    };
  }

  /** An HTML page; the security headers come from the onSend hook (hooks.ts). */
  sendPage(reply: FastifyReply, html: string, code = 200): FastifyReply {
    return reply.code(code).type("text/html; charset=utf-8").send(html);
  }

  refuse(request: FastifyRequest, reply: FastifyReply, why: Refusal, code = 403): FastifyReply {
    this.refusals.refused(why, { path: clip(request.url), origin: clip(request.headers.origin), host: clip(request.headers.host) }, "a request to the pages was refused");
    const ctx = this.pageContext(request, reply);
    const t = messages(ctx.lang);
    return this.sendPage(reply, renderMessagePage(ctx, t.refused, t.refusals[why]), code);
  }

  /** A route preHandler: a page without a session goes to the login page, a POST is refused. */
  readonly requireLogin = async (request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply | undefined> => {
    if (this.loggedIn(request)) return undefined;
    if (request.method === "GET") return reply.redirect(`/login?next=${encodeURIComponent(request.routeOptions.url ?? "/iot")}`, 303);
    return this.refuse(request, reply, "login-needed");
  };

  /** Sets (or, with null, clears) the session cookie. */
  sessionCookie(reply: FastifyReply, session: string | null): void {
    const secure = this.secureCookies;
    reply.header("set-cookie", session === null ? cookieHeader(SESSION_COOKIE, "", { secure, maxAgeS: 0 }) : cookieHeader(SESSION_COOKIE, session, { secure }));
  }
}
