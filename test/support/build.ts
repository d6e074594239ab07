/**
 * The compiled programs (`npm run build`) for the tests that run them. scripts/test.sh builds once before the
 * suite, so the test files running side by side never rebuild under each other (a rebuild replaces the
 * lazily loaded chunks a running box may still need); a test file run on its own builds when the bundles are
 * missing or older than a source.
 */
import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { ROOT } from "./processes.ts";

const BUNDLES = ["packages/cli/dist/boxcert.js", "packages/box/dist/boxcert-box.js"].map((file) => join(ROOT, file));

function newestSource(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestSource(path) : statSync(path).mtimeMs);
  }
  return newest;
}

export function ensureBuilt(): void {
  const sources = [join(ROOT, "scripts/build.ts"), ...readdirSync(join(ROOT, "packages")).flatMap((pkg) => ["src", "static", "package.json"].map((part) => join(ROOT, "packages", pkg, part)))];
  const newest = Math.max(...sources.filter((path) => existsSync(path)).map((path) => (statSync(path).isDirectory() ? newestSource(path) : statSync(path).mtimeMs)));
  const built = BUNDLES.every((file) => existsSync(file) && statSync(file).mtimeMs >= newest);
  if (!built) execFileSync(process.execPath, ["--import", "tsx", join(ROOT, "scripts/build.ts")], { cwd: ROOT, stdio: "pipe" });
}
