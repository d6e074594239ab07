/**
 * The two hooks every route passes through, registered once per listener (app.ts):
 *
 *   request guard     preHandler: Host allowlist, Origin and CSRF token (or the paired database's Origin),
 *                     as request-guard.ts's policy (guardChecks) says for the route; a refusal is the 403 page
 *   security headers  onSend: every HTML page gets its CSP (with the page's script nonce), no caching,
 *                     no framing, no sniffing and its Referrer-Policy
 */
import { hostname as machineName } from "node:os";
import type { HttpApp, HttpReply, HttpRequest } from "./http-app.ts";
import { checkRequest, CSRF_COOKIE, CSRF_FIELD, guardChecks, parseCookies } from "./request-guard.ts";
import type { CsrfTokens, GuardRefusal, HostPolicy } from "./request-guard.ts";
import { cspNonce, formOf } from "./request-data.ts";

export interface GuardHookOptions {
  scheme: "http" | "https";
  csrf: CsrfTokens;
  /** Whether a name is one of the box's own HTTPS names now (the Host allowlist takes them exactly). */
  isBoxName: (host: string) => boolean;
  /** The origin of the database the box is paired with now, or null. */
  pairedOrigin: () => string | null;
  refuse: (request: HttpRequest, reply: HttpReply, why: GuardRefusal) => HttpReply;
}

export function registerRequestGuard(app: HttpApp, options: GuardHookOptions): void {
  const hosts: HostPolicy = { machineName: machineName(), isBoxName: options.isBoxName };
  app.addHook("preHandler", async (request, reply) => {
    const checks = guardChecks(request.method, request.routeOptions.url);
    const form = checks.originAndToken ? formOf(request) : null;
    const refusal = checkRequest(checks, {
      scheme: options.scheme,
      hostHeader: request.headers.host,
      origin: request.headers.origin,
      cookie: parseCookies(request.headers.cookie)[CSRF_COOKIE],
      token: form?.[CSRF_FIELD],
      csrf: options.csrf,
      hosts,
      pairedOrigin: checks.pairedOrigin ? options.pairedOrigin() : null,
    });
    if (refusal) return options.refuse(request, reply, refusal);
    return undefined;
  });
}

export interface SecurityHeaderOptions {
  /** The box's HTTPS origin, when it has one: the browser-side check fetches its /api/ping. */
  httpsOrigin: () => string | null;
}

function contentSecurityPolicy(nonce: string, httpsOrigin: string | null): string {
  const connect = httpsOrigin ? `'self' ${httpsOrigin}` : "'self'";
  return `default-src 'none'; style-src 'self'; script-src 'nonce-${nonce}'; connect-src ${connect}; img-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'`;
}

export function registerSecurityHeaders(app: HttpApp, options: SecurityHeaderOptions): void {
  app.addHook("onSend", async (request, reply, payload) => {
    const type = reply.getHeader("content-type");
    if (typeof type !== "string" || !type.startsWith("text/html")) return payload;
    reply
      .header("cache-control", "no-store")
      .header("content-security-policy", contentSecurityPolicy(cspNonce(request), options.httpsOrigin()))
      .header("x-content-type-options", "nosniff")
      .header("x-frame-options", "DENY")
      // Not no-referrer: under it Chromium sends `Origin: null` with the page's own form posts.
      .header("referrer-policy", "same-origin");
    return payload;
  });
}
