/**
 * What a package's sources import, checked against what its package.json lists and what it must never
 * pull in (the box and dns install without the issuer's dependencies). Used by the packages' own tests.
 */
import { readFileSync, readdirSync } from "node:fs";
import { builtinModules } from "node:module";
import { join } from "node:path";

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

/**
 * Every problem found in the package at `packageDir` (its folder name in messages): a forbidden
 * dependency listed or imported, or an import its package.json does not list. Also how many imports the
 * scan saw, so a test can tell an empty scan from a clean one.
 */
export function packageImportProblems(packageDir: string, forbidden: (name: string) => boolean): { problems: string[]; imports: number } {
  const pkg = packageDir.split("/").at(-1)!;
  const manifest = JSON.parse(readFileSync(join(packageDir, "package.json"), "utf8")) as { dependencies?: Record<string, string> };
  const listed = new Set(Object.keys(manifest.dependencies ?? {}));
  const problems = [...listed].filter(forbidden).map((name) => `${pkg}/package.json lists ${name}`);
  const imports = importsOf(join(packageDir, "src"));
  for (const { file, specifier } of imports) {
    if (specifier.startsWith(".") || specifier.startsWith("node:") || builtinModules.includes(specifier)) continue;
    const name = packageName(specifier);
    if (forbidden(name)) problems.push(`${pkg}/src/${file} imports ${specifier}`);
    else if (!listed.has(name)) problems.push(`${pkg}/src/${file} imports ${specifier}, which ${pkg}/package.json does not list`);
  }
  return { problems, imports: imports.length };
}
