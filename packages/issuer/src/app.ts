/**
 * The issuer's HTTP API (docs/issuer.md): built here, listened on by cli.ts, driven by tests on port 0.
 * Every answer is JSON; every failure is `{error:{code,message}}` or, for eligibility and identity
 * refusals, `{refusal:{reason,message}}` with 403.
 */
import Fastify, { LogController, errorCodes, type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from "fastify";
import type { Logger } from "pino";
import {
  BOX_IDENTIFIER_PATTERN,
  CERTIFICATE_PATH,
  ENROLL_PATH,
  ISSUER_ERRORS,
  MAX_BODY_BYTES,
  REFUSALS,
  SIGNATURE_HEADER,
  tlsServerOptions,
  type CertificateRequest,
  type EnrollRequest,
  type IssuerErrorCode,
} from "@boxcert/shared";
import { Issuance, type Outcome, type IssuanceOptions, type SignedInput } from "./issuance.ts";

export interface IssuerAppOptions extends Omit<IssuanceOptions, "logger"> {
  logger: Logger;
  /** Serve HTTPS with this certificate chain and key (PEM); plain HTTP when absent. */
  tls?: { cert: string; key: string };
}

declare module "fastify" {
  interface FastifyRequest {
    rawBody?: Buffer;
  }
}

const credentialProperties = {
  dbUuid: { type: "string", minLength: 1, maxLength: 64 },
  enterpriseCode: { type: "string", minLength: 1, maxLength: 128 },
  identifier: { type: "string", minLength: 36, maxLength: 36, pattern: BOX_IDENTIFIER_PATTERN },
  identityKey: { type: "string", minLength: 1, maxLength: 1024 },
  timestamp: { type: "string", minLength: 1, maxLength: 64 },
} as const;
const credentialRequired = ["dbUuid", "enterpriseCode", "identifier", "identityKey", "timestamp"];

const enrollSchema = { type: "object", required: credentialRequired, properties: credentialProperties } as const;
const certificateSchema = {
  type: "object",
  required: [...credentialRequired, "label", "csr"],
  properties: {
    ...credentialProperties,
    label: { type: "string", minLength: 1, maxLength: 63 },
    csr: { type: "string", minLength: 1, maxLength: 32 * 1024 },
  },
} as const;

function send<T>(reply: FastifyReply, outcome: Outcome<T>): FastifyReply {
  switch (outcome.kind) {
    case "ok":
      return reply.code(200).send(outcome.body);
    case "refused":
      return reply.code(REFUSALS[outcome.reason].status).send({ refusal: { reason: outcome.reason, message: outcome.message } });
    case "error":
      if (outcome.retryAfterSeconds !== undefined) reply.header("retry-after", String(outcome.retryAfterSeconds));
      return reply.code(ISSUER_ERRORS[outcome.code].status).send({ error: { code: outcome.code, message: outcome.message } });
  }
}

/** The body is not JSON: answered as bad_json, not as fastify's generic 400. */
class BadJsonError extends Error {
  override name = "BadJsonError";
  readonly statusCode = ISSUER_ERRORS.bad_json.status;
}

/** The catalogue's code for a request fastify (or the JSON parser) turned down before a route ran. */
function requestErrorCode(err: Error & { validation?: unknown }): IssuerErrorCode {
  if (err.validation) return "bad_request";
  if (err instanceof BadJsonError) return "bad_json";
  if (err instanceof errorCodes.FST_ERR_CTP_BODY_TOO_LARGE) return "body_too_large";
  if (err instanceof errorCodes.FST_ERR_CTP_INVALID_MEDIA_TYPE) return "unsupported_media_type";
  return "bad_request";
}

function signedInput(request: FastifyRequest, body: EnrollRequest): SignedInput {
  const header = request.headers[SIGNATURE_HEADER];
  return {
    raw: request.rawBody!,
    signature: Array.isArray(header) ? header[0] : header,
    dbUuid: body.dbUuid,
    enterpriseCode: body.enterpriseCode,
    identifier: body.identifier,
    identityKey: body.identityKey,
    timestamp: body.timestamp,
  };
}

export function buildIssuerApp(options: IssuerAppOptions): FastifyInstance {
  const app = Fastify({
    loggerInstance: options.logger,
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: MAX_BODY_BYTES,
    // Types are checked, never coerced: a number where a string belongs is a client bug worth a 400.
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, allErrors: false } },
    ...(options.tls ? { https: tlsServerOptions(options.tls.cert, options.tls.key) } : {}),
  }) as unknown as FastifyInstance;
  const issuance = new Issuance(options);

  // Signatures cover the exact body bytes, so the JSON parser keeps them; nothing but JSON is accepted.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser("application/json", { parseAs: "buffer", bodyLimit: MAX_BODY_BYTES }, (request, body, done) => {
    request.rawBody = body as Buffer;
    try {
      done(null, JSON.parse((body as Buffer).toString("utf8")));
    } catch (err) {
      done(new BadJsonError(`the body is not valid JSON: ${(err as Error).message}`), undefined);
    }
  });

  app.setErrorHandler((err: FastifyError & { validation?: unknown }, request, reply) => {
    const status = err.statusCode && err.statusCode >= 400 && err.statusCode < 600 ? err.statusCode : 500;
    if (status >= 500) {
      request.log.error({ err, url: request.url }, "issuer request failed");
      return reply.code(status).send({ error: { code: "internal_error" satisfies IssuerErrorCode, message: "the issuer failed to handle the request; it was logged" } });
    }
    const code = requestErrorCode(err);
    const message = err.validation ? `invalid request: ${err.message}` : err.message;
    return reply.code(status).send({ error: { code, message } });
  });
  app.setNotFoundHandler((request, reply) =>
    reply.code(ISSUER_ERRORS.not_found.status).send({ error: { code: "not_found" satisfies IssuerErrorCode, message: `no such endpoint: ${request.method} ${request.url.slice(0, 200)}` } }),
  );

  app.get("/healthz", async () => ({ ok: true }));
  app.post<{ Body: EnrollRequest }>(ENROLL_PATH, { schema: { body: enrollSchema } }, async (request, reply) =>
    send(reply, await issuance.enroll(signedInput(request, request.body))),
  );
  app.post<{ Body: CertificateRequest }>(CERTIFICATE_PATH, { schema: { body: certificateSchema } }, async (request, reply) =>
    send(reply, await issuance.certificate({ ...signedInput(request, request.body), label: request.body.label, csr: request.body.csr })),
  );
  return app;
}
