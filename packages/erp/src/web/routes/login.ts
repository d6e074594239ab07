/** The operator's login and logout (login.ts): over the attempt limits the answer is 429 with Retry-After, unhashed. */
import type { FastifyInstance } from "fastify";
import { SESSION_COOKIE } from "../guard.ts";
import { formOf, queryField, type WebKit } from "../kit.ts";
import { renderLoginPage, type PagePath } from "../render.ts";

/** Where a login goes back to: one of the pages, never a URL from the request (no open redirect). */
function nextPage(value: string | undefined): PagePath {
  return value === "/pos" ? "/pos" : "/iot";
}

export async function loginPlugin(app: FastifyInstance, { kit }: { kit: WebKit }): Promise<void> {
  const { login, logger } = kit.deps;

  app.get("/login", async (request, reply) => {
    if (kit.loggedIn(request)) return reply.redirect(nextPage(queryField(request, "next")), 303);
    return kit.sendPage(reply, renderLoginPage(kit.pageContext(request, reply), nextPage(queryField(request, "next"))));
  });

  app.post("/login", async (request, reply) => {
    const form = formOf(request);
    if (login === null) return reply.redirect(nextPage(form.next), 303);
    const attempt = await login.tryPassword(request.ip, form.password ?? "");
    if (attempt.outcome === "too-many") return kit.refuse(request, reply.header("retry-after", String(attempt.retryAfterS)), "too-many", 429);
    if (attempt.outcome === "wrong") return kit.refuse(request, reply, "wrong-password");
    kit.sessionCookie(reply, login.openSession());
    logger.info({ event: "operator_login" }, "the operator logged in");
    return reply.redirect(nextPage(form.next), 303);
  });

  app.post("/logout", async (request, reply) => {
    login?.closeSession(kit.cookies(request)[SESSION_COOKIE]);
    kit.sessionCookie(reply, null);
    return reply.redirect("/login", 303);
  });
}
