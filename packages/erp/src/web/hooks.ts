/**
 * The two hooks every route passes through (app.ts):
 *
 *   guard             preHandler: Host, Origin and CSRF as guard.ts's policy says for the route
 *   security headers  onSend: every HTML page its CSP (the script's nonce; fetches to the boxes), no
 *                     caching, no framing, no sniffing, its Referrer-Policy; nosniff on everything
 */
import type { FastifyInstance } from "fastify";
import type { BoxRecord } from "../store.ts";
import { plainHttpOrigins } from "./box-addresses.ts";
import { checkRequest, CSRF_COOKIE, CSRF_FIELD, guardChecks } from "./guard.ts";
import { cspNonce, formOf, type WebKit } from "./kit.ts";

/**
 * Above this many box origins, connect-src is `https: http:` instead of the list. A subscription has a
 * few dozen boxes (three origins each); a list of hundreds would make every page's header tens of
 * kilobytes. The schemes still keep the scripts from WebSocket or data endpoints, and what a script may
 * run at all is held by script-src (this page's nonce only), which is what stops an injected script.
 */
export const MAX_CONNECT_ORIGINS = 300;

/**
 * Where the pages' scripts may fetch: the database itself and, for each box with an HTTPS address, that
 * origin and the plain-HTTP ones @boxcert/web asks when HTTPS fails (box-addresses.ts): its IP address,
 * the degraded path that keeps a POS working while the router or the certificate is fixed, and its name
 * over HTTP, which tells a name that resolves (a refused certificate) from one that does not (DNS
 * rebinding protection). Without them the CSP would block those requests and the module would misread
 * every failure as "nothing answers by IP". A box without an HTTPS address is not on the POS page.
 */
export function connectSources(boxes: readonly BoxRecord[]): string {
  const origins = new Set<string>();
  for (const box of boxes) {
    if (!box.httpsUrl) continue;
    origins.add(new URL(box.httpsUrl).origin);
    for (const origin of plainHttpOrigins(box)) origins.add(origin);
  }
  if (origins.size > MAX_CONNECT_ORIGINS) return "'self' https: http:";
  return ["'self'", ...[...origins].sort()].join(" ");
}

function contentSecurityPolicy(nonce: string, connect: string): string {
  return `default-src 'none'; style-src 'self'; script-src 'nonce-${nonce}'; connect-src ${connect}; img-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'`;
}

export function registerGuard(app: FastifyInstance, kit: WebKit, scheme: "http" | "https"): void {
  app.addHook("preHandler", async (request, reply) => {
    const checks = guardChecks(request.method, request.routeOptions.url);
    const refusal = checkRequest(checks, {
      hostHeader: request.headers.host,
      origin: request.headers.origin,
      cookie: kit.cookies(request)[CSRF_COOKIE],
      token: checks.originAndToken ? formOf(request)[CSRF_FIELD] : undefined,
      scheme,
      publicUrl: kit.deps.publicUrl,
      csrf: kit.csrf,
    });
    return refusal ? kit.refuse(request, reply, refusal) : undefined;
  });
}

export function registerSecurityHeaders(app: FastifyInstance, kit: WebKit): void {
  app.addHook("onSend", async (request, reply, payload) => {
    reply.header("x-content-type-options", "nosniff");
    const type = reply.getHeader("content-type");
    if (typeof type !== "string" || !type.startsWith("text/html")) return payload;
    reply
      .header("cache-control", "no-store")
      .header("content-security-policy", contentSecurityPolicy(cspNonce(request), connectSources(kit.deps.store.data.boxes)))
      .header("x-frame-options", "DENY")
      // Not no-referrer: under it Chromium sends `Origin: null` with the page's own form posts.
      .header("referrer-policy", "same-origin");
    return payload;
  });
}
