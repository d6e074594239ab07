/**
 * Databases reporting themselves to a fleet: two `boxcert issuer` processes on one SQLite file (each its own
 * connection, so the subscription's lock is what keeps them apart), and `boxcert admin` as operators run it
 * to see the reports and decide a duplicate.
 */
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { boxcert, tempDir } from "./support/processes.ts";
import { admin, startIssuerProcess, type Issuer } from "./support/system.ts";
import { report, scriptedDatabase } from "./support/database-client.ts";

const stops: Array<() => Promise<void>> = [];
after(async () => {
  for (const stop of stops.reverse()) await stop();
});

interface ListedDatabase {
  uuid: string;
  kind: string;
  keyRecorded: boolean;
  reportedAt: string | null;
}

test("two issuer processes on one SQLite store, 20 first reports claiming production at once: one production, and an operator decides", async () => {
  const dir = tempDir("boxcert-dbreport-");
  const issuers: Issuer[] = [];
  // One after the other: the second finds the first's CA keys.
  for (let i = 0; i < 2; i++) {
    const issuer = await startIssuerProcess({ dir });
    stops.push(() => issuer.proc.stop());
    issuers.push(issuer);
  }
  const store = issuers[0]!.store;
  await admin(store, "subscription", "add", "FLEET-1", "--state", "in_progress", "--seats", "2");
  const databases = Array.from({ length: 20 }, () => scriptedDatabase("FLEET-1"));
  const answers = await Promise.all(databases.map((d, i) => report(issuers[i % 2]!.url, d, "production")));
  const logs = issuers.map((issuer) => issuer.proc.output().slice(-3000)).join("\n");
  assert.deepEqual(answers.map((a) => a.status), answers.map(() => 200), `${JSON.stringify(answers.map((a) => a.json))}\n${logs}`);

  const listed = (await admin(store, "database", "list")) as ListedDatabase[];
  assert.equal(listed.length, 20);
  assert.deepEqual(listed.map((d) => d.kind).sort(), [...Array.from({ length: 19 }, () => "duplicate"), "production"]);
  assert.ok(listed.every((d) => d.keyRecorded && d.reportedAt !== null), JSON.stringify(listed));
  const text = await boxcert(["admin", "database", "list", "--store", store]);
  assert.match(text.stdout, /^uuid\s+subscription\s+kind\s+keyRecorded\s+reportedAt\s+createdAt/m);

  // The operator decides: a duplicate cannot become production beside the production one...
  const production = listed.find((d) => d.kind === "production")!;
  const duplicate = listed.find((d) => d.kind === "duplicate")!;
  const refused = await boxcert(["admin", "database", "set", duplicate.uuid, "--kind", "production", "--store", store]);
  assert.equal(refused.code, 1);
  assert.equal(refused.stderr.trim().split("\n").length, 1, refused.stderr);
  assert.match(refused.stderr, new RegExp(`already has a production database \\(${production.uuid}\\); a subscription has at most one`));
  // ...until the other one's kind is set first; then the reports follow the operator.
  await admin(store, "database", "set", production.uuid, "--kind", "duplicate");
  assert.equal(((await admin(store, "database", "set", duplicate.uuid, "--kind", "production")) as ListedDatabase).kind, "production");
  const chosen = databases.find((d) => d.dbUuid === duplicate.uuid)!;
  const former = databases.find((d) => d.dbUuid === production.uuid)!;
  assert.equal((await report(issuers[1]!.url, chosen, "production")).json.kind, "production");
  assert.equal((await report(issuers[0]!.url, former, "production")).json.kind, "duplicate", "a report never raises it back");
});
