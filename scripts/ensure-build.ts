/**
 * `npm run build`, when the bundles are missing or older than a file they are made from. The packaging
 * scripts (pack-box.ts, build-deb.ts) and the tests that run the compiled code call it.
 *
 * A build removes and rewrites packages/{box,cli}/dist, and the test files that call this run in parallel:
 * the check and the build run under an exclusive lock on build/.build.lock (flock(1), util-linux), so one
 * process builds while the others wait, then find the bundles fresh. flock releases the lock when its
 * process ends, however it ends.
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, statSync } from "node:fs";
import { join, resolve } from "node:path";

export const ROOT = resolve(import.meta.dirname, "..");
const SELF = import.meta.filename;
const LOCK = join(ROOT, "build", ".build.lock");

/** What scripts/build.ts writes last for each target (a build that stopped half-way lacks them). */
const OUTPUTS = ["packages/cli/dist/boxcert.js", "packages/cli/dist/THIRD-PARTY-LICENSES", "packages/box/dist/boxcert-box.js", "packages/box/dist/THIRD-PARTY-LICENSES"];

/** What the bundles are made from: every package's sources, static files and manifest, the libraries' versions, the build script. */
function inputs(): string[] {
  const files = [join(ROOT, "package-lock.json"), join(ROOT, "scripts/build.ts")];
  for (const pkg of readdirSync(join(ROOT, "packages"))) {
    const dir = join(ROOT, "packages", pkg);
    files.push(join(dir, "package.json"));
    for (const sub of ["src", "static"]) {
      const root = join(dir, sub);
      if (!existsSync(root)) continue;
      for (const name of readdirSync(root, { recursive: true, encoding: "utf8" })) {
        if (statSync(join(root, name)).isFile()) files.push(join(root, name));
      }
    }
  }
  return files;
}

export function buildIsStale(): boolean {
  const outputs = OUTPUTS.map((f) => join(ROOT, f));
  if (!outputs.every((f) => existsSync(f))) return true;
  const built = Math.min(...outputs.map((f) => statSync(f).mtimeMs));
  return inputs().some((f) => statSync(f).mtimeMs > built);
}

/** Builds when needed; returns once the bundles are fresh. */
export function ensureBuild(): void {
  if (!buildIsStale()) return;
  mkdirSync(join(ROOT, "build"), { recursive: true });
  // This file again, run under the lock: it checks again (another process may have built meanwhile).
  execFileSync("flock", [LOCK, process.execPath, "--import", "tsx", SELF], { cwd: ROOT, stdio: "inherit" });
}

if (process.argv[1] === SELF && buildIsStale()) {
  execFileSync(process.execPath, ["--import", "tsx", join(ROOT, "scripts/build.ts")], { cwd: ROOT, stdio: "inherit" });
}
