/** The admin login and logout (the password itself is set in settings.ts). At most 10 wrong passwords a minute. */
import type { FastifyInstance } from "fastify";
import { verifyPassword } from "../admin-password.ts";
import { SESSION_COOKIE } from "../page-kit.ts";
import type { PageKit } from "../page-kit.ts";
import { formOf } from "../request-data.ts";

export async function loginPlugin(app: FastifyInstance, { kit }: { kit: PageKit }): Promise<void> {
  const { deps, state } = kit;
  const { sessions } = state;

  app.post("/login", async (request, reply) => {
    const stored = deps.config().adminPassword;
    if (stored === null) return kit.done(reply, "logged-in");
    if (!sessions.mayTry()) return kit.refuse(request, reply, "too-many", 429);
    if (!(await verifyPassword(formOf(request).password ?? "", stored))) {
      sessions.failed();
      return kit.refuse(request, reply, "wrong-password");
    }
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
