/**
 * The database reports itself to the issuer (docs/erp.md "POST /v1/database"): at start and once a day,
 * signed with the database key. A failed report is logged and tried again with a backoff (shared
 * backoff.ts; the issuer's Retry-After when longer), never later than the next daily report. The IoT
 * page shows the kind the issuer records and the last failure (status()).
 */
import type { Logger } from "pino";
import { backoffDelay, parseRetryAfter, SIGNATURE_HEADER, type BackoffSchedule } from "@boxcert/shared";
import { DATABASE_REPORT_PATH, isDatabaseKind, type DatabaseKind, type DatabaseReport } from "./wire.ts";
import type { Database } from "./database.ts";
import { signBody } from "./signing.ts";
import type { HttpAnswer, JsonPoster } from "./http-client.ts";

export const REPORT_INTERVAL_MS = 24 * 3600_000;
/** 1 minute doubling to 1 hour, ±20%: an issuer outage costs a few requests an hour per database. */
export const REPORT_BACKOFF: BackoffSchedule = { initialMs: 60_000, maxMs: 3600_000, factor: 2, jitter: 0.2 };

export interface ReportStatus {
  /** The issuer's last 200 answer. */
  recorded: { kind: DatabaseKind; subscription: string; at: string } | null;
  /** Why the last attempt failed (null after a success) and when the next one is. */
  failure: { detail: string; at: string; nextAttemptAt: string } | null;
}

export interface ReporterOptions {
  issuerUrl: URL;
  database: Database;
  poster: JsonPoster;
  clock: () => number;
  logger: Logger;
  intervalMs?: number;
  backoff?: BackoffSchedule;
}

type Attempt = { ok: true; kind: DatabaseKind; subscription: string } | { ok: false; detail: string; retryAfterMs: number | null };

function parseJson(text: string): Record<string, unknown> {
  try {
    const value: unknown = JSON.parse(text);
    return typeof value === "object" && value !== null ? (value as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

/** The issuer's answer as a success or a failure with the words its body gave. */
export function classifyAnswer(answer: HttpAnswer, now: number): Attempt {
  const body = parseJson(answer.text);
  if (answer.status === 200 && isDatabaseKind(body.kind) && typeof body.subscription === "string") {
    return { ok: true, kind: body.kind, subscription: body.subscription };
  }
  const retryAfterMs = parseRetryAfter(answer.retryAfter, now);
  const refusal = body.refusal as { reason?: unknown; message?: unknown } | undefined;
  if (answer.status === 403 && refusal && typeof refusal.reason === "string") {
    return { ok: false, detail: `the issuer refused the report: ${refusal.reason}${typeof refusal.message === "string" ? ` (${refusal.message})` : ""}`, retryAfterMs };
  }
  const error = body.error as { code?: unknown; message?: unknown } | undefined;
  const said = error && typeof error.message === "string" ? `: ${error.message}${typeof error.code === "string" ? ` (${error.code})` : ""}` : "";
  const what = answer.status === 200 ? "an answer without kind and subscription" : `HTTP ${answer.status}`;
  return { ok: false, detail: `the issuer answered ${what}${said}`, retryAfterMs };
}

export class IssuerReporter {
  readonly #options: ReporterOptions;
  readonly #intervalMs: number;
  readonly #backoff: BackoffSchedule;
  #status: ReportStatus = { recorded: null, failure: null };
  #failures = 0;
  #timer: NodeJS.Timeout | null = null;
  #stopped = false;
  #running: Promise<void> | null = null;

  constructor(options: ReporterOptions) {
    this.#options = options;
    this.#intervalMs = options.intervalMs ?? REPORT_INTERVAL_MS;
    this.#backoff = options.backoff ?? REPORT_BACKOFF;
  }

  status(): ReportStatus {
    return this.#status;
  }

  /** The first report now; the next ones by themselves. */
  start(): void {
    this.#run();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    await this.#running;
  }

  #run(): void {
    this.#timer = null;
    this.#running = this.#report().finally(() => {
      this.#running = null;
    });
  }

  #body(): Buffer {
    const { record, publicKey } = this.#options.database;
    const report: DatabaseReport = {
      dbUuid: record.dbUuid,
      enterpriseCode: record.enterpriseCode,
      kind: record.kind,
      databaseKey: publicKey,
      timestamp: new Date(this.#options.clock()).toISOString(),
    };
    return Buffer.from(JSON.stringify(report));
  }

  async #attempt(): Promise<Attempt> {
    const body = this.#body();
    const url = new URL(this.#options.issuerUrl);
    // Appended to the issuer URL's own path, as the box does (an issuer behind a path prefix).
    url.pathname = `${url.pathname.replace(/\/+$/, "")}${DATABASE_REPORT_PATH}`;
    try {
      const answer = await this.#options.poster.post(url, body, { [SIGNATURE_HEADER]: signBody(this.#options.database.key, body) });
      return classifyAnswer(answer, this.#options.clock());
    } catch (err) {
      return { ok: false, detail: (err as Error).message, retryAfterMs: null };
    }
  }

  async #report(): Promise<void> {
    const attempt = await this.#attempt();
    if (this.#stopped) return;
    const now = this.#options.clock();
    const at = new Date(now).toISOString();
    const { logger } = this.#options;
    let delay: number;
    if (attempt.ok) {
      this.#failures = 0;
      delay = this.#intervalMs;
      this.#status = { recorded: { kind: attempt.kind, subscription: attempt.subscription, at }, failure: null };
      const declared = this.#options.database.record.kind;
      logger.info({ event: "issuer_report", declared, recorded: attempt.kind, subscription: attempt.subscription }, `the issuer records this database as ${attempt.kind}`);
    } else {
      delay = Math.min(this.#intervalMs, Math.max(backoffDelay(this.#backoff, this.#failures), attempt.retryAfterMs ?? 0));
      this.#failures++;
      this.#status = { recorded: this.#status.recorded, failure: { detail: attempt.detail, at, nextAttemptAt: new Date(now + delay).toISOString() } };
      logger.warn({ event: "issuer_report_failed", detail: attempt.detail, retryInS: Math.round(delay / 1000) }, "the report to the issuer failed; it is tried again");
    }
    this.#timer = setTimeout(() => this.#run(), delay);
  }
}
