/**
 * The log lines any web page can cause: a refused cross-site POST, a request without the admin session,
 * a wrong password. A page the shop's browser opens can send thousands of such requests (an <img> or a
 * form per request), and the log history is a few megabytes: one line each would flush the lines that
 * explain the box's real trouble. So the first few of an interval are written as they come, the rest only
 * counted, and one summary line (how many, by reason) ends the interval. Every field is bounded in length.
 * The paired database's POS test requests (routes/api.ts) are logged the same way, in their own log: a POS
 * page in a loop must not flush the history either, nor crowd out the refusals.
 */
import type { Logger } from "pino";

/** Lines written one by one per interval; enough to see what happens, too few to flush the history. */
export const REQUEST_LINES_PER_INTERVAL = 10;
export const REQUEST_LOG_INTERVAL_MS = 60_000;
/** A path, Origin or Host longer than this is cut in the log: a request's own text is not the box's to store. */
const MAX_FIELD_LENGTH = 200;

export function clip(value: string | undefined): string | null {
  if (value === undefined) return null;
  return value.length > MAX_FIELD_LENGTH ? `${value.slice(0, MAX_FIELD_LENGTH)}…` : value;
}

export interface RequestLogOptions {
  linesPerInterval?: number;
  intervalMs?: number;
  now?: () => number;
  /** The lines' event ("request_refused"), the summary's ("requests_refused_summary") and their level. */
  event?: string;
  summaryEvent?: string;
  level?: "info" | "warn";
  /** The summary line's message, for this many lines not written. */
  summary?: (count: number) => string;
}

const refusedSummary = (count: number): string => `${count} more requests to the homepage were refused in this interval (not logged one by one)`;

export class RequestLog {
  #logger: Logger;
  #linesPerInterval: number;
  #intervalMs: number;
  #now: () => number;
  #event: string;
  #summaryEvent: string;
  #level: "info" | "warn";
  #summary: (count: number) => string;
  #windowStart = Number.NEGATIVE_INFINITY;
  #written = 0;
  #suppressed = new Map<string, number>();
  #summaryTimer: NodeJS.Timeout | null = null;

  constructor(logger: Logger, options: RequestLogOptions = {}) {
    this.#logger = logger;
    this.#linesPerInterval = options.linesPerInterval ?? REQUEST_LINES_PER_INTERVAL;
    this.#intervalMs = options.intervalMs ?? REQUEST_LOG_INTERVAL_MS;
    this.#now = options.now ?? Date.now;
    this.#event = options.event ?? "request_refused";
    this.#summaryEvent = options.summaryEvent ?? "requests_refused_summary";
    this.#level = options.level ?? "warn";
    this.#summary = options.summary ?? refusedSummary;
  }

  /** A refused request: written, or counted under `reason` for the interval's summary. */
  refused(reason: string, fields: Record<string, unknown>, message: string): void {
    this.record(reason, { why: reason, ...fields }, message);
  }

  /** A line: written, or counted under `key` for the interval's summary. */
  record(key: string, fields: Record<string, unknown>, message: string): void {
    const now = this.#now();
    if (now - this.#windowStart >= this.#intervalMs) {
      this.flush();
      this.#windowStart = now;
      this.#written = 0;
    }
    if (this.#written < this.#linesPerInterval) {
      this.#written++;
      this.#logger[this.#level]({ event: this.#event, ...fields }, message);
      return;
    }
    this.#suppressed.set(key, (this.#suppressed.get(key) ?? 0) + 1);
    this.#summaryTimer ??= setTimeout(() => this.flush(), Math.max(0, this.#windowStart + this.#intervalMs - now)).unref();
  }

  /** Writes the summary of what was counted and not written, if anything was. */
  flush(): void {
    if (this.#summaryTimer) clearTimeout(this.#summaryTimer);
    this.#summaryTimer = null;
    if (this.#suppressed.size === 0) return;
    const byReason = Object.fromEntries(this.#suppressed);
    const count = [...this.#suppressed.values()].reduce((a, b) => a + b, 0);
    this.#suppressed.clear();
    this.#logger[this.#level]({ event: this.#summaryEvent, count, byReason, intervalS: this.#intervalMs / 1000 }, this.#summary(count));
  }

  /** The box stops: what was counted is written. */
  close(): void {
    this.flush();
  }
}
