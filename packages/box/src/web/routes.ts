/**
 * The routes both listeners serve (docs/box.md "HTTP API"):
 *
 *   GET  /                    the homepage (and opening it triggers a check, at most once a minute)
 *   GET  /diagnostics         the network diagnostics page; GET /api/diagnostics its JSON
 *   GET  /logs/download       every log line the box has, oldest first, as an attachment
 *   GET  /static/box.css|js   the one stylesheet and script, cacheable
 *   GET  /api/status          the status JSON; GET /api/ping for the POS page (CORS, private network)
 *   POST /check /credential /credential/clear /log-level /connect /admin-password /login /logout
 *
 * Every POST passes the request guard (request-guard.ts: Host, Origin, CSRF token); the gear menu's
 * changes and the log download also need the admin session when a password is set (admin-password.ts).
 * Bad input is a 400 page that says what is wrong; nothing here throws for a user's input.
 */
import { createHash, randomBytes, X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import { hostname as machineName } from "node:os";
import { join } from "node:path";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { Logger } from "pino";
import type { BoxStatus } from "./status.ts";
import { escapeHtml, isLogLevel } from "@boxcert/shared";
import { mask, renderDiagnosticsPage, renderHomepage, renderMessagePage } from "./homepage.ts";
import type { PageContext } from "./homepage.ts";
import type { Clock } from "../clock.ts";
import type { BoxConfig } from "../config.ts";
import { ConfigError, parseConnection, parseConnectionToken, parseCredentialField } from "../config.ts";
import type { StoredCertificate } from "../certificate/certificate-file.ts";
import { chooseLang, LANG_COOKIE, messages, isLang } from "./i18n.ts";
import type { Lang, Messages } from "./i18n.ts";
import { checkPost, cookieHeader, CSRF_COOKIE, CSRF_FIELD, CsrfTokens, hostOf, isOwnHost, parseCookies } from "./request-guard.ts";
import type { GuardRefusal, HostPolicy } from "./request-guard.ts";
import { AdminSessions, hashPassword, passwordProblem, verifyPassword } from "./admin-password.ts";
import { logDownloadName, readAllLogs } from "../logs.ts";
import { renderDiagnosticsHtml } from "../diagnostics/index.ts";
import type { DiagnosticsReport } from "../diagnostics/index.ts";

export const SESSION_COOKIE = "boxcert_session";

export interface RouteDeps {
  status(): BoxStatus;
  /** The homepage was opened: re-read the configuration, maybe start a background check. Never waits for it. */
  homepageOpened(): Promise<void>;
  /** "Check again": start a check now (or join the running one), in the background. */
  checkAgain(): void;
  /** The configuration as the agent holds it (the credential, the admin password's hash). */
  config(): BoxConfig;
  /** Writes these changes to config.json (atomically) and applies them at once. */
  changeConfig(patch: Partial<Omit<BoxConfig, "identifier">>): Promise<BoxConfig>;
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
export interface RouteState {
  csrf: CsrfTokens;
  sessions: AdminSessions;
}

export function newRouteState(clock: Clock): RouteState {
  return { csrf: new CsrfTokens(), sessions: new AdminSessions(clock) };
}

interface Asset {
  body: Buffer;
  type: string;
  version: string;
}

function asset(file: string, type: string): Asset {
  const body = readFileSync(join(import.meta.dirname, "..", "..", "static", file));
  return { body, type, version: createHash("sha256").update(body).digest("hex").slice(0, 12) };
}

const ASSETS: Record<string, Asset> = {
  "box.css": asset("box.css", "text/css; charset=utf-8"),
  "box.js": asset("box.js", "text/javascript; charset=utf-8"),
};

type Form = Record<string, string>;

function formParser(app: FastifyInstance): void {
  app.addContentTypeParser("application/x-www-form-urlencoded", { parseAs: "string", bodyLimit: 16 * 1024 }, (_req, body, done) => {
    const form: Form = Object.create(null) as Form;
    for (const [key, value] of new URLSearchParams(body as string)) if (!Object.hasOwn(form, key)) form[key] = value;
    done(null, form);
  });
}

function fingerprint(chainPem: string): { fingerprint256: string; serial: string } | null {
  try {
    const leaf = new X509Certificate(chainPem);
    return { fingerprint256: leaf.fingerprint256, serial: leaf.serialNumber };
  } catch {
    return null;
  }
}

function hasSecretValue(value: string | undefined): value is string {
  return typeof value === "string" && value.trim() !== "";
}

export function registerRoutes(app: FastifyInstance, deps: RouteDeps, scheme: "http" | "https", state: RouteState): void {
  const { csrf, sessions } = state;
  const hosts: HostPolicy = {
    machineName: machineName(),
    certificateNames: () => deps.served()?.info.names ?? [],
  };
  formParser(app);

  function cookies(request: FastifyRequest): Record<string, string> {
    return parseCookies(request.headers.cookie);
  }

  function langOf(request: FastifyRequest): Lang {
    const query = (request.query as Record<string, unknown>)?.lang;
    return chooseLang({
      query: typeof query === "string" ? query : undefined,
      cookie: cookies(request)[LANG_COOKIE],
      acceptLanguage: request.headers["accept-language"],
    });
  }

  function loggedIn(request: FastifyRequest): boolean {
    return sessions.valid(cookies(request)[SESSION_COOKIE]);
  }

  function adminOk(request: FastifyRequest): boolean {
    return deps.config().adminPassword === null || loggedIn(request);
  }

  /** The page's context; sets the CSRF cookie (and the language cookie after a switch) on the reply. */
  function pageContext(request: FastifyRequest, reply: FastifyReply): PageContext {
    const jar = cookies(request);
    let csrfCookie = jar[CSRF_COOKIE];
    const setCookies: string[] = [];
    if (!csrfCookie || !/^[A-Za-z0-9_-]{16,64}$/.test(csrfCookie)) {
      csrfCookie = csrf.newCookieValue();
      setCookies.push(cookieHeader(CSRF_COOKIE, csrfCookie, { secure: scheme === "https" }));
    }
    const lang = langOf(request);
    const query = (request.query as Record<string, unknown>)?.lang;
    if (isLang(query) && jar[LANG_COOKIE] !== query) {
      setCookies.push(cookieHeader(LANG_COOKIE, query, { secure: scheme === "https", httpOnly: false, sameSite: "Lax", maxAgeS: 365 * 86400 }));
    }
    if (setCookies.length > 0) reply.header("set-cookie", setCookies);
    const config = deps.config();
    const served = deps.served();
    const details = served ? fingerprint(served.chainPem) : null;
    const noticeKey = (request.query as Record<string, unknown>)?.notice;
    const t = messages(lang);
    const host = hostOf(request.headers.host);
    return {
      lang,
      now: deps.clock(),
      nonce: randomBytes(16).toString("base64"),
      csrfToken: csrf.tokenFor(csrfCookie),
      assets: { css: `/static/box.css?v=${ASSETS["box.css"]!.version}`, js: `/static/box.js?v=${ASSETS["box.js"]!.version}` },
      dataDir: deps.dataDir,
      issuerUrl: deps.issuerUrl,
      byIp: scheme === "http" && host !== null && (/^[\d.]+$/.test(host) || host.includes(":")),
      admin: { passwordSet: config.adminPassword !== null, loggedIn: loggedIn(request) },
      credential: adminOk(request)
        ? { dbUuid: mask(config.dbUuid, { start: 4, end: 4 }), enterpriseCode: mask(config.enterpriseCode, { start: 0, end: 2 }) }
        : { dbUuid: config.dbUuid ? "••••••••" : null, enterpriseCode: config.enterpriseCode ? "••••••••" : null },
      certificate: served && details ? { chainPem: served.chainPem, ...details } : null,
      notice: typeof noticeKey === "string" && noticeKey in t.notices ? (noticeKey as keyof Messages["notices"]) : null,
    };
  }

  function sendHtml(reply: FastifyReply, ctx: PageContext, html: string, code = 200): FastifyReply {
    // The browser-side check fetches the HTTPS address's /api/ping: the only other origin the page may reach.
    let https = "";
    const url = deps.status().httpsUrl;
    if (url) https = ` ${new URL(url).origin}`;
    return reply
      .code(code)
      .type("text/html; charset=utf-8")
      .header("cache-control", "no-store")
      .header(
        "content-security-policy",
        `default-src 'none'; style-src 'self'; script-src 'nonce-${ctx.nonce}'; connect-src 'self'${https}; img-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'`,
      )
      .header("x-content-type-options", "nosniff")
      .header("x-frame-options", "DENY")
      // Not no-referrer: under it Chromium sends `Origin: null` with the page's own form posts.
      .header("referrer-policy", "same-origin")
      .send(html);
  }

  function message(request: FastifyRequest, reply: FastifyReply, code: number, heading: (t: Messages) => string, text: (t: Messages) => string): FastifyReply {
    const ctx = pageContext(request, reply);
    const t = messages(ctx.lang);
    return sendHtml(reply, ctx, renderMessagePage(deps.status(), ctx, heading(t), text(t)), code);
  }

  function refuse(request: FastifyRequest, reply: FastifyReply, why: GuardRefusal | "login-needed" | "wrong-password" | "too-many", code = 403): FastifyReply {
    deps.logger.warn({ event: "request_refused", why, path: request.url, origin: request.headers.origin ?? null, host: request.headers.host ?? null }, "a request to the homepage was refused");
    return message(request, reply, code, (t) => t.refused, (t) => t.refusals[why]);
  }

  function badInput(request: FastifyRequest, reply: FastifyReply, text: (t: Messages) => string): FastifyReply {
    return message(request, reply, 400, (t) => t.badInput, text);
  }

  function done(reply: FastifyReply, notice: keyof Messages["notices"]): FastifyReply {
    return reply.redirect(`/?notice=${notice}`, 303);
  }

  /** A POST: guard first; `admin` ones also need the session when a password is set. */
  function post(path: string, options: { admin: boolean }, handler: (form: Form, request: FastifyRequest, reply: FastifyReply) => Promise<FastifyReply>): void {
    app.post(path, async (request, reply) => {
      // Only string fields count: a JSON body (fastify parses it too) cannot smuggle objects in.
      const form: Form = Object.create(null) as Form;
      if (typeof request.body === "object" && request.body !== null) {
        for (const [key, value] of Object.entries(request.body)) if (typeof value === "string") form[key] = value;
      }
      const refusal = checkPost({
        scheme,
        hostHeader: request.headers.host,
        origin: request.headers.origin,
        cookie: cookies(request)[CSRF_COOKIE],
        token: typeof form[CSRF_FIELD] === "string" ? form[CSRF_FIELD] : undefined,
        csrf,
        hosts,
      });
      if (refusal) return refuse(request, reply, refusal);
      if (options.admin && !adminOk(request)) return refuse(request, reply, "login-needed");
      return handler(form, request, reply);
    });
  }

  app.get("/", async (request, reply) => {
    await deps.homepageOpened();
    const ctx = pageContext(request, reply);
    return sendHtml(reply, ctx, renderHomepage(deps.status(), ctx));
  });

  app.get("/diagnostics", async (request, reply) => {
    const ctx = pageContext(request, reply);
    let fragment: string;
    try {
      fragment = renderDiagnosticsHtml(await deps.diagnostics(), ctx.lang);
    } catch (err) {
      deps.logger.error({ event: "diagnostics_failed", err }, "the diagnostics failed");
      fragment = `<p class="error">${escapeHtml(messages(ctx.lang).diagnosticsFailed((err as Error).message))}</p>`;
    }
    return sendHtml(reply, ctx, renderDiagnosticsPage(deps.status(), ctx, fragment));
  });

  app.get("/api/diagnostics", async (_request, reply) => {
    return reply.header("cache-control", "no-store").send(await deps.diagnostics());
  });

  app.get("/logs/download", async (request, reply) => {
    if (!isOwnHost(hostOf(request.headers.host), hosts)) return refuse(request, reply, "foreign-host");
    if (!adminOk(request)) return refuse(request, reply, "login-needed");
    const body = await readAllLogs(deps.logFile);
    const name = logDownloadName(deps.config().name, deps.clock());
    deps.logger.info({ event: "logs_downloaded", bytes: body.length }, "logs downloaded");
    return reply
      .type("text/plain; charset=utf-8")
      .header("content-disposition", `attachment; filename="${name}"`)
      .header("cache-control", "no-store")
      .header("x-content-type-options", "nosniff")
      .send(body);
  });

  app.get<{ Params: { file: string }; Querystring: { v?: string } }>("/static/:file", async (request, reply) => {
    const found = Object.hasOwn(ASSETS, request.params.file) ? ASSETS[request.params.file] : undefined;
    if (!found) return reply.code(404).type("text/plain").send("not found");
    const etag = `"${found.version}"`;
    reply.header("etag", etag).header("x-content-type-options", "nosniff");
    reply.header("cache-control", request.query.v === found.version ? "public, max-age=31536000, immutable" : "public, max-age=300");
    if (request.headers["if-none-match"] === etag) return reply.code(304).send();
    return reply.type(found.type).send(found.body);
  });

  app.get("/api/status", async (_request, reply) => {
    return reply.header("cache-control", "no-store").send(deps.status());
  });

  // A device API: any page may call it (the ERP's POS page finds the box this way), private-network
  // preflights included. Nothing else on the box carries Access-Control-Allow-Origin.
  app.options("/api/ping", async (request, reply) => {
    reply
      .code(204)
      .header("access-control-allow-origin", "*")
      .header("access-control-allow-methods", "GET, OPTIONS")
      .header("access-control-max-age", "600");
    const requestedHeaders = request.headers["access-control-request-headers"];
    if (typeof requestedHeaders === "string") reply.header("access-control-allow-headers", requestedHeaders);
    if (request.headers["access-control-request-private-network"] === "true") reply.header("access-control-allow-private-network", "true");
    return reply.send();
  });
  app.get("/api/ping", async (_request, reply) => {
    return reply.header("access-control-allow-origin", "*").header("cache-control", "no-store").send({ ok: true });
  });

  post("/check", { admin: false }, async (_form, _request, reply) => {
    deps.checkAgain();
    return done(reply, "check");
  });

  post("/credential", { admin: true }, async (form, request, reply) => {
    let dbUuid: string;
    let enterpriseCode: string;
    try {
      dbUuid = parseCredentialField("database UUID", form.dbUuid ?? "");
      enterpriseCode = parseCredentialField("subscription code", form.enterpriseCode ?? "");
    } catch (err) {
      if (err instanceof ConfigError) return badInput(request, reply, () => err.message);
      throw err;
    }
    await deps.changeConfig({ dbUuid, enterpriseCode });
    deps.logger.info({ event: "credential_set", dbUuid, from: "homepage" }, "credential set from the homepage");
    deps.checkAgain();
    return done(reply, "credential");
  });

  post("/credential/clear", { admin: true }, async (_form, _request, reply) => {
    await deps.changeConfig({ dbUuid: null, enterpriseCode: null });
    deps.logger.info({ event: "credential_cleared", from: "homepage" }, "credential cleared from the homepage");
    return done(reply, "credential-cleared");
  });

  post("/log-level", { admin: true }, async (form, request, reply) => {
    const level = form.level;
    if (!isLogLevel(level)) return badInput(request, reply, (t) => t.inputErrors["bad-level"]);
    await deps.changeConfig({ logLevel: level });
    return done(reply, "log-level");
  });

  post("/connect", { admin: true }, async (form, request, reply) => {
    let connection;
    try {
      if (hasSecretValue(form.token)) connection = parseConnectionToken(form.token);
      else if (hasSecretValue(form.server) && hasSecretValue(form.dbUuid) && hasSecretValue(form.enterpriseCode)) {
        connection = parseConnection({ server: form.server, dbUuid: form.dbUuid, enterpriseCode: form.enterpriseCode });
      } else return badInput(request, reply, (t) => t.inputErrors["connect-missing"]);
    } catch (err) {
      if (err instanceof ConfigError) return badInput(request, reply, () => err.message);
      throw err;
    }
    await deps.changeConfig(connection);
    deps.logger.info({ event: "connected", server: connection.server, dbUuid: connection.dbUuid, from: "homepage" }, "connected to a database from the homepage");
    deps.checkAgain();
    return done(reply, "connected");
  });

  post("/admin-password", { admin: true }, async (form, request, reply) => {
    const stored = deps.config().adminPassword;
    if (stored !== null) {
      if (!sessions.mayTry()) return refuse(request, reply, "too-many", 429);
      if (!(await verifyPassword(form.current ?? "", stored))) {
        sessions.failed();
        return refuse(request, reply, "wrong-password");
      }
    }
    if (form.action === "clear") {
      if (stored === null) return done(reply, "password-cleared");
      await deps.changeConfig({ adminPassword: null });
      sessions.closeAll();
      deps.logger.info({ event: "admin_password_cleared" }, "admin password cleared");
      return done(reply, "password-cleared");
    }
    const password = form.password ?? "";
    if (password !== (form.repeat ?? "")) return badInput(request, reply, (t) => t.inputErrors["password-mismatch"]);
    const problem = passwordProblem(password);
    if (problem) return badInput(request, reply, (t) => t.inputErrors[problem]);
    await deps.changeConfig({ adminPassword: await hashPassword(password) });
    sessions.closeAll();
    // Whoever set it stays logged in.
    reply.header("set-cookie", cookieHeader(SESSION_COOKIE, sessions.open(), { secure: scheme === "https" }));
    deps.logger.info({ event: "admin_password_set" }, "admin password set");
    return done(reply, "password-set");
  });

  post("/login", { admin: false }, async (form, request, reply) => {
    const stored = deps.config().adminPassword;
    if (stored === null) return done(reply, "logged-in");
    if (!sessions.mayTry()) return refuse(request, reply, "too-many", 429);
    if (!(await verifyPassword(form.password ?? "", stored))) {
      sessions.failed();
      return refuse(request, reply, "wrong-password");
    }
    reply.header("set-cookie", cookieHeader(SESSION_COOKIE, sessions.open(), { secure: scheme === "https" }));
    deps.logger.info({ event: "admin_login" }, "admin logged in");
    return done(reply, "logged-in");
  });

  post("/logout", { admin: false }, async (_form, request, reply) => {
    sessions.close(cookies(request)[SESSION_COOKIE]);
    reply.header("set-cookie", cookieHeader(SESSION_COOKIE, "", { secure: scheme === "https", maxAgeS: 0 }));
    return done(reply, "logged-out");
  });
}
