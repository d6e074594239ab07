/**
 * When the box checks its certificate (the check itself is agent.ts):
 *
 *   - at start;
 *   - at the certificate's renewAfter, and at least every 6 hours (the check interval, `--check-interval`)
 *     after the last periodic check that succeeded: these "periodic" checks ask the issuer even for a
 *     valid certificate (a refresh, check.ts), so a revocation or a changed renewAfter reaches the box;
 *   - after a failure, with backoffDelay(RENEWAL_BACKOFF, attempt): 1 minute doubling to 6 hours, with
 *     jitter; a larger Retry-After from the issuer wins (still at most the check interval), plus up to a
 *     fifth more at random (the schedule's jitter): a busy issuer tells every box of a storm the same
 *     number, and boxes coming back on the same second would make the next storm;
 *   - when the homepage is opened, if no check ended in the last minute, even during a backoff (the
 *     original page: "reload the homepage to check again"). Such a check is "on demand": it makes no
 *     request for a valid certificate that is not due, and it does not push the next periodic check back.
 *
 * Never two checks at once: a second request joins the running one. Clock and timers are injected.
 */
import { RENEWAL_BACKOFF, backoffDelay } from "@boxcert/shared";
import type { BackoffSchedule } from "@boxcert/shared";
import type { Clock, Timers } from "../clock.ts";
import type { CheckTrigger } from "./check.ts";

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
  /** The check asked the issuer (a load or a refresh). */
  contacted: boolean;
}

export interface RenewalOptions {
  check: (trigger: CheckTrigger) => Promise<CheckResult>;
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
  /** When the last successful periodic check (or check that asked the issuer) ended. */
  #confirmedAt: number | null = null;
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

  /** Starts the schedule with a (periodic) check now, in the background. */
  start(): void {
    this.#stopped = false;
    void this.run("periodic");
  }

  /** Stops the timers and waits for a running check. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#clearTimer();
    await this.#current?.catch(() => undefined);
  }

  /**
   * Runs a check now, or joins the one running. "demand" (the default) for the homepage, "Check again" and
   * callers; the scheduler's own checks are "periodic". An on-demand check stops the timer while it runs
   * but does not move the periodic deadline: the timer is set again for it (at once if it passed).
   */
  run(trigger: CheckTrigger = "demand"): Promise<CheckResult> {
    if (this.#current) return this.#current;
    this.#clearTimer();
    const current = this.#runOnce(trigger);
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

  async #runOnce(trigger: CheckTrigger): Promise<CheckResult> {
    let result: CheckResult;
    try {
      result = await this.#options.check(trigger);
    } catch (err) {
      this.#options.onCrash?.(err);
      result = { ok: false, renewAfter: null, retryAfterMs: null, contacted: false };
    }
    this.#lastEnd = this.#options.clock();
    if (result.ok && (trigger === "periodic" || result.contacted)) this.#confirmedAt = this.#lastEnd;
    this.#current = null;
    if (!this.#stopped) this.#scheduleAfter(result);
    return result;
  }

  /**
   * The delay before the next timed check after this result. Pure given the failure count, the last
   * confirmation and random. After a success: the check interval from the last confirmation (an on-demand
   * check that asked nothing does not move it), or the renewAfter if sooner.
   */
  nextDelay(result: CheckResult, now: number): number {
    const interval = this.#options.intervalMs ?? CHECK_INTERVAL_MS;
    if (result.ok) {
      const untilRefresh = Math.max(0, (this.#confirmedAt ?? now) + interval - now);
      if (result.renewAfter === null) return untilRefresh;
      const untilRenewal = result.renewAfter - now;
      return Math.min(untilRefresh, untilRenewal > 0 ? untilRenewal : MIN_RECHECK_MS);
    }
    const schedule = this.#options.schedule ?? RENEWAL_BACKOFF;
    const backoff = backoffDelay(schedule, this.#failures - 1, this.#options.random);
    // Never sooner than the issuer asked; spread over [Retry-After, Retry-After × (1 + jitter)].
    const retryAfter = (result.retryAfterMs ?? 0) * (1 + schedule.jitter * (this.#options.random ?? Math.random)());
    return Math.min(interval, Math.max(backoff, Math.round(retryAfter)));
  }

  #scheduleAfter(result: CheckResult): void {
    this.#failures = result.ok ? 0 : this.#failures + 1;
    const now = this.#options.clock();
    const delay = this.nextDelay(result, now);
    this.#clearTimer();
    this.#nextAt = now + delay;
    this.#timer = this.#options.timers.setTimeout(() => {
      this.#timer = null;
      void this.run("periodic");
    }, delay);
  }

  #clearTimer(): void {
    if (this.#timer !== null) this.#options.timers.clearTimeout(this.#timer);
    this.#timer = null;
    this.#nextAt = null;
  }
}
