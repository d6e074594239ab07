import { test } from "node:test";
import assert from "node:assert/strict";
import { RenewalScheduler } from "../src/certificate/renewal.ts";
import type { CheckResult } from "../src/certificate/renewal.ts";
import type { CheckTrigger } from "../src/certificate/check.ts";
import type { Timers } from "../src/clock.ts";

const MIN = 60_000;
const HOUR = 3600_000;

/** A fake clock with timers that fire when time is advanced. */
class FakeTime {
  now = Date.parse("2025-01-01T00:00:00Z");
  #timers: { at: number; fn: () => void; id: number }[] = [];
  #next = 1;
  clock = (): number => this.now;
  timers: Timers = {
    setTimeout: (fn, ms) => {
      const id = this.#next++;
      this.#timers.push({ at: this.now + ms, fn, id });
      return id;
    },
    clearTimeout: (id) => {
      this.#timers = this.#timers.filter((t) => t.id !== id);
    },
  };
  get pending(): number {
    return this.#timers.length;
  }
  /** Moves time forward, firing due timers in order and letting the checks they start finish. */
  async advance(ms: number): Promise<void> {
    const target = this.now + ms;
    for (;;) {
      await settle();
      const due = this.#timers.filter((t) => t.at <= target).sort((a, b) => a.at - b.at)[0];
      if (!due) break;
      this.#timers = this.#timers.filter((t) => t !== due);
      this.now = due.at;
      due.fn();
    }
    this.now = target;
    await settle();
  }
}

async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
}

function setup(
  results: (n: number, trigger: CheckTrigger) => CheckResult,
  options: { intervalMs?: number } = {},
): { time: FakeTime; scheduler: RenewalScheduler; calls: number[]; triggers: CheckTrigger[] } {
  const time = new FakeTime();
  const calls: number[] = [];
  const triggers: CheckTrigger[] = [];
  const scheduler = new RenewalScheduler({
    clock: time.clock,
    timers: time.timers,
    random: () => 0.5, // no jitter: the schedule's exact values
    ...options,
    check: async (trigger) => {
      calls.push(time.now);
      triggers.push(trigger);
      return results(calls.length, trigger);
    },
  });
  return { time, scheduler, calls, triggers };
}

const ok = (renewAfter: number | null, contacted = true): CheckResult => ({ ok: true, renewAfter, retryAfterMs: null, contacted });
const failed = (retryAfterMs: number | null = null): CheckResult => ({ ok: false, renewAfter: null, retryAfterMs, contacted: true });
/** What the agent answers: a periodic check asks the issuer, an on-demand one for a fine certificate does not. */
const fine = (renewAfter: number) => (_n: number, trigger: CheckTrigger): CheckResult => ok(renewAfter, trigger === "periodic");

test("checks at start, then at the certificate's renewAfter", async () => {
  let renewAt = 0;
  const { time, scheduler, calls } = setup(() => ok(renewAt));
  renewAt = time.now + 2 * HOUR + 17_000;
  scheduler.start();
  await time.advance(0);
  assert.equal(calls.length, 1);
  assert.equal(scheduler.nextCheckAt, renewAt);
  await time.advance(2 * HOUR + 16_999);
  assert.equal(calls.length, 1);
  await time.advance(1);
  assert.deepEqual(calls.slice(1), [renewAt]);
  await scheduler.stop();
});

test("a short-lived certificate is renewed at its renewAfter, however close; one already due waits a minute", async () => {
  const { time, scheduler, calls } = setup((n) => ok(n === 1 ? time.now + 16_000 : time.now - 1));
  const start = time.now;
  scheduler.start();
  await time.advance(2 * MIN);
  assert.deepEqual(
    calls.map((t) => t - start),
    [0, 16_000, 16_000 + MIN],
  );
  await scheduler.stop();
});

test("checks at least every six hours", async () => {
  const { time, scheduler, calls } = setup(() => ok(time.now + 30 * 24 * HOUR));
  const start = time.now;
  scheduler.start();
  await time.advance(19 * HOUR);
  assert.deepEqual(
    calls.map((t) => (t - start) / HOUR),
    [0, 6, 12, 18],
  );
  await scheduler.stop();
  assert.equal(time.pending, 0);
});

test("failures back off from 1 minute, doubling, capped at 6 hours", async () => {
  const { time, scheduler, calls } = setup(() => failed());
  scheduler.start();
  await time.advance(40 * HOUR);
  const gaps = calls.slice(1).map((t, i) => (t - (calls[i] as number)) / MIN);
  assert.deepEqual(gaps.slice(0, 11), [1, 2, 4, 8, 16, 32, 64, 128, 256, 360, 360]);
  assert.equal(scheduler.failures, calls.length);
  await scheduler.stop();
});

test("the backoff has jitter within the schedule's ±20%", async () => {
  for (const random of [0, 0.999]) {
    const time = new FakeTime();
    const scheduler = new RenewalScheduler({ clock: time.clock, timers: time.timers, random: () => random, check: async () => failed() });
    scheduler.start();
    await time.advance(0);
    const delay = (scheduler.nextCheckAt as number) - time.now;
    assert.ok(delay >= MIN * 0.8 && delay <= MIN * 1.2, `delay ${delay}`);
    await scheduler.stop();
  }
});

test("a larger Retry-After wins over the backoff; a smaller one does not", async () => {
  const { time, scheduler, calls } = setup((n) => (n === 1 ? failed(10 * MIN) : n === 2 ? failed(5_000) : ok(null)));
  scheduler.start();
  await time.advance(20 * MIN);
  // Retry-After 10 min with the jitter at its middle (random 0.5, a fifth at most): 11 min; then the backoff's 2.
  assert.deepEqual(
    calls.map((t) => (t - (calls[0] as number)) / MIN),
    [0, 11, 13],
  );
  await scheduler.stop();
});

test("a Retry-After is never cut short and spread over a fifth more: boxes told the same number come back apart", () => {
  for (const [random, expected] of [[0, 10 * MIN], [0.5, 11 * MIN], [0.999, 719_880]] as const) {
    const time = new FakeTime();
    const scheduler = new RenewalScheduler({ clock: time.clock, timers: time.timers, random: () => random, check: async () => failed() });
    assert.equal(scheduler.nextDelay(failed(10 * MIN), time.now), expected, `random ${random}`);
  }
});

test("a success resets the backoff", async () => {
  const { time, scheduler, calls } = setup((n) => (n <= 3 ? failed() : n === 4 ? ok(time.now + 3 * MIN) : failed()));
  scheduler.start();
  await time.advance(20 * MIN);
  const gaps = calls.slice(1).map((t, i) => (t - (calls[i] as number)) / MIN);
  // fail, fail, fail, ok (renew in 3 min), then the failures start again at 1 minute.
  assert.deepEqual(gaps.slice(0, 5), [1, 2, 4, 3, 1]);
  await scheduler.stop();
});

test("opening the homepage checks at most once a minute, even during a backoff", async () => {
  const { time, scheduler, calls } = setup(() => failed());
  scheduler.start();
  await time.advance(0);
  // Let the backoff grow: checks at 0, 1, 3, 7, 15 minutes; the next is due at 31.
  await time.advance(15 * MIN);
  assert.equal(calls.length, 5);
  assert.equal(scheduler.nextCheckAt, time.now + 16 * MIN);

  await time.advance(30_000);
  assert.equal(scheduler.homepageOpened(), false, "a check ended 30 s ago");
  await time.advance(30_000);
  assert.equal(scheduler.homepageOpened(), true, "no check in the last minute");
  assert.equal(scheduler.homepageOpened(), false, "joins the one just started");
  await time.advance(0);
  assert.equal(calls.length, 6);
  assert.equal(scheduler.homepageOpened(), false, "one just ended");
  await time.advance(59_999);
  assert.equal(scheduler.homepageOpened(), false);
  await time.advance(1);
  assert.equal(scheduler.homepageOpened(), true);
  await time.advance(0);
  assert.equal(calls.length, 7);
  await scheduler.stop();
});

test("never two checks at once: a second request joins the running one", async () => {
  const time = new FakeTime();
  let release: (r: CheckResult) => void = () => undefined;
  let calls = 0;
  const scheduler = new RenewalScheduler({
    clock: time.clock,
    timers: time.timers,
    check: () => {
      calls++;
      return new Promise<CheckResult>((r) => (release = r));
    },
  });
  const first = scheduler.run();
  const second = scheduler.run();
  assert.equal(first, second);
  assert.equal(scheduler.running, true);
  assert.equal(scheduler.homepageOpened(), false);
  release(ok(null));
  assert.deepEqual(await second, ok(null));
  assert.equal(calls, 1);
  assert.equal(scheduler.running, false);
  assert.equal(scheduler.lastCheck, time.now);
});

test("a crashing check is reported and retried like a failure", async () => {
  const time = new FakeTime();
  const crashes: unknown[] = [];
  const scheduler = new RenewalScheduler({
    clock: time.clock,
    timers: time.timers,
    random: () => 0.5,
    check: async () => {
      throw new Error("bug");
    },
    onCrash: (err) => crashes.push(err),
  });
  scheduler.start();
  await time.advance(0);
  assert.equal(crashes.length, 1);
  assert.equal(scheduler.nextCheckAt, time.now + MIN);
  await scheduler.stop();
  assert.equal(time.pending, 0);
});

test("the check at start and the timed checks are periodic; the homepage's and run()'s are on demand", async () => {
  const { time, scheduler, triggers } = setup(fine(Date.parse("2025-02-01T00:00:00Z")));
  scheduler.start();
  await time.advance(0);
  await time.advance(2 * MIN);
  assert.equal(scheduler.homepageOpened(), true);
  await time.advance(0);
  await scheduler.run();
  await scheduler.run("periodic");
  await time.advance(6 * HOUR);
  assert.deepEqual(triggers, ["periodic", "demand", "demand", "periodic", "periodic"]);
  await scheduler.stop();
});

test("an on-demand check that asked nothing does not push the periodic check back", async () => {
  const { time, scheduler, calls, triggers } = setup(fine(Date.parse("2025-02-01T00:00:00Z")));
  const start = time.now;
  scheduler.start();
  await time.advance(2 * HOUR);
  assert.equal(scheduler.homepageOpened(), true);
  await time.advance(0);
  assert.equal(scheduler.nextCheckAt, start + 6 * HOUR, "the homepage moved the periodic check");
  // One more just before the deadline: the periodic check still comes on time.
  await time.advance(4 * HOUR - 1);
  assert.equal(scheduler.homepageOpened(), true);
  await time.advance(13 * HOUR);
  assert.deepEqual(
    calls.map((t) => (t - start) / HOUR),
    [0, 2, 6 - 1 / HOUR, 6, 12, 18],
  );
  assert.deepEqual(triggers, ["periodic", "demand", "demand", "periodic", "periodic", "periodic"]);
  await scheduler.stop();
});

test("an on-demand check that asked the issuer (a retry) counts as the periodic one", async () => {
  const { time, scheduler, calls } = setup((n) => (n <= 2 ? failed() : ok(time.now + 30 * 24 * HOUR)));
  const start = time.now;
  scheduler.start();
  await time.advance(MIN + 61_000);
  assert.equal(scheduler.homepageOpened(), true, "retry from the homepage during the backoff");
  await time.advance(0);
  const retried = start + MIN + 61_000;
  assert.equal(scheduler.nextCheckAt, retried + 6 * HOUR);
  await time.advance(6 * HOUR);
  assert.deepEqual(
    calls.map((t) => t - start),
    [0, MIN, MIN + 61_000, MIN + 61_000 + 6 * HOUR],
  );
  await scheduler.stop();
});

test("the check interval is configurable (--check-interval): periodic checks every 10 s", async () => {
  const { time, scheduler, calls, triggers } = setup(fine(Date.parse("2025-02-01T00:00:00Z")), { intervalMs: 10_000 });
  const start = time.now;
  scheduler.start();
  await time.advance(35_000);
  assert.deepEqual(
    calls.map((t) => t - start),
    [0, 10_000, 20_000, 30_000],
  );
  assert.ok(triggers.every((t) => t === "periodic"));
  await scheduler.stop();
});

test("a failed refresh backs off as a failed renewal does, then refreshes again", async () => {
  const { time, scheduler, calls, triggers } = setup((n) => (n <= 3 ? failed() : ok(time.now + 30 * 24 * HOUR)));
  const start = time.now;
  scheduler.start();
  await time.advance(6 * HOUR + 8 * MIN);
  assert.deepEqual(
    calls.map((t) => (t - start) / MIN),
    [0, 1, 3, 7, 7 + 360],
  );
  assert.ok(triggers.every((t) => t === "periodic"));
  assert.equal(scheduler.failures, 0);
  await scheduler.stop();
});
