/**
 * The homepage's optional admin password: scrypt with a random salt in config.json (mode 0600), and
 * sessions held in memory (a restart logs everyone out). The password itself is never stored or logged.
 */
import { randomBytes, scrypt, timingSafeEqual } from "node:crypto";
import type { AdminPasswordHash } from "../config.ts";

const SCRYPT = { N: 16384, r: 8, p: 1 } as const;
const KEY_LENGTH = 32;
export const MIN_PASSWORD_LENGTH = 8;
export const MAX_PASSWORD_LENGTH = 200;
export const SESSION_TTL_MS = 12 * 3600_000;
/** Failed logins allowed per minute (all clients together: a box has one admin). */
export const MAX_FAILURES_PER_MINUTE = 10;

function derive(password: string, salt: Buffer, params: { N: number; r: number; p: number }): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scrypt(password, salt, KEY_LENGTH, { N: params.N, r: params.r, p: params.p, maxmem: 64 * 1024 * 1024 }, (err, key) =>
      err ? reject(err) : resolve(key),
    );
  });
}

export async function hashPassword(password: string): Promise<AdminPasswordHash> {
  const salt = randomBytes(16);
  const hash = await derive(password, salt, SCRYPT);
  return { scheme: "scrypt", salt: salt.toString("base64"), hash: hash.toString("base64"), ...SCRYPT };
}

export async function verifyPassword(password: string, stored: AdminPasswordHash): Promise<boolean> {
  const expected = Buffer.from(stored.hash, "base64");
  const actual = await derive(password.slice(0, MAX_PASSWORD_LENGTH), Buffer.from(stored.salt, "base64"), stored);
  return expected.length === actual.length && timingSafeEqual(expected, actual);
}

/** What is wrong with a new password, or null. */
export function passwordProblem(password: string): "too-short" | "too-long" | null {
  if (password.length < MIN_PASSWORD_LENGTH) return "too-short";
  if (password.length > MAX_PASSWORD_LENGTH) return "too-long";
  return null;
}

export class AdminSessions {
  #sessions = new Map<string, number>();
  #failures: number[] = [];
  #clock: () => number;

  constructor(clock: () => number) {
    this.#clock = clock;
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

  /** Counts a failed login; false when too many failed in the last minute (answer 429 without trying). */
  mayTry(): boolean {
    const now = this.#clock();
    this.#failures = this.#failures.filter((t) => now - t < 60_000);
    return this.#failures.length < MAX_FAILURES_PER_MINUTE;
  }

  failed(): void {
    this.#failures.push(this.#clock());
  }
}
