/**
 * `boxcert admin database` run in-process on a real SQLite store in a temporary folder: what operators see
 * of databases' reports, and how they decide which database of a subscription is the production one.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomUUID } from "node:crypto";
import { Command } from "commander";
import { DatabaseReportQueries, openStore } from "@boxcert/store";
import { registerAdminCommands } from "../src/cli.ts";

/** Runs `boxcert admin ARGS --store STORE` and returns what it printed; a refusal rejects with its message. */
async function admin(store: string, ...args: string[]): Promise<string> {
  let printed = "";
  const program = new Command("boxcert").exitOverride();
  registerAdminCommands(program, { write: (text: string) => (printed += text) });
  await program.parseAsync(["admin", ...args, "--store", store], { from: "user" });
  return printed;
}

async function json<T>(store: string, ...args: string[]): Promise<T> {
  return JSON.parse(await admin(store, ...args, "--json")) as T;
}

interface ListedDatabase {
  uuid: string;
  subscription: string;
  kind: string;
  keyRecorded: boolean;
  reportedAt: string | null;
}

function freshStore(): string {
  return join(mkdtempSync(join(tmpdir(), "boxcert-admin-")), "registry.sqlite");
}

/** A database's report as the issuer records it (its own rules decide the kind; here: what is claimed). */
async function reported(store: string, code: string, kind: "production" | "staging", at: Date): Promise<string> {
  const dbUuid = randomUUID();
  const opened = await openStore(store);
  try {
    await new DatabaseReportQueries(opened).report({ dbUuid, enterpriseCode: code, databaseKey: "S0VZ" }, at, () => ({ kind, result: null }));
  } finally {
    await opened.close();
  }
  return dbUuid;
}

test("database list shows the kind, whether a key is recorded, and when the database last reported", async () => {
  const store = freshStore();
  await admin(store, "subscription", "add", "SUB-1", "--state", "in_progress", "--seats", "1");
  const added = randomUUID();
  await admin(store, "database", "add", added, "--subscription", "SUB-1", "--kind", "staging");
  const at = new Date("2026-11-26T10:00:00.000Z");
  const self = await reported(store, "SUB-1", "production", at);

  const rows = await json<ListedDatabase[]>(store, "database", "list");
  const byUuid = new Map(rows.map((r) => [r.uuid, r]));
  assert.deepEqual(
    [byUuid.get(added), byUuid.get(self)].map((r) => r && [r.subscription, r.kind, r.keyRecorded, r.reportedAt]),
    [
      ["SUB-1", "staging", false, null],
      ["SUB-1", "production", true, at.toISOString()],
    ],
  );
  const text = await admin(store, "database", "list");
  assert.match(text, /^uuid\s+subscription\s+kind\s+keyRecorded\s+reportedAt\s+createdAt$/m);
  assert.match(text, new RegExp(`^${added}\\s+SUB-1\\s+staging\\s+false\\s+-\\s+\\S+$`, "m"));
  assert.match(text, new RegExp(`^${self}\\s+SUB-1\\s+production\\s+true\\s+2026-11-26T10:00:00.000Z\\s+\\S+$`, "m"));
  assert.ok(!text.includes("S0VZ") && !(await admin(store, "database", "list", "--json")).includes("S0VZ"), "the key itself is not shown");
});

test("a subscription has at most one production database: set and add refuse a second, saying which and what to do", async () => {
  const store = freshStore();
  await admin(store, "subscription", "add", "SUB-2", "--state", "in_progress", "--seats", "1");
  const production = await reported(store, "SUB-2", "production", new Date());
  const duplicate = randomUUID();
  await admin(store, "database", "add", duplicate, "--subscription", "SUB-2", "--kind", "duplicate");
  const refusal = new RegExp(
    `subscription SUB-2 already has a production database \\(${production}\\); a subscription has at most one: ` +
      `first set that one's kind \\(boxcert admin database set ${production} --kind duplicate\\)$`,
  );
  await assert.rejects(admin(store, "database", "set", duplicate, "--kind", "production"), refusal);
  await assert.rejects(admin(store, "database", "add", randomUUID(), "--subscription", "SUB-2"), refusal, "add defaults to production");
  assert.deepEqual((await json<ListedDatabase[]>(store, "database", "list")).map((d) => d.kind).sort(), ["duplicate", "production"], "nothing changed");

  // The operator's decision, in the order the message says.
  assert.equal((await json<ListedDatabase>(store, "database", "set", production, "--kind", "duplicate")).kind, "duplicate");
  const chosen = await json<ListedDatabase>(store, "database", "set", duplicate, "--kind", "production");
  assert.deepEqual([chosen.kind, chosen.keyRecorded, chosen.reportedAt], ["production", false, null]);
});
