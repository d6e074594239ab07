/**
 * The routes both listeners serve: the homepage, the status API and the ping the POS page uses to find
 * the box from the browser.
 */
import { randomBytes } from "node:crypto";
import type { FastifyInstance } from "fastify";
import type { BoxStatus } from "./status.ts";
import { renderHomepage } from "./homepage.ts";
import type { Clock } from "./clock.ts";

export interface RouteDeps {
  status(): BoxStatus;
  /** The homepage was opened: re-read the configuration, maybe start a background check. Never waits for it. */
  homepageOpened(): Promise<void>;
  /** "Check again": start a check now (or join the running one), in the background. */
  checkAgain(): void;
  clock: Clock;
  dataDir: string;
}

export function registerRoutes(app: FastifyInstance, deps: RouteDeps): void {
  app.get<{ Querystring: { check?: string } }>("/", async (request, reply) => {
    if (request.query.check === "1") {
      deps.checkAgain();
      return reply.redirect("/", 303);
    }
    await deps.homepageOpened();
    const nonce = randomBytes(16).toString("base64");
    const html = renderHomepage(deps.status(), { now: deps.clock(), nonce, dataDir: deps.dataDir });
    return reply
      .type("text/html; charset=utf-8")
      .header("cache-control", "no-store")
      .header(
        "content-security-policy",
        `default-src 'none'; style-src 'unsafe-inline'; script-src 'nonce-${nonce}'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'`,
      )
      .header("x-content-type-options", "nosniff")
      .header("referrer-policy", "no-referrer")
      .send(html);
  });

  app.get("/api/status", async (_request, reply) => {
    return reply.header("cache-control", "no-store").send(deps.status());
  });

  app.get("/api/ping", async (_request, reply) => {
    return reply.header("access-control-allow-origin", "*").header("cache-control", "no-store").send({ ok: true });
  });
}
