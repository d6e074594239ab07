/**
 * The erp installs and runs without the issuer, the box or the store: its package lists the shared
 * module, the browser module @boxcert/web (served to the POS page, no dependencies of its own), fastify,
 * pino and commander, and no module of it imports anything else.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { packageImportProblems } from "../../../test/support/package-imports.ts";

const ALLOWED = ["@boxcert/shared", "@boxcert/web", "fastify", "pino", "commander"];

test("erp: depends on shared, web, fastify, pino and commander only, and imports nothing else", () => {
  const dir = join(import.meta.dirname, "..");
  const { problems, imports } = packageImportProblems(dir, (name) => !ALLOWED.includes(name));
  assert.ok(imports > 5, "the scan found the imports");
  assert.deepEqual(problems, []);
  const manifest = JSON.parse(readFileSync(join(dir, "package.json"), "utf8")) as { dependencies: Record<string, string> };
  assert.deepEqual(Object.keys(manifest.dependencies).sort(), [...ALLOWED].sort());
});
