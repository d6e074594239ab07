/**
 * The repository stands alone: a clone with nothing beside it has everything it reads, imports and links.
 * Checks every tracked text file for references to files outside the checkout, and every relative link in
 * the docs for a file that exists.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { dirname, relative, resolve } from "node:path";
import { ROOT } from "./support/processes.ts";

const SELF = relative(ROOT, import.meta.filename);

function trackedFiles(): string[] {
  const out = execFileSync("git", ["ls-files", "-co", "--exclude-standard"], { cwd: ROOT, encoding: "utf8" });
  return out.split("\n").filter((f) => f !== "" && existsSync(resolve(ROOT, f)) && /\.(ts|js|mjs|md|sh|json|css|html)$|^\.ci\//.test(f));
}

function outside(fromFile: string, target: string): boolean {
  const path = resolve(ROOT, dirname(fromFile), target);
  const rel = relative(ROOT, path);
  return rel.startsWith("..") || resolve(path) === resolve(ROOT, "..");
}

test("no file points at the design notes or the original page kept outside the repository", () => {
  const pattern = new RegExp(["DESIGN", "STYLE", "FIELD-NOTES"].map((n) => `\\b${n}(\\.md)?\\b`).join("|") + "|shared/seed");
  const found: string[] = [];
  for (const file of trackedFiles()) {
    if (file === SELF || file === "package-lock.json") continue;
    readFileSync(resolve(ROOT, file), "utf8")
      .split("\n")
      .forEach((line, i) => {
        if (pattern.test(line)) found.push(`${file}:${i + 1}: ${line.trim().slice(0, 120)}`);
      });
  }
  assert.deepEqual(found, []);
});

test("no source imports or reads a path outside the checkout", () => {
  const specifier = /(?:from\s+|import\(\s*|new URL\(\s*|readFileSync\(\s*)["'](\.{1,2}\/[^"']+)["']/g;
  const found: string[] = [];
  for (const file of trackedFiles().filter((f) => /\.(ts|js|mjs)$/.test(f))) {
    for (const match of readFileSync(resolve(ROOT, file), "utf8").matchAll(specifier)) {
      if (outside(file, match[1]!)) found.push(`${file}: ${match[1]}`);
    }
  }
  assert.deepEqual(found, []);
});

test("every relative link in the docs leads to a file of the repository", () => {
  const link = /\]\((?!https?:|mailto:|#)([^)\s]+)\)/g;
  const broken: string[] = [];
  for (const file of trackedFiles().filter((f) => f.endsWith(".md"))) {
    for (const match of readFileSync(resolve(ROOT, file), "utf8").matchAll(link)) {
      const target = match[1]!.split("#")[0]!;
      if (target === "") continue;
      if (outside(file, target) || !existsSync(resolve(ROOT, dirname(file), target))) broken.push(`${file}: ${match[1]}`);
    }
  }
  assert.deepEqual(broken, []);
});
