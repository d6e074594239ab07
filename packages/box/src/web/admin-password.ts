/**
 * The homepage's optional admin password: scrypt with a random salt in config.json (mode 0600), and
 * sessions held in memory (a restart logs everyone out). The password itself is never stored or logged.
 *
 * Guessing is limited twice (docs/box.md "Limits"): attempts per client address and in total
 * (attempt-limiter.ts), counted before the hash; and hashes at once (hash-slots.ts), so the guesses that
 * are let through cannot take the threads the box's file work needs.
 */
import { randomBytes, scrypt, timingSafeEqual } from "node:crypto";
import type { Clock } from "../clock.ts";
import type { AdminPasswordHash } from "../config.ts";
import { AttemptLimiter } from "@boxcert/shared";
import { HashSlots } from "./hash-slots.ts";

const SCRYPT = { N: 16384, r: 8, p: 1 } as const;
const KEY_LENGTH = 32;
export const MIN_PASSWORD_LENGTH = 8;
export const MAX_PASSWORD_LENGTH = 200;
export const SESSION_TTL_MS = 12 * 3600_000;
/**
 * scrypt hashes running at once. One of libuv's four threads (a hash takes about 50 ms and 16 MB): the
 * attempt limits allow 30 guesses a minute, which one thread hashes in under 2 s, and the other three stay
 * free for file I/O and DNS look-ups.
 */
export const MAX_CONCURRENT_HASHES = 1;
/**
 * Password checks that may wait for the hash slot; more get 429 at once. Holds more than one address's
 * whole allowance (LOGIN_ATTEMPT_LIMITS.perAddress), so a burst from one client is answered "wrong", not
 * "busy", while the longest wait stays at eight hashes (under half a second on a PC, a few on a slow board).
 */
export const MAX_WAITING_HASHES = 8;
/** Retry-After for a check refused because the hash queue is full: it drains in well under a second. */
export const BUSY_RETRY_AFTER_MS = 1_000;

/** One set of slots per process: libuv's thread pool is per process, whichever box or listener asks. */
const HASHING = new HashSlots(MAX_CONCURRENT_HASHES, MAX_WAITING_HASHES);

function derive(password: string, salt: Buffer, params: { N: number; r: number; p: number }): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scrypt(password, salt, KEY_LENGTH, { N: params.N, r: params.r, p: params.p, maxmem: 64 * 1024 * 1024 }, (err, key) =>
      err ? reject(err) : resolve(key),
    );
  });
}

/** Waits for the hash slot however long the queue: setting a password is the admin's own, rare, act. */
export async function hashPassword(password: string): Promise<AdminPasswordHash> {
  const salt = randomBytes(16);
  const hash = await HASHING.run(() => derive(password, salt, SCRYPT));
  return { scheme: "scrypt", salt: salt.toString("base64"), hash: hash.toString("base64"), ...SCRYPT };
}

async function matches(password: string, stored: AdminPasswordHash): Promise<boolean> {
  const expected = Buffer.from(stored.hash, "base64");
  const actual = await derive(password.slice(0, MAX_PASSWORD_LENGTH), Buffer.from(stored.salt, "base64"), stored);
  return expected.length === actual.length && timingSafeEqual(expected, actual);
}

/** Whether password is the stored one, or null at once when MAX_WAITING_HASHES checks already wait. */
function tryVerifyPassword(password: string, stored: AdminPasswordHash): Promise<boolean> | null {
  return HASHING.tryRun(() => matches(password, stored));
}

/** "too-many": this address (or all together) used its attempts; "busy": the hashing queue is full, try in a second. */
export type PasswordAttempt = { outcome: "right" } | { outcome: "wrong" } | { outcome: "too-many" | "busy"; retryAfterS: number };

function tooMany(retryAfterMs: number, outcome: "too-many" | "busy" = "too-many"): PasswordAttempt {
  return { outcome, retryAfterS: Math.max(1, Math.ceil(retryAfterMs / 1000)) };
}

/** What is wrong with a new password, or null. */
export function passwordProblem(password: string): "too-short" | "too-long" | null {
  if (password.length < MIN_PASSWORD_LENGTH) return "too-short";
  if (password.length > MAX_PASSWORD_LENGTH) return "too-long";
  return null;
}

export class AdminSessions {
  #sessions = new Map<string, number>();
  #attempts: AttemptLimiter;
  #clock: Clock;

  constructor(clock: Clock) {
    this.#clock = clock;
    this.#attempts = new AttemptLimiter(clock);
  }

  open(): string {
    const id = randomBytes(24).toString("base64url");
    this.#sessions.set(id, this.#clock() + SESSION_TTL_MS);
    return id;
  }

  valid(id: string | undefined): boolean {
    if (!id) return false;
    const until = this.#sessions.get(id);
    if (until === undefined) return false;
    if (until <= this.#clock()) {
      this.#sessions.delete(id);
      return false;
    }
    return true;
  }

  close(id: string | undefined): void {
    if (id) this.#sessions.delete(id);
  }

  /** The password changed or was cleared: every session ends. */
  closeAll(): void {
    this.#sessions.clear();
  }

  /**
   * Checks a password typed by the client at this address, within the attempt limits: the attempt is
   * counted before the hash, and given back when the password was right or was never hashed (the hash
   * queue was full), so only wrong guesses use up the allowance.
   */
  async tryPassword(address: string, password: string, stored: AdminPasswordHash): Promise<PasswordAttempt> {
    const reservation = this.#attempts.reserve(address);
    if (!reservation.granted) return tooMany(reservation.retryAfterMs);
    const check = tryVerifyPassword(password, stored);
    if (check === null) {
      reservation.refund();
      return tooMany(BUSY_RETRY_AFTER_MS, "busy");
    }
    if (!(await check)) return { outcome: "wrong" };
    reservation.refund();
    return { outcome: "right" };
  }
}
