/**
 * When the box checks its certificate (the check itself is agent.ts):
 *
 *   - at start;
 *   - at the certificate's renewAfter, and at least every 6 hours;
 *   - after a failure, with backoffDelay(RENEWAL_BACKOFF, attempt): 1 minute doubling to 6 hours, with
 *     jitter; a larger Retry-After from the issuer wins (still at most 6 hours);
 *   - when the homepage is opened, if no check ended in the last minute, even during a backoff (the
 *     original page: "reload the homepage to check again").
 *
 * Never two checks at once: a second request joins the running one. Clock and timers are injected.
 */
import { RENEWAL_BACKOFF, backoffDelay } from "@boxcert/shared";
import type { BackoffSchedule } from "@boxcert/shared";
import type { Clock, Timers } from "./clock.ts";

export const CHECK_INTERVAL_MS = 6 * 3600_000;
export const HOMEPAGE_CHECK_INTERVAL_MS = 60_000;
/** After a success whose certificate is already due (a clock or issuer oddity): do not spin. */
export const MIN_RECHECK_MS = 60_000;

export interface CheckResult {
  ok: boolean;
  /** When the served certificate is due for renewal (ms), after a successful check. */
  renewAfter: number | null;
  /** The issuer's Retry-After, in ms from now. */
  retryAfterMs: number | null;
}

export interface RenewalOptions {
  check: () => Promise<CheckResult>;
  clock: Clock;
  timers: Timers;
  random?: () => number;
  schedule?: BackoffSchedule;
  intervalMs?: number;
  homepageIntervalMs?: number;
  /** A check that threw (a bug: checks report their failures as results). */
  onCrash?: (err: unknown) => void;
}

export class RenewalScheduler {
  #options: RenewalOptions;
  #current: Promise<CheckResult> | null = null;
  #timer: unknown = null;
  #nextAt: number | null = null;
  #lastEnd: number | null = null;
  #failures = 0;
  #stopped = true;

  constructor(options: RenewalOptions) {
    this.#options = options;
  }

  /** A check is running. */
  get running(): boolean {
    return this.#current !== null;
  }

  /** When the last check ended (ms), or null. */
  get lastCheck(): number | null {
    return this.#lastEnd;
  }

  /** When the next timed check is due (ms), or null. */
  get nextCheckAt(): number | null {
    return this.#nextAt;
  }

  /** Failed checks in a row. */
  get failures(): number {
    return this.#failures;
  }

  /** Starts the schedule with a check now (in the background). */
  start(): void {
    this.#stopped = false;
    void this.run();
  }

  /** Stops the timers and waits for a running check. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#clearTimer();
    await this.#current?.catch(() => undefined);
  }

  /** Runs a check now, or joins the one running. */
  run(): Promise<CheckResult> {
    if (this.#current) return this.#current;
    this.#clearTimer();
    const current = this.#runOnce();
    this.#current = current;
    return current;
  }

  /** The homepage was opened: check in the background unless one runs or one ended less than a minute ago. */
  homepageOpened(): boolean {
    if (this.#current) return false;
    const interval = this.#options.homepageIntervalMs ?? HOMEPAGE_CHECK_INTERVAL_MS;
    if (this.#lastEnd !== null && this.#options.clock() - this.#lastEnd < interval) return false;
    void this.run();
    return true;
  }

  async #runOnce(): Promise<CheckResult> {
    let result: CheckResult;
    try {
      result = await this.#options.check();
    } catch (err) {
      this.#options.onCrash?.(err);
      result = { ok: false, renewAfter: null, retryAfterMs: null };
    }
    this.#lastEnd = this.#options.clock();
    this.#current = null;
    if (!this.#stopped) this.#scheduleAfter(result);
    return result;
  }

  /** The delay before the next timed check after this result. Pure given the failure count and random. */
  nextDelay(result: CheckResult, now: number): number {
    const interval = this.#options.intervalMs ?? CHECK_INTERVAL_MS;
    if (result.ok) {
      if (result.renewAfter === null) return interval;
      const untilRenewal = result.renewAfter - now;
      return Math.min(interval, untilRenewal > 0 ? untilRenewal : MIN_RECHECK_MS);
    }
    const backoff = backoffDelay(this.#options.schedule ?? RENEWAL_BACKOFF, this.#failures - 1, this.#options.random);
    return Math.min(interval, Math.max(backoff, result.retryAfterMs ?? 0));
  }

  #scheduleAfter(result: CheckResult): void {
    this.#failures = result.ok ? 0 : this.#failures + 1;
    const now = this.#options.clock();
    const delay = this.nextDelay(result, now);
    this.#clearTimer();
    this.#nextAt = now + delay;
    this.#timer = this.#options.timers.setTimeout(() => {
      this.#timer = null;
      void this.run();
    }, delay);
  }

  #clearTimer(): void {
    if (this.#timer !== null) this.#options.timers.clearTimeout(this.#timer);
    this.#timer = null;
    this.#nextAt = null;
  }
}
