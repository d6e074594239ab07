/**
 * Cross-origin calls from the database the box is paired with (docs/erp.md "Calling the box from the POS
 * page"): the POS page, served from the database's origin, reads GET /api/status and posts
 * POST /api/pos/test on the box's HTTPS name. Only that origin (config.json's pairedOrigin, once the box
 * has registered) gets `Access-Control-Allow-Origin`; any other origin gets no CORS header, so the browser
 * withholds the answer (and the request guard refuses its POST: request-guard.ts).
 *
 * Preflights (OPTIONS with Access-Control-Request-Method, private-network ones included) are answered for
 * that origin and the route's own method only; anything else is a 403 without CORS headers. `Vary: Origin`
 * is on every answer of these routes: the same URL answers differently per origin, and a cache must know.
 * /api/ping, open to every origin, is elsewhere (routes/api.ts).
 */
import type { HttpApp, HttpReply, HttpRequest } from "./http-app.ts";

/** The routes the paired database's pages may call, with their one method. */
export const PAIRED_CORS_ROUTES: ReadonlyMap<string, string> = new Map([
  ["/api/status", "GET"],
  ["/api/pos/test", "POST"],
]);

/** How long a browser may reuse an answered preflight: short, so an unpairing takes effect soon. */
const PREFLIGHT_MAX_AGE_S = 600;

export interface PairedCorsOptions {
  /** The origin of the database the box is paired with now, or null. */
  pairedOrigin: () => string | null;
}

/** The request's Origin when it is the paired database's; null otherwise (no Origin, another, or no pairing). */
function pairedRequestOrigin(request: HttpRequest, pairedOrigin: string | null): string | null {
  const origin = request.headers.origin;
  return pairedOrigin !== null && origin === pairedOrigin ? origin : null;
}

function answerPreflight(request: HttpRequest, reply: HttpReply, method: string, pairedOrigin: string | null): HttpReply {
  const origin = pairedRequestOrigin(request, pairedOrigin);
  const asked = request.headers["access-control-request-method"];
  if (origin === null || asked !== method) return reply.code(403).send();
  reply.code(204).header("access-control-allow-methods", method).header("access-control-max-age", String(PREFLIGHT_MAX_AGE_S));
  const requestedHeaders = request.headers["access-control-request-headers"];
  if (typeof requestedHeaders === "string") reply.header("access-control-allow-headers", requestedHeaders);
  if (request.headers["access-control-request-private-network"] === "true") reply.header("access-control-allow-private-network", "true");
  return reply.send();
}

export function registerPairedCors(app: HttpApp, options: PairedCorsOptions): void {
  app.addHook("onSend", async (request, reply, payload) => {
    if (!PAIRED_CORS_ROUTES.has(request.routeOptions.url ?? "")) return payload;
    reply.header("vary", "Origin");
    const origin = pairedRequestOrigin(request, options.pairedOrigin());
    if (origin !== null) reply.header("access-control-allow-origin", origin);
    return payload;
  });
  for (const [route, method] of PAIRED_CORS_ROUTES) {
    app.options(route, async (request, reply) => answerPreflight(request, reply, method, options.pairedOrigin()));
  }
}
