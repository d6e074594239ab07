/** The pages: the homepage (opening it may start a check), its "Check again" button, the diagnostics page. */
import type { HttpApp } from "../http-app.ts";
import { escapeHtml } from "@boxcert/shared";
import { renderDiagnosticsHtml } from "../../diagnostics/index.ts";
import { messages } from "../../messages/index.ts";
import { renderDiagnosticsPage, renderHomepage } from "../homepage.ts";
import type { PageKit } from "../page-kit.ts";

export async function pagesPlugin(app: HttpApp, { kit }: { kit: PageKit }): Promise<void> {
  const { deps } = kit;

  app.get("/", async (request, reply) => {
    await deps.homepageOpened();
    const ctx = kit.pageContext(request, reply);
    return kit.sendPage(reply, renderHomepage(deps.view(), ctx));
  });

  app.post("/check", async (_request, reply) => {
    deps.checkAgain();
    return kit.done(reply, "check");
  });

  app.get("/diagnostics", async (request, reply) => {
    const ctx = kit.pageContext(request, reply);
    let fragment: string;
    try {
      fragment = renderDiagnosticsHtml(await deps.diagnostics(), ctx.lang);
    } catch (err) {
      deps.logger.error({ event: "diagnostics_failed", err }, "the diagnostics failed");
      fragment = `<p class="error">${escapeHtml(messages(ctx.lang).pages.diagnosticsFailed((err as Error).message))}</p>`;
    }
    return kit.sendPage(reply, renderDiagnosticsPage(deps.view(), ctx, fragment));
  });
}
