/** The JSON API: the status, the diagnostics report, and the ping other pages may call. */
import type { FastifyInstance } from "fastify";
import { toApiStatus } from "../status.ts";
import type { PageKit } from "../page-kit.ts";

export async function apiPlugin(app: FastifyInstance, { kit }: { kit: PageKit }): Promise<void> {
  const { deps } = kit;

  app.get("/api/status", async (_request, reply) => {
    return reply.header("cache-control", "no-store").send(toApiStatus(deps.view()));
  });

  app.get("/api/diagnostics", async (_request, reply) => {
    return reply.header("cache-control", "no-store").send(await deps.diagnostics());
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
