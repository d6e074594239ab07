/**
 * Named locks in the store, held across issuer processes: a row in `locks` per held lock. Taken by
 * INSERT (the primary key lets one contender win), or by a conditional UPDATE of a row whose expires_at
 * has passed (its holder crashed); waited for by polling on a short backoff; released in finally by
 * deleting the row only when it is still ours.
 */
import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { hostname } from "node:os";
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

/**
 * Who holds a lock: this machine (host name and kernel boot id), this process (pid and its start time, so a
 * reused pid is told apart) and the taking (a UUID). A holder that was killed (SIGKILL, OOM, power) cannot
 * release its locks; when a contender on the same machine sees that the holder's process is gone, it takes
 * the lock at once instead of waiting out the TTL, so a restarted issuer serves the box's next try at once.
 * Holders on other machines are waited for until their TTL (their processes cannot be seen from here).
 */
interface HolderProcess {
  host: string;
  boot: string;
  pid: number;
  started: string;
}

function readStartTicks(pid: number): string | null {
  try {
    // /proc/PID/stat: "pid (comm) state ppid ..."; comm may hold spaces and parentheses, so split after the last ")".
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19] ?? null;
  } catch {
    return null;
  }
}

function readBootId(): string {
  try {
    return readFileSync("/proc/sys/kernel/random/boot_id", "utf8").trim();
  } catch {
    return "";
  }
}

let self: HolderProcess | undefined;
function thisProcess(): HolderProcess {
  // Computed per process (a forked worker has its own pid): cached only once the pid matches.
  if (self?.pid !== process.pid) self = { host: hostname(), boot: readBootId(), pid: process.pid, started: readStartTicks(process.pid) ?? "" };
  return self;
}

/** A new owner string for one taking of a lock: `host boot pid started uuid` (space separated). */
export function newLockOwner(): string {
  const me = thisProcess();
  return [me.host, me.boot || "-", me.pid, me.started || "-", randomUUID()].join(" ");
}

/**
 * Whether the process that wrote `owner` is known to be gone: it ran on this machine since its last boot
 * (same host name and boot id) and no process with its pid and start time exists now. False whenever that
 * cannot be known (another machine, an owner of an older format, no /proc).
 */
export function lockOwnerIsGone(owner: string): boolean {
  const [host, boot, pid, started] = owner.split(" ");
  const me = thisProcess();
  if (!host || !boot || !pid || !started || boot === "-" || started === "-" || !me.boot) return false;
  if (host !== me.host || boot !== me.boot || !/^\d+$/.test(pid)) return false;
  return readStartTicks(Number(pid)) !== started;
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
  if (Number(taken.numUpdatedRows) === 1) return true;
  // Held and not expired: its holder may still be a process of this machine that was killed.
  const holder = await db.selectFrom("locks").select("owner").where("name", "=", name).executeTakeFirst();
  if (!holder || !lockOwnerIsGone(holder.owner)) return false;
  const takenOver = await db.updateTable("locks").set({ owner, expires_at: expiresAt }).where("name", "=", name).where("owner", "=", holder.owner).executeTakeFirst();
  return Number(takenOver.numUpdatedRows) === 1;
}

/**
 * Runs `fn` holding the store lock `name`, waiting (polling) while another connection holds it. `ttlMs`
 * bounds how long a crashed holder blocks the others; it must be longer than `fn` ever runs.
 */
export async function withStoreLock<T>(db: Kysely<Database>, name: string, ttlMs: number, fn: () => Promise<T>, options: StoreLockOptions = {}): Promise<T> {
  const clock = options.now ?? Date.now;
  const waitMs = options.waitMs ?? ttlMs;
  const owner = newLockOwner();
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
