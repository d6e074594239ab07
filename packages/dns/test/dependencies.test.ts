/**
 * The dns component installs and runs without the issuer: its package lists the store and the shared
 * module, not @boxcert/issuer, and no module of it imports the issuer or the issuer's HTTP, ACME and X.509
 * dependencies, nor anything its package does not list.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, readdirSync } from "node:fs";
import { builtinModules } from "node:module";
import { join } from "node:path";

const FORBIDDEN = ["@boxcert/issuer", "@boxcert/admin", "fastify", "acme-client", "axios"];
const FORBIDDEN_SCOPES = ["@peculiar/"];
const dnsRoot = join(import.meta.dirname, "..");

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

function forbidden(name: string): boolean {
  return FORBIDDEN.includes(name) || FORBIDDEN_SCOPES.some((scope) => name.startsWith(scope));
}

test("dns: imports only what its package lists, and nothing of the issuer", () => {
  const manifest = JSON.parse(readFileSync(join(dnsRoot, "package.json"), "utf8")) as { dependencies?: Record<string, string> };
  const listed = new Set(Object.keys(manifest.dependencies ?? {}));
  for (const name of listed) assert.ok(!forbidden(name), `dns/package.json lists ${name}`);
  const imports = importsOf(join(dnsRoot, "src"));
  assert.ok(imports.length > 5, "the scan found the imports");
  for (const { file, specifier } of imports) {
    if (specifier.startsWith(".") || specifier.startsWith("node:") || builtinModules.includes(specifier)) continue;
    const name = packageName(specifier);
    assert.ok(!forbidden(name), `dns/src/${file} imports ${specifier}`);
    assert.ok(listed.has(name), `dns/src/${file} imports ${specifier}, which dns/package.json does not list`);
  }
});
