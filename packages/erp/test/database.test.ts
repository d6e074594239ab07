/**
 * The database's identity in its data folder (docs/erp-server.md "Data dir"): made once and kept across
 * restarts, files 0600, one process per folder, a broken file never replaced; and `duplicate`, a copy
 * with a new UUID and key that says it is a duplicate.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { dataPaths, readDatabase } from "../src/database.ts";
import { duplicateDatabase } from "../src/duplicate.ts";
import { readStoreFile } from "../src/store.ts";
import { parseConnectionToken } from "../src/pairing.ts";
import { ENTERPRISE_CODE, PASSWORD, startTestErp, tempDir } from "./helpers/fixture.ts";
import { FakeBox } from "./helpers/fake-box.ts";
import { Browser } from "./helpers/browser.ts";

async function mode(path: string): Promise<number> {
  return (await stat(path)).mode & 0o777;
}

test("the first start creates the database (production, 0600 files); a restart keeps its UUID and key", async (t) => {
  const temp = await tempDir();
  t.after(temp.cleanup);
  const first = await startTestErp({}, temp.dir);
  const { dbUuid, kind, enterpriseCode } = first.erp.database.record;
  const publicKey = first.erp.database.publicKey;
  await first.stop();
  assert.match(dbUuid, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  assert.equal(kind, "production");
  assert.equal(enterpriseCode, ENTERPRISE_CODE);
  for (const file of ["database.json", "database-key.pem"]) assert.equal(await mode(join(temp.dir, file)), 0o600, file);
  assert.equal(await mode(temp.dir), 0o700);

  // Without --enterprise-code and --kind: what was stored.
  const again = await startTestErp({ enterpriseCode: undefined }, temp.dir);
  t.after(() => again.stop());
  assert.deepEqual(again.erp.database.record, first.erp.database.record);
  assert.equal(again.erp.database.publicKey, publicKey);
  assert.ok(!again.log.lines().some((line) => line.event === "database_created"));
});

test("--enterprise-code is required to create a database; flags given later replace the stored kind and code", async (t) => {
  const temp = await tempDir();
  t.after(temp.cleanup);
  await assert.rejects(startTestErp({ enterpriseCode: undefined }, join(temp.dir, "new")), /holds no database yet: give --enterprise-code/);
  const first = await startTestErp({}, temp.dir);
  await first.stop();
  const changed = await startTestErp({ kind: "development", enterpriseCode: "OTHER-CODE" }, temp.dir);
  t.after(() => changed.stop());
  assert.equal(changed.erp.database.record.kind, "development");
  assert.equal(changed.erp.database.record.dbUuid, first.erp.database.record.dbUuid);
  const stored = JSON.parse(await readFile(join(temp.dir, "database.json"), "utf8")) as Record<string, unknown>;
  assert.equal(stored.kind, "development");
  assert.equal(stored.enterpriseCode, "OTHER-CODE");
  const line = changed.log.lines().find((l) => l.event === "database_changed");
  assert.deepEqual(line?.fields, ["kind", "enterpriseCode"]);
  assert.ok(!changed.log.text().includes("OTHER-CODE"));
});

test("one process per data folder; the folder is free again after a stop", async (t) => {
  const first = await startTestErp();
  t.after(() => first.stop());
  await assert.rejects(startTestErp({}, first.dir), /used by another boxcert erp \(pid \d+\)/);
  // A lock left by a process that is gone (kill -9) is taken over.
  await first.erp.close();
  await writeFile(join(first.dir, "erp.pid"), "999999999\n");
  const second = await startTestErp({}, first.dir);
  await second.erp.close();
});

test("a broken database.json or key stops the start with the file's name, and is never replaced", async (t) => {
  const fixture = await startTestErp();
  await fixture.erp.close();
  t.after(() => fixture.stop().catch(() => undefined));
  const paths = dataPaths(fixture.dir);
  await writeFile(paths.database, `{"dbUuid": "x", "enterpriseCode": "${ENTERPRISE_CODE}"`);
  await assert.rejects(startTestErp({}, fixture.dir), (err: Error) => err.message.startsWith(`${paths.database}: not valid JSON`) && !err.message.includes(ENTERPRISE_CODE));
  assert.match(await readFile(paths.database, "utf8"), /^\{"dbUuid": "x"/);
  await writeFile(paths.database, JSON.stringify({ dbUuid: "x", enterpriseCode: "C", kind: "production", createdAt: new Date().toISOString(), duplicatedFrom: null }));
  await writeFile(paths.key, "not a key");
  await assert.rejects(startTestErp({}, fixture.dir), new RegExp(`${paths.key}: the database key cannot be parsed`));
  assert.equal(await readFile(paths.key, "utf8"), "not a key");
});

test("duplicate: a new UUID and key, kind duplicate, the boxes copied and the pairing secrets not", async (t) => {
  const original = await startTestErp();
  t.after(() => original.stop());
  const browser = new Browser(original.target);
  await browser.login(PASSWORD);
  const connect = async (): Promise<string> => {
    const answer = await browser.post("/iot/connect", { csrf: Browser.csrfOf(await browser.get("/iot")) });
    return parseConnectionToken(/id="token" readonly value="([^"]+)"/.exec(answer.text)![1]!).pairing;
  };
  const box = new FakeBox();
  assert.equal((await box.send(original.target, box.body(Date.now(), { pairing: await connect() }))).status, 200);
  const unused = await connect();
  assert.equal(original.erp.store.data.pairings.length, 1);

  const target = await tempDir();
  t.after(target.cleanup);
  const to = join(target.dir, "copy");
  const done = await duplicateDatabase(dataPaths(original.dir), dataPaths(to), Date.now());
  assert.equal(done.boxes, 1);
  const copy = await readDatabase(dataPaths(to));
  assert.ok(copy);
  assert.notEqual(copy.record.dbUuid, original.erp.database.record.dbUuid);
  assert.notEqual(copy.publicKey, original.erp.database.publicKey);
  assert.equal(copy.record.kind, "duplicate");
  assert.equal(copy.record.enterpriseCode, ENTERPRISE_CODE);
  assert.equal(copy.record.duplicatedFrom, original.erp.database.record.dbUuid);
  const store = await readStoreFile(join(to, "boxes.json"));
  assert.deepEqual(store.boxes, original.erp.store.data.boxes);
  assert.deepEqual(store.pairings, []);
  for (const file of ["database.json", "database-key.pem", "boxes.json"]) assert.equal(await mode(join(to, file)), 0o600, file);

  // The copy runs: its boxes are known by their keys, the original's open secret does not pair there.
  const running = await startTestErp({ enterpriseCode: undefined }, to);
  t.after(() => running.stop());
  assert.equal(running.erp.database.record.kind, "duplicate");
  assert.equal((await box.send(running.target, box.body(Date.now()))).status, 200);
  const stranger = new FakeBox();
  assert.equal((await stranger.send(running.target, stranger.body(Date.now(), { pairing: unused }))).status, 403);

  await assert.rejects(duplicateDatabase(dataPaths(original.dir), dataPaths(to), Date.now()), /is not empty: a duplicate goes into a new folder/);
  await assert.rejects(duplicateDatabase(dataPaths(join(target.dir, "nothing")), dataPaths(join(target.dir, "other")), Date.now()), /holds no database/);
});
