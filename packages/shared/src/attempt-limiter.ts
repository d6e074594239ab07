/**
 * How many password attempts a page lets through (the box's admin password, the database's operator
 * login): per client address and in total, over a sliding window.
 *
 * An attempt is reserved synchronously, before its password is hashed. Counting a failure after the hash
 * (as the box once did) lets every request of a parallel burst pass the check before the first one is
 * counted: 300 parallel guesses were all hashed. Reserving first makes the limit hold however many
 * requests arrive at once.
 *
 * Per address, so a single LAN client runs out long before the total does and the real admin, on another
 * address, can still log in; the total bounds the guessing rate however many addresses an attacker uses
 * (and bounds this limiter's memory: an address is only remembered while it holds a counted attempt).
 */
/** Milliseconds since the epoch; injected so tests move time by hand. */
type Clock = () => number;

export interface AttemptLimits {
  /** Attempts one client address may make in a window. */
  perAddress: number;
  /** Attempts all addresses together may make in a window. */
  total: number;
  windowMs: number;
}

/**
 * 5 a minute per address: a person mistyping gets several tries, a script gets 7,200 a day at most. 30 a
 * minute in total: six addresses' worth, so one guessing client leaves 25 for the rest of the LAN.
 */
export const LOGIN_ATTEMPT_LIMITS: Readonly<AttemptLimits> = { perAddress: 5, total: 30, windowMs: 60_000 };

export type Reservation =
  | { granted: true; /** Gives the attempt back (a right password, or one that was never hashed). Idempotent. */ refund(): void }
  | { granted: false; /** When the oldest counted attempt that blocks this one leaves the window. */ retryAfterMs: number };

interface Attempt {
  address: string;
  at: number;
}

export class AttemptLimiter {
  readonly #clock: Clock;
  readonly #limits: AttemptLimits;
  /** Every counted attempt, oldest first; the per-address lists hold the same objects. */
  #all: Attempt[] = [];
  #byAddress = new Map<string, Attempt[]>();

  constructor(clock: Clock, limits: AttemptLimits = LOGIN_ATTEMPT_LIMITS) {
    this.#clock = clock;
    this.#limits = limits;
  }

  /** Counts an attempt from this address now, or says how long to wait. */
  reserve(address: string): Reservation {
    const now = this.#clock();
    this.#forgetOld(now);
    const mine = this.#byAddress.get(address) ?? [];
    const blocking = mine.length >= this.#limits.perAddress ? mine[0] : this.#all.length >= this.#limits.total ? this.#all[0] : undefined;
    if (blocking) return { granted: false, retryAfterMs: blocking.at + this.#limits.windowMs - now };
    const attempt: Attempt = { address, at: now };
    mine.push(attempt);
    this.#all.push(attempt);
    this.#byAddress.set(address, mine);
    return { granted: true, refund: () => this.#remove(attempt) };
  }

  /** Attempts older than the window, and any from the future (the clock was set back), no longer count. */
  #forgetOld(now: number): void {
    const counts = (attempt: Attempt): boolean => attempt.at <= now && now - attempt.at < this.#limits.windowMs;
    if (this.#all.every(counts)) return;
    for (const attempt of this.#all.filter((a) => !counts(a))) this.#remove(attempt);
  }

  #remove(attempt: Attempt): void {
    const index = this.#all.indexOf(attempt);
    if (index === -1) return;
    this.#all.splice(index, 1);
    const mine = this.#byAddress.get(attempt.address) ?? [];
    mine.splice(mine.indexOf(attempt), 1);
    if (mine.length === 0) this.#byAddress.delete(attempt.address);
  }
}
