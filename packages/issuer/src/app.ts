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
  DATABASE_KINDS,
  DATABASE_PATH,
  ENROLL_PATH,
  ISSUER_ERRORS,
  MAX_BODY_BYTES,
  REFUSALS,
  SIGNATURE_HEADER,
  tlsServerOptions,
  type CertificateRequest,
  type DatabaseReport,
  type EnrollRequest,
  type IssuerErrorCode,
} from "@boxcert/shared";
import { Issuance, type Outcome, type IssuanceOptions, type SignedInput } from "./issuance.ts";
import { DatabaseReporting, type DatabaseReportInput, type DatabaseReports } from "./database-report.ts";
import { isStoreFailure, routeOf, type IssuerMetricsRecorder, type RequestOutcome } from "./metrics.ts";
import { storeOutageHandling } from "./store-outage.ts";

export interface IssuerAppOptions extends Omit<IssuanceOptions, "logger"> {
  logger: Logger;
  /** Where databases' reports of themselves are recorded (POST /v1/database). */
  databases: DatabaseReports;
  /** Serve HTTPS with this certificate chain and key (PEM); plain HTTP when absent. */
  tls?: { cert: string; key: string };
  /** POST requests in flight at most (--max-in-flight); beyond, `busy` at once. DEFAULT_MAX_IN_FLIGHT when absent. */
  maxInFlight?: number;
  /** Counts every answer (busy ones too), its latency, the certificates handed out and requests in flight (metrics.ts). */
  metrics?: IssuerMetricsRecorder;
}

/**
 * Requests in flight (read, checked, signed, stored, answered) one issuer process takes at once. Beyond it a
 * request is answered `busy` (503, Retry-After) before its body is read: under a renewal storm the issuer
 * answers fast and stays within its memory instead of queueing without bound, and the boxes come back
 * later, each at a slightly different time (the box adds jitter to Retry-After).
 */
export const DEFAULT_MAX_IN_FLIGHT = 256;
/** What a busy issuer tells a box: come back in this many seconds (each box adds up to a fifth more). */
export const BUSY_RETRY_AFTER_S = 5;

declare module "fastify" {
  interface FastifyRequest {
    rawBody?: Buffer;
    /** How the request ended, as the metrics count it; set where the answer is picked. */
    outcome?: RequestOutcome;
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

/**
 * A database report records the UUID it carries (trust on first use), so the UUID is a UUID, in either
 * case (the store keeps it lowercase, as `admin database add` does); a box only looks its database up.
 */
const DATABASE_UUID_PATTERN = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$";
const databaseReportSchema = {
  type: "object",
  required: ["dbUuid", "enterpriseCode", "kind", "databaseKey", "timestamp"],
  properties: {
    dbUuid: { ...credentialProperties.dbUuid, pattern: DATABASE_UUID_PATTERN },
    enterpriseCode: credentialProperties.enterpriseCode,
    kind: { type: "string", enum: DATABASE_KINDS },
    // Base64 of a P-256 SPKI: 124 characters (88 compressed); recorded as the database's key.
    databaseKey: { type: "string", minLength: 1, maxLength: 256, pattern: "^[A-Za-z0-9+/]+={0,2}$" },
    timestamp: credentialProperties.timestamp,
  },
} as const;

function send<T>(reply: FastifyReply, outcome: Outcome<T>): FastifyReply {
  switch (outcome.kind) {
    case "ok":
      reply.request.outcome = OK;
      return reply.code(200).send(outcome.body);
    case "refused":
      reply.request.outcome = { kind: "refused", reason: outcome.reason };
      return reply.code(REFUSALS[outcome.reason].status).send({ refusal: { reason: outcome.reason, message: outcome.message } });
    case "error":
      reply.request.outcome = { kind: "error", code: outcome.code };
      if (outcome.retryAfterSeconds !== undefined) reply.header("retry-after", String(outcome.retryAfterSeconds));
      return reply.code(ISSUER_ERRORS[outcome.code].status).send({ error: { code: outcome.code, message: outcome.message } });
  }
}

const OK: RequestOutcome = { kind: "ok" };
const BUSY: RequestOutcome = { kind: "error", code: "busy" };

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

function signature(request: FastifyRequest): string | undefined {
  const header = request.headers[SIGNATURE_HEADER];
  return Array.isArray(header) ? header[0] : header;
}

function signedInput(request: FastifyRequest, body: EnrollRequest): SignedInput {
  return {
    raw: request.rawBody!,
    signature: signature(request),
    dbUuid: body.dbUuid,
    enterpriseCode: body.enterpriseCode,
    identifier: body.identifier,
    identityKey: body.identityKey,
    timestamp: body.timestamp,
  };
}

/** Only the report's own fields: anything else the body carries is signed, but not read. */
function reportInput(request: FastifyRequest, body: DatabaseReport): DatabaseReportInput {
  const { dbUuid, enterpriseCode, kind, databaseKey, timestamp } = body;
  return { raw: request.rawBody!, signature: signature(request), dbUuid, enterpriseCode, kind, databaseKey, timestamp };
}

/** Counts POSTs from their first byte to their connection's answer (or close); answers `busy` beyond `max`. */
function limitInFlight(app: FastifyInstance, max: number, metrics: IssuerMetricsRecorder | undefined): void {
  let inFlight = 0;
  metrics?.observeInFlight(() => inFlight, max);
  app.addHook("onRequest", async (request, reply) => {
    if (request.method !== "POST") return;
    if (inFlight >= max) {
      request.outcome = BUSY;
      // The body stays unread: the connection closes after the answer rather than reading it.
      return reply
        .code(ISSUER_ERRORS.busy.status)
        .header("retry-after", String(BUSY_RETRY_AFTER_S))
        .header("connection", "close")
        .send({ error: { code: "busy" satisfies IssuerErrorCode, message: `the issuer has ${max} requests in flight; come back in ${BUSY_RETRY_AFTER_S} s` } });
    }
    inFlight++;
    reply.raw.once("close", () => inFlight--);
  });
}

const NOT_FOUND: RequestOutcome = { kind: "error", code: "not_found" };
const INTERNAL_ERROR: RequestOutcome = { kind: "error", code: "internal_error" };

/**
 * Every answer counted once, when it was sent, by route and outcome, with its latency. An answer no
 * handler labelled (fastify's own) is counted ok below 400 and internal_error above; a request whose client
 * went away before its answer is not counted (it got none).
 */
function countAnswers(app: FastifyInstance, metrics: IssuerMetricsRecorder): void {
  app.addHook("onResponse", async (request, reply) => {
    const outcome = request.outcome ?? (reply.statusCode < 400 ? OK : INTERNAL_ERROR);
    metrics.recordRequest(routeOf(request.routeOptions.url), outcome, reply.elapsedTime / 1000);
  });
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
  limitInFlight(app, options.maxInFlight ?? DEFAULT_MAX_IN_FLIGHT, options.metrics);
  if (options.metrics) countAnswers(app, options.metrics);
  const reporting = new DatabaseReporting({ databases: options.databases, clock: options.clock, logger: options.logger });

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

  const storeUnavailable = storeOutageHandling(app, options.logger);
  app.setErrorHandler((err: FastifyError & { validation?: unknown }, request, reply) => {
    const unavailable = storeUnavailable(err, reply);
    if (unavailable) {
      request.outcome = { kind: "error", code: "store_unavailable" };
      options.metrics?.recordStoreError();
      return unavailable;
    }
    const status = err.statusCode && err.statusCode >= 400 && err.statusCode < 600 ? err.statusCode : 500;
    if (status >= 500) {
      request.outcome = INTERNAL_ERROR;
      if (isStoreFailure(err)) options.metrics?.recordStoreError();
      request.log.error({ err, url: request.url }, "issuer request failed");
      return reply.code(status).send({ error: { code: "internal_error" satisfies IssuerErrorCode, message: "the issuer failed to handle the request; it was logged" } });
    }
    const code = requestErrorCode(err);
    request.outcome = { kind: "error", code };
    const message = err.validation ? `invalid request: ${err.message}` : err.message;
    return reply.code(status).send({ error: { code, message } });
  });
  app.setNotFoundHandler((request, reply) => {
    request.outcome = NOT_FOUND;
    return reply.code(ISSUER_ERRORS.not_found.status).send({ error: { code: "not_found" satisfies IssuerErrorCode, message: `no such endpoint: ${request.method} ${request.url.slice(0, 200)}` } });
  });

  app.get("/healthz", async () => ({ ok: true }));
  app.post<{ Body: EnrollRequest }>(ENROLL_PATH, { schema: { body: enrollSchema } }, async (request, reply) =>
    send(reply, await issuance.enroll(signedInput(request, request.body))),
  );
  const sourceKind = options.source.name.startsWith("acme") ? "acme" : "embedded";
  app.post<{ Body: CertificateRequest }>(CERTIFICATE_PATH, { schema: { body: certificateSchema } }, async (request, reply) => {
    const outcome = await issuance.certificate({ ...signedInput(request, request.body), label: request.body.label, csr: request.body.csr });
    if (outcome.kind === "ok") options.metrics?.recordCertificate(sourceKind, outcome.body.reused);
    return send(reply, outcome);
  });
  app.post<{ Body: DatabaseReport }>(DATABASE_PATH, { schema: { body: databaseReportSchema } }, async (request, reply) =>
    send(reply, await reporting.report(reportInput(request, request.body))),
  );
  return app;
}
