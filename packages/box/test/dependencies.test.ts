/**
 * The box installs and runs without the issuer's dependencies: its package lists none of them, and no
 * module of the box (or of the shared module it uses) imports anything its package does not list.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, readdirSync } from "node:fs";
import { builtinModules } from "node:module";
import { join } from "node:path";

const FORBIDDEN = ["better-sqlite3", "pg", "kysely", "acme-client", "@boxcert/issuer", "@boxcert/admin"];
const root = join(import.meta.dirname, "../..");

function importsOf(dir: string): Array<{ file: string; specifier: string }> {
  const found: Array<{ file: string; specifier: string }> = [];
  for (const file of readdirSync(dir, { recursive: true }) as string[]) {
    if (!file.endsWith(".ts")) continue;
    const text = readFileSync(join(dir, file), "utf8");
    for (const match of text.matchAll(/(?:from\s+|import\s*\(\s*|import\s+)["']([^"']+)["']/g)) found.push({ file, specifier: match[1]! });
  }
  return found;
}

function packageName(specifier: string): string {
  return specifier.startsWith("@") ? specifier.split("/").slice(0, 2).join("/") : specifier.split("/")[0]!;
}

for (const pkg of ["box", "shared"]) {
  test(`${pkg}: imports only what its package lists, and none of the issuer's dependencies`, () => {
    const manifest = JSON.parse(readFileSync(join(root, pkg, "package.json"), "utf8")) as { dependencies?: Record<string, string> };
    const listed = new Set(Object.keys(manifest.dependencies ?? {}));
    for (const name of FORBIDDEN) assert.ok(!listed.has(name), `${pkg}/package.json lists ${name}`);
    const imports = importsOf(join(root, pkg, "src"));
    assert.ok(imports.length > 5, "the scan found the imports");
    for (const { file, specifier } of imports) {
      if (specifier.startsWith(".") || specifier.startsWith("node:") || builtinModules.includes(specifier)) continue;
      const name = packageName(specifier);
      assert.ok(listed.has(name), `${pkg}/src/${file} imports ${specifier}, which ${pkg}/package.json does not list`);
      assert.ok(!FORBIDDEN.includes(name), `${pkg}/src/${file} imports ${specifier}`);
    }
  });
}
