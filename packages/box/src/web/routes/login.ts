/**
 * The admin login and logout (the password itself is set in settings.ts). Guesses are limited per client
 * address and in total, and hashed one at a time (admin-password.ts); over a limit the answer is 429 with
 * Retry-After, without hashing.
 */
import type { HttpApp } from "../http-app.ts";
import { SESSION_COOKIE } from "../page-kit.ts";
import type { PageKit } from "../page-kit.ts";
import { formOf } from "../request-data.ts";

export async function loginPlugin(app: HttpApp, { kit }: { kit: PageKit }): Promise<void> {
  const { deps, state } = kit;
  const { sessions } = state;

  app.post("/login", async (request, reply) => {
    const stored = deps.config().adminPassword;
    if (stored === null) return kit.done(reply, "logged-in");
    const attempt = await sessions.tryPassword(request.ip, formOf(request).password ?? "", stored);
    if (attempt.outcome === "too-many" || attempt.outcome === "busy") return kit.refuse(request, reply.header("retry-after", attempt.retryAfterS), attempt.outcome, 429);
    if (attempt.outcome === "wrong") return kit.refuse(request, reply, "wrong-password");
    kit.sessionCookie(reply, sessions.open());
    deps.logger.info({ event: "admin_login" }, "admin logged in");
    return kit.done(reply, "logged-in");
  });

  app.post("/logout", async (request, reply) => {
    sessions.close(kit.cookies(request)[SESSION_COOKIE]);
    kit.sessionCookie(reply, null);
    return kit.done(reply, "logged-out");
  });
}
