/**
 * `boxcert admin migrate`: brings the schema up to date and lists the migrations. Four of them started at
 * once on a new store (as issuers starting together would), as separate processes, on SQLite and on a real
 * PostgreSQL: all succeed, and each migration is run by exactly one of them.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { boxcert, tempDir } from "../../../test/support/processes.ts";
import { startPostgres } from "../../../test/support/postgres.ts";

interface Migration {
  name: string;
  executedAt: string | null;
  ranNow: boolean;
}

async function migrateAtOnce(store: string, processes: number): Promise<Migration[][]> {
  const runs = await Promise.all(Array.from({ length: processes }, () => boxcert(["admin", "migrate", "--store", store, "--json"])));
  for (const run of runs) assert.equal(run.code, 0, run.stderr);
  return runs.map((run) => JSON.parse(run.stdout) as Migration[]);
}

function assertEachRanOnce(results: Migration[][]): void {
  const names = results[0]!.map((m) => m.name);
  assert.ok(names.length >= 5, `the schema's migrations: ${names.join(", ")}`);
  for (const listed of results) {
    assert.deepEqual(listed.map((m) => m.name), names, "every run lists the same migrations, in order");
    assert.ok(listed.every((m) => m.executedAt !== null), "all of them ran");
  }
  for (const name of names) {
    const ranBy = results.filter((listed) => listed.find((m) => m.name === name)!.ranNow).length;
    assert.equal(ranBy, 1, `${name} was run by exactly one process`);
  }
}

test("four admin migrate at once on a new SQLite store: each migration once; again: nothing to run", async () => {
  const store = join(tempDir("boxcert-migrate-"), "registry.sqlite");
  assertEachRanOnce(await migrateAtOnce(store, 4));
  const [again] = await migrateAtOnce(store, 1);
  assert.ok(again!.every((m) => !m.ranNow && m.executedAt !== null), "an up-to-date store: nothing run");
});

test("four admin migrate at once on a new PostgreSQL database: each migration once", async () => {
  const server = await startPostgres();
  try {
    assertEachRanOnce(await migrateAtOnce(server.url, 4));
  } finally {
    server.stop();
  }
});
