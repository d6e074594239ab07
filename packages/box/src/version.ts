/**
 * The box package's version (packages/box/package.json), which the box reports to its database
 * (database/registration.ts). Read from the file rather than written here twice: one place to bump.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";

function readVersion(): string {
  const pkg = JSON.parse(readFileSync(join(import.meta.dirname, "..", "package.json"), "utf8")) as { version?: unknown };
  if (typeof pkg.version !== "string" || pkg.version === "") throw new Error("packages/box/package.json has no version");
  return pkg.version;
}

export const BOX_VERSION = readVersion();
