/**
 * Browsers load boxcert-web.js as it is (no bundler): an import of a package would not resolve there, and
 * the module promises no dependencies. Checks the manifest and the source.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";

const DIR = join(import.meta.dirname, "..");

test("no dependencies, and the module imports nothing", () => {
  const manifest = JSON.parse(readFileSync(join(DIR, "package.json"), "utf8")) as Record<string, unknown>;
  for (const field of ["dependencies", "peerDependencies", "optionalDependencies"]) assert.equal(manifest[field], undefined, field);
  const sources = readdirSync(join(DIR, "src")).filter((f) => f.endsWith(".js"));
  assert.deepEqual(sources, ["boxcert-web.js"]);
  const code = readFileSync(join(DIR, "src", "boxcert-web.js"), "utf8");
  assert.doesNotMatch(code, /^\s*import\s|\bimport\s*\(|\brequire\s*\(/m);
  assert.match(code, /^export function boxClient\(/m, "the scan read the module");
});
