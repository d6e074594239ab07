/**
 * The JSON API: the status, the diagnostics report, the ping other pages may call, and the POS test the
 * paired database's POS page may call (its CORS: ../cors.ts; its guard, the paired Origin: request-guard.ts).
 */
import type { HttpApp } from "../http-app.ts";
import { toApiStatus } from "../status.ts";
import type { PageKit } from "../page-kit.ts";
import { clip } from "../request-log.ts";

/** The POS test's note: at most this many characters (docs/erp.md). */
export const POS_NOTE_MAX = 200;

/**
 * The POS test's body: `{}` or `{"note": "..."}` (no body counts as `{}`). Checked by hand: it is the box's
 * only request body in JSON, and a JSON Schema validator (ajv, about 250 modules) would cost an idle box
 * more memory than the rest of its web layer.
 */
export function posTestNote(body: unknown): string | null {
  if (body === undefined || body === null) return "";
  if (typeof body !== "object" || Array.isArray(body)) return null;
  if (!Object.hasOwn(body, "note")) return "";
  const note = (body as { note: unknown }).note;
  return typeof note === "string" && note.length <= POS_NOTE_MAX ? note : null;
}

export async function apiPlugin(app: HttpApp, { kit }: { kit: PageKit }): Promise<void> {
  const { deps } = kit;

  app.get("/api/status", async (_request, reply) => {
    return reply.header("cache-control", "no-store").send(toApiStatus(deps.view()));
  });

  app.get("/api/diagnostics", async (_request, reply) => {
    return reply.header("cache-control", "no-store").send(await deps.diagnostics());
  });

  // The body is judged in the handler, after the request guard (a preHandler): another site's POST is a
  // 403 whatever its body.
  app.post("/api/pos/test", { bodyLimit: 4096 }, async (request, reply) => {
    const note = posTestNote(request.body);
    if (note === null) {
      return reply.code(400).send({ error: { code: "bad_request", message: `the body must be {"note": a string of at most ${POS_NOTE_MAX} characters}` } });
    }
    const state = kit.state.posTests;
    state.count += 1;
    kit.state.posLog.record("pos_test", { note: clip(note), origin: clip(request.headers.origin), count: state.count }, "a test request from the POS page");
    return reply.header("cache-control", "no-store").send({ ok: true, at: new Date(deps.clock()).toISOString(), count: state.count });
  });

  // A device API: any page may call it (the ERP's POS page finds the box this way), private-network
  // preflights included. Nothing else on the box carries Access-Control-Allow-Origin; the request guard
  // exempts it (request-guard.ts GUARD_EXEMPT).
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
}
