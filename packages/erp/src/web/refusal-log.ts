/**
 * The log lines anyone on the internet can cause (a refused registration, a refused page request, a wrong
 * password): the first few of each minute are written, the rest counted, and one summary line ends the
 * minute. A script hammering the database adds a line a minute to the log, not one per request.
 */
import type { Logger } from "pino";

export const LINES_PER_INTERVAL = 10;
export const INTERVAL_MS = 60_000;
const MAX_FIELD_LENGTH = 200;

/** A request's own text (path, Origin, Host) cut to a bounded length. */
export function clip(value: string | undefined): string | null {
  if (value === undefined) return null;
  return value.length > MAX_FIELD_LENGTH ? `${value.slice(0, MAX_FIELD_LENGTH)}…` : value;
}

export class RefusalLog {
  readonly #logger: Logger;
  readonly #clock: () => number;
  #windowStart = Number.NEGATIVE_INFINITY;
  #written = 0;
  #counted = new Map<string, number>();
  #timer: NodeJS.Timeout | null = null;

  constructor(logger: Logger, clock: () => number) {
    this.#logger = logger;
    this.#clock = clock;
  }

  refused(reason: string, fields: Record<string, unknown>, message: string): void {
    const now = this.#clock();
    if (now - this.#windowStart >= INTERVAL_MS) {
      this.flush();
      this.#windowStart = now;
      this.#written = 0;
    }
    if (this.#written < LINES_PER_INTERVAL) {
      this.#written++;
      this.#logger.warn({ event: "request_refused", why: reason, ...fields }, message);
      return;
    }
    this.#counted.set(reason, (this.#counted.get(reason) ?? 0) + 1);
    this.#timer ??= setTimeout(() => this.flush(), Math.max(0, this.#windowStart + INTERVAL_MS - now)).unref();
  }

  /** Writes the summary of what was counted, if anything was. */
  flush(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    if (this.#counted.size === 0) return;
    const byReason = Object.fromEntries(this.#counted);
    const count = [...this.#counted.values()].reduce((a, b) => a + b, 0);
    this.#counted.clear();
    this.#logger.warn({ event: "requests_refused_summary", count, byReason }, `${count} more requests were refused in this minute (not logged one by one)`);
  }
}
