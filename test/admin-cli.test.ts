/** `boxcert admin` as operators run it: text and --json output, one-line errors with a non-zero exit. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { randomUUID } from "node:crypto";
import { boxcert, tempDir } from "./support/processes.ts";

test("subscriptions, databases, boxes, certificates through the command line", async () => {
  const store = join(tempDir("boxcert-admin-"), "registry.sqlite");
  const run = (...args: string[]) => boxcert(["admin", ...args, "--store", store]);
  const json = async (...args: string[]) => {
    const r = await run(...args, "--json");
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout);
  };

  const added = await json("subscription", "add", "SUB-1", "--state", "in_progress", "--seats", "2");
  assert.deepEqual([added.code, added.state, added.iotBoxSeats, added.seatsTaken], ["SUB-1", "in_progress", 2, 0]);
  const text = await run("subscription", "list");
  assert.match(text.stdout, /^code\s+state\s+iotBoxSeats/m);
  assert.match(text.stdout, /SUB-1\s+in_progress\s+2\s+0/);
  assert.equal((await json("subscription", "set", "SUB-1", "--state", "paused")).state, "paused");

  const uuid = randomUUID();
  assert.equal((await json("database", "add", uuid, "--subscription", "SUB-1")).kind, "production");
  assert.equal((await json("database", "set", uuid, "--kind", "staging")).kind, "staging");
  assert.equal((await json("database", "list")).length, 1);
  assert.deepEqual(await json("box", "list"), []);
  assert.deepEqual(await json("cert", "list"), []);

  const errors: Array<[string[], RegExp]> = [
    [["subscription", "set", "NOPE", "--state", "paused"], /unknown subscription NOPE/],
    [["subscription", "set", "SUB-1", "--state", "running"], /unknown subscription state "running"/],
    [["subscription", "add", "SUB-1"], /already exists/],
    [["database", "add", randomUUID(), "--subscription", "NOPE"], /unknown subscription NOPE/],
    [["database", "set", uuid, "--kind", "prod"], /unknown database kind "prod"/],
    [["box", "free", "nolabel"], /no active box/],
    [["cert", "revoke", "abcd"], /unknown certificate abcd/],
    [["subscription", "add", "X", "--seats", "two"], /not a whole number/],
  ];
  for (const [args, message] of errors) {
    const r = await run(...args);
    assert.notEqual(r.code, 0, args.join(" "));
    assert.match(r.stderr, message, args.join(" "));
    assert.equal(r.stderr.trim().split("\n").length, 1, `one line: ${r.stderr}`);
  }
});
