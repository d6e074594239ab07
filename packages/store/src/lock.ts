/**
 * Named locks in the store, held across issuer processes: a row in `locks` per held lock. Taken by
 * INSERT (the primary key lets one contender win), or by a conditional UPDATE of a row whose expires_at
 * has passed (its holder crashed); waited for by polling on a short backoff; released in finally by
 * deleting the row only when it is still ours.
 */
import { randomUUID } from "node:crypto";
import type { Kysely } from "kysely";
import { backoffDelay, type BackoffSchedule } from "@boxcert/shared";
import type { Database } from "./schema.ts";

/** Polling a held lock: 20 ms doubling to 250 ms, ±20%. */
export const LOCK_POLLING: BackoffSchedule = { initialMs: 20, maxMs: 250, factor: 2, jitter: 0.2 };

export class LockTimeoutError extends Error {
  override name = "LockTimeoutError";
  constructor(readonly lockName: string, readonly waitedMs: number) {
    super(`the store lock ${lockName} is still held by another process after ${waitedMs} ms`);
  }
}

export interface StoreLockOptions {
  /** How long to wait for the lock before LockTimeoutError; default: ttlMs. */
  waitMs?: number;
  /** The clock expires_at is written and compared with (tests move it). */
  now?: () => number;
}

async function tryAcquire(db: Kysely<Database>, name: string, owner: string, ttlMs: number, now: number): Promise<boolean> {
  const expiresAt = new Date(now + ttlMs).toISOString();
  const inserted = await db
    .insertInto("locks")
    .values({ name, owner, expires_at: expiresAt })
    .onConflict((oc) => oc.column("name").doNothing())
    .executeTakeFirst();
  if (Number(inserted.numInsertedOrUpdatedRows ?? 0n) === 1) return true;
  // Held: take it over only when it has expired (a crashed holder); one UPDATE, so one taker wins.
  const taken = await db
    .updateTable("locks")
    .set({ owner, expires_at: expiresAt })
    .where("name", "=", name)
    .where("expires_at", "<=", new Date(now).toISOString())
    .executeTakeFirst();
  return Number(taken.numUpdatedRows) === 1;
}

/**
 * Runs `fn` holding the store lock `name`, waiting (polling) while another connection holds it. `ttlMs`
 * bounds how long a crashed holder blocks the others; it must be longer than `fn` ever runs.
 */
export async function withStoreLock<T>(db: Kysely<Database>, name: string, ttlMs: number, fn: () => Promise<T>, options: StoreLockOptions = {}): Promise<T> {
  const clock = options.now ?? Date.now;
  const waitMs = options.waitMs ?? ttlMs;
  const owner = randomUUID();
  const started = Date.now();
  for (let attempt = 0; !(await tryAcquire(db, name, owner, ttlMs, clock())); attempt++) {
    const waited = Date.now() - started;
    if (waited >= waitMs) throw new LockTimeoutError(name, waited);
    const delay = Math.min(backoffDelay(LOCK_POLLING, attempt), Math.max(1, waitMs - waited));
    await new Promise((resolve) => setTimeout(resolve, delay));
  }
  try {
    return await fn();
  } finally {
    await db.deleteFrom("locks").where("name", "=", name).where("owner", "=", owner).execute();
  }
}
