/**
 * The dns component installs and runs without the issuer: its package lists the store and the shared
 * module, not @boxcert/issuer, and no module of it imports the issuer or the issuer's HTTP, ACME and X.509
 * dependencies, nor anything its package does not list.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { packageImportProblems } from "../../../test/support/package-imports.ts";

const FORBIDDEN = ["@boxcert/issuer", "@boxcert/admin", "fastify", "acme-client", "axios"];
const FORBIDDEN_SCOPES = ["@peculiar/"];

function forbidden(name: string): boolean {
  return FORBIDDEN.includes(name) || FORBIDDEN_SCOPES.some((scope) => name.startsWith(scope));
}

test("dns: imports only what its package lists, and nothing of the issuer", () => {
  const { problems, imports } = packageImportProblems(join(import.meta.dirname, ".."), forbidden);
  assert.ok(imports > 5, "the scan found the imports");
  assert.deepEqual(problems, []);
});
