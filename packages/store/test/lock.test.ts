/**
 * Store locks (store/lock.ts) between two connections to one SQLite file, as two issuer processes have:
 * one holder at a time, a crashed holder's lock taken over once expired, release when the work throws.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomUUID } from "node:crypto";
import { openStore, type Store } from "../src/db.ts";
import { spawnSync } from "node:child_process";
import { LockTimeoutError, lockOwnerIsGone, newLockOwner, withStoreLock } from "../src/lock.ts";
import { startPostgres } from "../../../test/support/postgres.ts";

async function twoConnections(): Promise<[Store, Store]> {
  const path = join(mkdtempSync(join(tmpdir(), "boxcert-lock-")), "registry.sqlite");
  const a = await openStore(path);
  const b = await openStore(path);
  return [a, b];
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

test("two contenders on one store: one holds the lock at a time, the other runs after it", async () => {
  const [a, b] = await twoConnections();
  try {
    const events: string[] = [];
    let inside = 0;
    const work = (who: string) => async () => {
      inside++;
      assert.equal(inside, 1, `${who} entered while the other held the lock`);
      events.push(`${who} in`);
      await sleep(150);
      events.push(`${who} out`);
      inside--;
      return who;
    };
    const results = await Promise.all([withStoreLock(a.db, "box:x", 60_000, work("a")), withStoreLock(b.db, "box:x", 60_000, work("b"))]);
    assert.deepEqual(results, ["a", "b"]);
    assert.equal(events.length, 4);
    assert.ok(events[1]!.endsWith("out") && events[1]!.split(" ")[0] === events[0]!.split(" ")[0], events.join(", "));
    // Another name is not held up.
    assert.equal(await withStoreLock(b.db, "box:y", 60_000, async () => "y"), "y");
    assert.deepEqual(await a.db.selectFrom("locks").selectAll().execute(), [], "both released");
  } finally {
    await a.close();
    await b.close();
  }
});

test("a holder killed on this machine is seen gone, its lock taken at once; a live or remote holder is waited for", async () => {
  const [a, b] = await twoConnections();
  try {
    // A real process that held a lock and was killed: the owner string it would have written, by its pid.
    const child = spawnSync(process.execPath, ["-e", "console.log(require('node:fs').readFileSync('/proc/self/stat','utf8'))"], { encoding: "utf8" });
    const stat = child.stdout;
    const [pid] = stat.split(" ");
    const started = stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19];
    const [host, boot] = newLockOwner().split(" ");
    const dead = [host, boot, pid, started, randomUUID()].join(" ");
    assert.equal(lockOwnerIsGone(dead), true, "a process that has exited is gone");
    assert.equal(lockOwnerIsGone(newLockOwner()), false, "this process is not gone");
    assert.equal(lockOwnerIsGone(["other-host", boot, pid, started, randomUUID()].join(" ")), false, "another machine's process cannot be seen");
    assert.equal(lockOwnerIsGone(randomUUID()), false, "an owner of the old format is waited for");
    assert.equal(lockOwnerIsGone([host, boot, String(process.pid), "1", randomUUID()].join(" ")), true, "a reused pid (another start time) is gone");

    const expires = new Date(Date.now() + 60_000).toISOString();
    await a.db.insertInto("locks").values({ name: "box:dead", owner: dead, expires_at: expires }).execute();
    const before = Date.now();
    assert.equal(await withStoreLock(b.db, "box:dead", 60_000, async () => "taken", { waitMs: 5_000 }), "taken");
    assert.ok(Date.now() - before < 1_000, "taken at once, not after the TTL");

    await a.db.insertInto("locks").values({ name: "box:live", owner: newLockOwner(), expires_at: expires }).execute();
    await assert.rejects(withStoreLock(b.db, "box:live", 60_000, async () => "never", { waitMs: 200 }), LockTimeoutError);
  } finally {
    await a.close();
    await b.close();
  }
});

test("a crashed holder's lock is taken over once expired, not before", async () => {
  const [a, b] = await twoConnections();
  try {
    // What a crashed process leaves: a row nobody will delete.
    await a.db.insertInto("locks").values({ name: "box:x", owner: "crashed", expires_at: new Date(Date.now() + 400).toISOString() }).execute();
    await assert.rejects(withStoreLock(b.db, "box:x", 60_000, async () => "never", { waitMs: 100 }), LockTimeoutError);
    const started = Date.now();
    assert.equal(await withStoreLock(b.db, "box:x", 60_000, async () => "taken", { waitMs: 5_000 }), "taken");
    assert.ok(Date.now() - started >= 200, "waited for the expiry");
    assert.deepEqual(await a.db.selectFrom("locks").selectAll().execute(), []);
  } finally {
    await a.close();
    await b.close();
  }
});

test("the lock is released when the work throws, and the other contender gets it", async () => {
  const [a, b] = await twoConnections();
  try {
    let release!: () => void;
    const holding = new Promise<void>((resolve) => (release = resolve));
    const first = withStoreLock(a.db, "box:x", 60_000, async () => {
      await holding;
      throw new Error("boom");
    });
    await sleep(50);
    const second = withStoreLock(b.db, "box:x", 60_000, async () => "second");
    await sleep(100);
    release();
    await assert.rejects(first, /boom/);
    assert.equal(await second, "second");
    assert.deepEqual(await a.db.selectFrom("locks").selectAll().execute(), []);
  } finally {
    await a.close();
    await b.close();
  }
});

test("on PostgreSQL too: two pools, one holder at a time, an expired row taken over", async () => {
  const server = process.env.BOXCERT_TEST_POSTGRES_URL ? null : await startPostgres();
  const url = process.env.BOXCERT_TEST_POSTGRES_URL ?? server!.url;
  const a = await openStore(url);
  const b = await openStore(url);
  try {
    const name = `box:${randomUUID()}`;
    let inside = 0;
    const work = async () => {
      inside++;
      assert.equal(inside, 1);
      await sleep(100);
      inside--;
    };
    await Promise.all([withStoreLock(a.db, name, 60_000, work), withStoreLock(b.db, name, 60_000, work)]);
    await a.db.insertInto("locks").values({ name, owner: "crashed", expires_at: new Date(Date.now() + 300).toISOString() }).execute();
    await assert.rejects(withStoreLock(b.db, name, 60_000, async () => "never", { waitMs: 50 }), LockTimeoutError);
    assert.equal(await withStoreLock(b.db, name, 60_000, async () => "taken", { waitMs: 5_000 }), "taken");
    assert.deepEqual(await a.db.selectFrom("locks").selectAll().where("name", "=", name).execute(), []);
  } finally {
    await a.close();
    await b.close();
    server?.stop();
  }
});
