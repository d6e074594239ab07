/**
 * The box installs and runs without the issuer's dependencies: its package lists none of them, and no
 * module of the box (or of the shared module it uses) imports anything its package does not list.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { packageImportProblems } from "../../../test/support/package-imports.ts";

const FORBIDDEN = ["better-sqlite3", "pg", "kysely", "acme-client", "@boxcert/issuer", "@boxcert/admin", "@boxcert/store"];

for (const pkg of ["box", "shared"]) {
  test(`${pkg}: imports only what its package lists, and none of the issuer's dependencies`, () => {
    const { problems, imports } = packageImportProblems(join(import.meta.dirname, "../..", pkg), (name) => FORBIDDEN.includes(name));
    assert.ok(imports > 5, "the scan found the imports");
    assert.deepEqual(problems, []);
  });
}
