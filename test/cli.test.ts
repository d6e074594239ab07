/** The `boxcert` command itself: its component list, and what it says for a component it does not have. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { boxcert } from "./support/processes.ts";

test("boxcert --help lists every component and exits 0", async () => {
  const { code, stdout } = await boxcert(["--help"]);
  assert.equal(code, 0);
  for (const name of ["issuer", "admin", "box", "dns", "erp", "demo"]) assert.match(stdout, new RegExp(`\\b${name}\\b`));
});

test("an unknown component says so, lists the real ones and exits non-zero (even with --help)", async () => {
  for (const args of [["pos", "--help"], ["nope"], ["constructor"], ["__proto__", "--help"]]) {
    const { code, stdout, stderr } = await boxcert(args);
    assert.equal(code, 2, args.join(" "));
    assert.equal(stdout, "", args.join(" "));
    assert.match(stderr, new RegExp(`unknown component '${args[0]}'.*issuer, admin, box, dns, erp, demo`), args.join(" "));
  }
});

test("a known component's help is its own", async () => {
  const { code, stdout } = await boxcert(["dns", "--help"]);
  assert.equal(code, 0);
  assert.match(stdout, /Usage: boxcert dns/);
  // The TCP limits and their defaults (commander wraps the descriptions: compare with the lines joined).
  const help = stdout.replace(/\s+/g, " ");
  for (const flag of ["--tcp-max-connections <n>", "--tcp-max-per-client <n>", "--tcp-idle-timeout <duration>"]) assert.ok(help.includes(flag), flag);
  for (const text of ["(default: 256)", "(default: 16, or the cap if lower)", "(default: 10s)"]) assert.ok(help.includes(text), text);
  for (const text of ["--allow-notify <cidr>", "default: 127.0.0.0/8 and ::1", "--poll-interval <duration>", "(default: 250ms)"]) assert.ok(help.includes(text), text);
});
