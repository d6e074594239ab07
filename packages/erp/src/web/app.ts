/**
 * The database's HTTP layer (docs/erp-server.md "Pages", "HTTP API"): body parsers, the two hooks every
 * route passes through (hooks.ts), and one plugin per feature:
 *
 *   registration  POST /api/iot/boxes (the boxes' signed JSON)
 *   pages         GET / /iot /pos, POST /iot/connect
 *   login         GET|POST /login, POST /logout
 *   assets        GET /static/erp.css|iot.js|pos.js|boxcert-web.js (the last from @boxcert/web)
 *
 * Built here, listened on by erp.ts, driven by tests on port 0.
 */
import Fastify, { errorCodes, LogController, type FastifyBaseLogger, type FastifyError, type FastifyInstance } from "fastify";
import { tlsServerOptions } from "@boxcert/shared";
import type { RegistrationErrorCode } from "../wire.ts";
import { registerGuard, registerSecurityHeaders } from "./hooks.ts";
import { WebKit, type WebDeps } from "./kit.ts";
import { assetsPlugin } from "./routes/assets.ts";
import { loginPlugin } from "./routes/login.ts";
import { pagesPlugin } from "./routes/pages.ts";
import { registrationPlugin, sendError } from "./routes/registration.ts";

declare module "fastify" {
  interface FastifyRequest {
    rawBody?: Buffer;
  }
}

/** A registration is a few hundred bytes; a form a few hundred more. */
export const MAX_BODY_BYTES = 16 * 1024;
/** A whole request must arrive within this; its headers within the next. */
export const REQUEST_TIMEOUT_MS = 30_000;
export const HEADERS_TIMEOUT_MS = 10_000;
/** Idle keep-alive connections are closed after this; silent ones after the next. */
export const KEEP_ALIVE_TIMEOUT_MS = 5_000;
export const IDLE_TIMEOUT_MS = 60_000;

export interface ErpAppOptions extends WebDeps {
  /** HTTPS with this chain and key; plain HTTP when null (--plain-http). */
  tls: { cert: string; key: string } | null;
}

class BadJsonError extends Error {
  override readonly name = "BadJsonError";
  readonly statusCode = 400;
}

function registerParsers(app: FastifyInstance): void {
  app.removeAllContentTypeParsers();
  // Signatures cover the exact body bytes, so the JSON parser keeps them.
  app.addContentTypeParser("application/json", { parseAs: "buffer", bodyLimit: MAX_BODY_BYTES }, (request, body, done) => {
    request.rawBody = body as Buffer;
    try {
      done(null, JSON.parse((body as Buffer).toString("utf8")));
    } catch (err) {
      done(new BadJsonError(`the body is not valid JSON: ${(err as Error).message}`), undefined);
    }
  });
  app.addContentTypeParser("application/x-www-form-urlencoded", { parseAs: "string", bodyLimit: MAX_BODY_BYTES }, (_request, body, done) => {
    const form = Object.create(null) as Record<string, string>;
    for (const [key, value] of new URLSearchParams(body as string)) if (!Object.hasOwn(form, key)) form[key] = value;
    done(null, form);
  });
}

/** The code of a request turned down before its route ran. */
function requestErrorCode(err: FastifyError & { validation?: unknown }): RegistrationErrorCode {
  if (err instanceof BadJsonError) return "bad_json";
  if (err instanceof errorCodes.FST_ERR_CTP_BODY_TOO_LARGE) return "body_too_large";
  if (err instanceof errorCodes.FST_ERR_CTP_INVALID_MEDIA_TYPE) return "unsupported_media_type";
  return "bad_request";
}

function registerErrorHandlers(app: FastifyInstance, options: ErpAppOptions): void {
  app.setErrorHandler((err: FastifyError & { validation?: unknown }, request, reply) => {
    const status = err.statusCode ?? 500;
    if (status >= 500 || status < 400) {
      options.logger.error({ event: "request_failed", err, url: request.url.slice(0, 200) }, "a request failed");
      return reply.code(500).send({ error: { code: "internal_error", message: "the database failed to handle the request; it was logged" } });
    }
    return sendError(reply, requestErrorCode(err), err.validation ? `invalid request: ${err.message}` : err.message);
  });
  app.setNotFoundHandler((_request, reply) => reply.code(404).type("text/plain; charset=utf-8").send("not found"));
}

export async function buildErpApp(options: ErpAppOptions): Promise<FastifyInstance> {
  const scheme = options.tls ? "https" : "http";
  const serverOptions = { requestTimeout: REQUEST_TIMEOUT_MS, headersTimeout: HEADERS_TIMEOUT_MS };
  const app = Fastify({
    // Fastify's own lines from warn up; the database logs its events itself.
    loggerInstance: options.logger.child({ component: "http" }, { level: "warn" }) as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: MAX_BODY_BYTES,
    requestTimeout: REQUEST_TIMEOUT_MS,
    keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS,
    connectionTimeout: IDLE_TIMEOUT_MS,
    return503OnClosing: true,
    // Types are checked, never coerced: a number where a string belongs is a client's bug worth a 400.
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, allErrors: false } },
    ...(options.tls ? { https: { ...tlsServerOptions(options.tls.cert, options.tls.key), ...serverOptions } } : { http: serverOptions }),
  }) as unknown as FastifyInstance;
  const kit = new WebKit(options);
  registerParsers(app);
  registerErrorHandlers(app, options);
  registerGuard(app, kit, scheme);
  registerSecurityHeaders(app, kit);
  app.get("/healthz", async () => ({ ok: true }));
  await app.register(registrationPlugin, { kit });
  await app.register(pagesPlugin, { kit });
  await app.register(loginPlugin, { kit });
  await app.register(assetsPlugin);
  app.addHook("onClose", async () => kit.refusals.flush());
  return app;
}
