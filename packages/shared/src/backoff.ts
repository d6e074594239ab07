/**
 * The one retry schedule helper: every retry loop takes its schedule as a parameter (CONTRIBUTING.md,
 * "Retries"). The box's renewal uses minutes to hours (RENEWAL_BACKOFF); the issuer's ACME order polling a
 * fraction of a second to a second, honouring the CA's Retry-After; the store lock's wait a few milliseconds.
 */
export interface BackoffSchedule {
  /** First delay. */
  initialMs: number;
  /** Cap. */
  maxMs: number;
  /** Multiplier per attempt. */
  factor: number;
  /** Fraction of the delay randomised (0.2 = ±20%). */
  jitter: number;
}

/** The box's renewal retries: 1 minute doubling to 6 hours, ±20%. */
export const RENEWAL_BACKOFF: BackoffSchedule = { initialMs: 60_000, maxMs: 6 * 3600_000, factor: 2, jitter: 0.2 };

/** Delay before retry number `attempt` (0 = first retry). `random` in [0, 1). */
export function backoffDelay(schedule: BackoffSchedule, attempt: number, random: () => number = Math.random): number {
  const base = Math.min(schedule.maxMs, schedule.initialMs * Math.pow(schedule.factor, Math.max(0, attempt)));
  const spread = base * schedule.jitter;
  const delay = base - spread + 2 * spread * random();
  return Math.max(0, Math.min(schedule.maxMs, Math.round(delay)));
}

/** Parse an HTTP Retry-After value (seconds or HTTP date) into milliseconds from `now`; null when absent or bad. */
export function parseRetryAfter(value: string | null | undefined, now: number): number | null {
  if (!value) return null;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? null : Math.max(0, at - now);
}
