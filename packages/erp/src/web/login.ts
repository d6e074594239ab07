/**
 * The operator's login (docs/erp-server.md "Access"): the pages show the subscription code (inside the
 * connection token), so they need one. The password comes from --password-file and is kept only as a
 * scrypt hash in memory; a login compares hashes in constant time. Sessions are random ids in memory (a
 * restart logs out), in an HttpOnly, Secure, SameSite=Strict cookie.
 *
 * Guesses are limited per client address and in total over a sliding minute, counted before the hash:
 * a burst of parallel guesses cannot all pass the check before the first is counted, and the hashes
 * (about 50 ms of a thread each) are bounded by the same limit.
 */
import { randomBytes, scrypt, timingSafeEqual } from "node:crypto";
// The same limiter as the box's admin password: reserved before the hash, per address and in total.
import { AttemptLimiter } from "@boxcert/shared";

const SCRYPT = { N: 16384, r: 8, p: 1, maxmem: 64 * 1024 * 1024 } as const;
const KEY_LENGTH = 32;
export const SESSION_TTL_MS = 12 * 3600_000;
export const MIN_PASSWORD_LENGTH = 8;
export const MAX_PASSWORD_LENGTH = 200;

function derive(password: string, salt: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => scrypt(password, salt, KEY_LENGTH, SCRYPT, (err, key) => (err ? reject(err) : resolve(key))));
}

/** What is wrong with the password from the file, or null. */
export function passwordProblem(password: string): string | null {
  if (password.length < MIN_PASSWORD_LENGTH) return `the password must have at least ${MIN_PASSWORD_LENGTH} characters`;
  if (password.length > MAX_PASSWORD_LENGTH) return `the password must have at most ${MAX_PASSWORD_LENGTH} characters`;
  return null;
}

export type LoginAttempt = { outcome: "right" | "wrong" } | { outcome: "too-many"; retryAfterS: number };

export class OperatorLogin {
  readonly #salt: Buffer;
  readonly #hash: Buffer;
  readonly #clock: () => number;
  readonly #attempts: AttemptLimiter;
  #sessions = new Map<string, number>();

  private constructor(salt: Buffer, hash: Buffer, clock: () => number) {
    this.#salt = salt;
    this.#hash = hash;
    this.#clock = clock;
    this.#attempts = new AttemptLimiter(clock);
  }

  /** Hashes the password once; the password itself is not kept. */
  static async create(password: string, clock: () => number): Promise<OperatorLogin> {
    const salt = randomBytes(16);
    return new OperatorLogin(salt, await derive(password, salt), clock);
  }

  /** Checks a password typed at `address`, within the attempt limits; a right one gives its attempt back. */
  async tryPassword(address: string, password: string): Promise<LoginAttempt> {
    const reservation = this.#attempts.reserve(address);
    if (!reservation.granted) return { outcome: "too-many", retryAfterS: Math.max(1, Math.ceil(reservation.retryAfterMs / 1000)) };
    const actual = await derive(password.slice(0, MAX_PASSWORD_LENGTH), this.#salt);
    if (!timingSafeEqual(actual, this.#hash)) return { outcome: "wrong" };
    reservation.refund();
    return { outcome: "right" };
  }

  openSession(): string {
    const id = randomBytes(24).toString("base64url");
    this.#sessions.set(id, this.#clock() + SESSION_TTL_MS);
    return id;
  }

  validSession(id: string | undefined): boolean {
    if (!id) return false;
    const until = this.#sessions.get(id);
    if (until === undefined) return false;
    if (until > this.#clock()) return true;
    this.#sessions.delete(id);
    return false;
  }

  closeSession(id: string | undefined): void {
    if (id) this.#sessions.delete(id);
  }
}
