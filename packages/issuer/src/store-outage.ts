/**
 * The issuer while its store is unreachable (PostgreSQL restarting or down, SQLite locked or its disk
 * failing): every request that needed the store is answered 503 store_unavailable with Retry-After, and
 * the outage is logged as one event, not one line per request (hundreds of identical lines a second would
 * bury what matters): a warning when it starts, a summary every minute while it lasts, and one when the
 * store answers again. The pool reconnects by itself (packages/store/src/db.ts), so nothing restarts.
 */
import type { FastifyInstance, FastifyReply } from "fastify";
import type { Logger } from "pino";
import type { IssuerErrorCode } from "@boxcert/shared";
import { isStoreUnavailable } from "@boxcert/store";

/** What an issuer without its store tells a box: come back in this many seconds (the box adds jitter). */
export const STORE_RETRY_AFTER_S = 5;
/** While an outage lasts, its summary is logged this often. */
export const OUTAGE_SUMMARY_EVERY_MS = 60_000;

/** One outage at a time: when it began, what it answered, the last error seen. */
export class StoreOutage {
  private since: number | null = null;
  private answered = 0;
  private answeredAtSummary = 0;
  private lastSummaryAt = 0;
  private lastError = "";

  constructor(
    private readonly logger: Logger,
    private readonly clock: () => number = Date.now,
  ) {}

  get ongoing(): boolean {
    return this.since !== null;
  }

  /** A request ended because the store is unavailable. */
  failed(err: Error): void {
    const now = this.clock();
    this.answered++;
    this.lastError = describe(err);
    if (this.since === null) {
      this.since = now;
      this.lastSummaryAt = now;
      this.answeredAtSummary = 0;
      this.logger.warn(
        { event: "store_unavailable", error: this.lastError, retryAfterSeconds: STORE_RETRY_AFTER_S },
        "the store is unreachable: requests are answered 503 store_unavailable until it answers again",
      );
    } else if (now - this.lastSummaryAt >= OUTAGE_SUMMARY_EVERY_MS) {
      this.logger.warn(
        { event: "store_unavailable", sinceMs: now - this.since, answered503: this.answered, answered503SinceLast: this.answered - this.answeredAtSummary, error: this.lastError },
        "the store is still unreachable",
      );
      this.lastSummaryAt = now;
      this.answeredAtSummary = this.answered;
    }
  }

  /**
   * A request that began at `startedAt` got its answer from the store: an outage, if there was one, is
   * over. A request that began before the outage may have read the store before it went away.
   */
  reachable(startedAt: number): void {
    if (this.since === null || startedAt < this.since) return;
    this.logger.warn(
      { event: "store_reachable", unavailableMs: this.clock() - this.since, answered503: this.answered, lastError: this.lastError },
      "the store answers again",
    );
    this.since = null;
    this.answered = 0;
  }
}

function describe(err: Error): string {
  const code = (err as { code?: unknown }).code;
  const message = err.message || (err instanceof AggregateError ? err.errors.map((e: Error) => e.message).join("; ") : String(err));
  return typeof code === "string" && !message.includes(code) ? `${code}: ${message}` : message;
}

/**
 * Registers the outage's bookkeeping on `app` and returns what its error handler calls first: the 503
 * answer for a store failure (the reply), or null for any other error. Every POST answered 200 or 403 read
 * the store (an answer or a refusal came from its facts), so it ends an outage. `clock` is the wall clock
 * (fastify's request times are), not the issuer's injected one, which tests may stop.
 */
export function storeOutageHandling(app: FastifyInstance, logger: Logger, clock: () => number = Date.now): (err: Error, reply: FastifyReply) => FastifyReply | null {
  const outage = new StoreOutage(logger, clock);
  app.addHook("onResponse", async (request, reply) => {
    if (outage.ongoing && request.method === "POST" && (reply.statusCode === 200 || reply.statusCode === 403)) outage.reachable(clock() - reply.elapsedTime);
  });
  return (err, reply) => {
    if (!isStoreUnavailable(err)) return null;
    outage.failed(err);
    return reply
      .code(503)
      .header("retry-after", String(STORE_RETRY_AFTER_S))
      .send({ error: { code: "store_unavailable" satisfies IssuerErrorCode, message: `the issuer's store is unreachable (${describe(err)}); try again in ${STORE_RETRY_AFTER_S} s` } });
  };
}
