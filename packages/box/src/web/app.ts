/**
 * The web layer of one listener (docs/box.md "HTTP API"): the form parser, the two hooks every route
 * passes through (hooks.ts), the paired database's CORS (cors.ts: GET /api/status and POST /api/pos/test,
 * for its origin only), and one module of routes per feature:
 *
 *   pages      GET / (the homepage; opening it may start a check), POST /check, GET /diagnostics
 *   api        GET /api/status, GET /api/diagnostics, GET|OPTIONS /api/ping (CORS, private network),
 *              POST /api/pos/test (the paired database's POS page)
 *   assets     GET /static/box.css|js
 *   settings   POST /credential /credential/clear /log-level /connect /admin-password, GET /logs/download
 *   login      POST /login /logout
 *
 * Nothing here throws for a user's input.
 */
import type { HttpApp } from "./http-app.ts";
import { PageKit } from "./page-kit.ts";
import type { WebDeps, WebState } from "./page-kit.ts";
import { registerRequestGuard, registerSecurityHeaders } from "./hooks.ts";
import { registerPairedCors } from "./cors.ts";
import { httpsOrigin, isBoxHostName } from "./status.ts";
import { lanAddresses } from "../network.ts";
import type { Form } from "./request-data.ts";
import { pagesPlugin } from "./routes/pages.ts";
import { apiPlugin } from "./routes/api.ts";
import { assetsPlugin } from "./routes/assets.ts";
import { settingsPlugin } from "./routes/settings.ts";
import { loginPlugin } from "./routes/login.ts";

export interface WebOptions {
  deps: WebDeps;
  scheme: "http" | "https";
  state: WebState;
}

function registerFormParser(app: HttpApp): void {
  app.addContentTypeParser("application/x-www-form-urlencoded", { bodyLimit: 16 * 1024 }, (body) => {
    const form: Form = Object.create(null) as Form;
    for (const [key, value] of new URLSearchParams(body)) if (!Object.hasOwn(form, key)) form[key] = value;
    return form;
  });
}

export async function registerWeb(app: HttpApp, { deps, scheme, state }: WebOptions): Promise<void> {
  const kit = new PageKit(deps, scheme, state);
  registerFormParser(app);
  registerRequestGuard(app, {
    scheme,
    csrf: state.csrf,
    isBoxName: (host) => {
      const view = deps.view();
      // The advertised address first: it is the name POS pages call, on every request. Reading the
      // interfaces is a system call (50-130 us here, more with more interfaces), left for the other names.
      return isBoxHostName(host, view.https, [view.ip]) || isBoxHostName(host, view.https, lanAddresses());
    },
    pairedOrigin: () => deps.pairedOrigin(),
    refuse: (request, reply, why) => kit.refuse(request, reply, why),
  });
  registerSecurityHeaders(app, { httpsOrigin: () => httpsOrigin(deps.view().https) });
  registerPairedCors(app, { pairedOrigin: () => deps.pairedOrigin() });
  await pagesPlugin(app, { kit });
  await apiPlugin(app, { kit });
  await assetsPlugin(app);
  await settingsPlugin(app, { kit });
  await loginPlugin(app, { kit });
}
