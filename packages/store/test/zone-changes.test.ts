/**
 * `store.listenZoneChanges` (zone-changes.ts, migration 0006): on PostgreSQL every commit that moves the zone
 * version is told at once, over a connection that comes back by itself after a PostgreSQL restart; SQLite has
 * nothing to listen to.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openStore } from "../src/db.ts";
import { ZoneRecords } from "../src/zone-records.ts";
import type { ZoneListenEvent } from "../src/zone-changes.ts";
import { startPostgres } from "../../../test/support/postgres.ts";
import { waitFor } from "../../../test/support/processes.ts";

/** Polls a condition the test's sockets or listeners set (test/support/processes.ts waitFor). */
function until(what: string, condition: () => boolean, timeoutMs = 15_000): Promise<boolean> {
  return waitFor(what, async () => condition(), timeoutMs, 10);
}

test("SQLite: nothing to listen to (null)", async () => {
  const store = await openStore(join(mkdtempSync(join(tmpdir(), "boxcert-zone-changes-")), "registry.sqlite"));
  try {
    assert.equal(store.listenZoneChanges({ onChange: () => {} }), null);
  } finally {
    await store.close();
  }
});

test("PostgreSQL: a challenge value's commit is told at once; after a restart the listener reconnects by itself", async () => {
  const pg = await startPostgres();
  const writer = await openStore(pg.url);
  const reader = await openStore(pg.url);
  let changes = 0;
  const events: ZoneListenEvent[] = [];
  const stop = reader.listenZoneChanges({ onChange: () => changes++, onState: (event) => events.push(event) });
  try {
    assert.ok(stop);
    await until("listening", () => events.some((e) => e.listening));
    await until("the change reported at connection", () => changes === 1);
    const records = new ZoneRecords(writer.db);
    await records.addChallenge("abcdefghijklmnop", "value1");
    await until("the commit told", () => changes === 2);
    pg.restart();
    await until("the loss reported", () => events.some((e) => !e.listening));
    await until("listening again", () => events.filter((e) => e.listening).length === 2);
    const before = changes;
    await records.removeChallenge("abcdefghijklmnop", "value1");
    await until("the commit after the restart told", () => changes === before + 1);
  } finally {
    await stop?.();
    await reader.close();
    await writer.close();
    pg.stop();
  }
});
