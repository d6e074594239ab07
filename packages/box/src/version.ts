/**
 * The box package's version (packages/box/package.json), which the box reports to its database
 * (database/registration.ts). Read from the file rather than written here twice: one place to bump.
 */
import { packageFile } from "./package-files.ts";

function readVersion(): string {
  const pkg = JSON.parse(packageFile("package.json").toString("utf8")) as { version?: unknown };
  if (typeof pkg.version !== "string" || pkg.version === "") throw new Error("packages/box/package.json has no version");
  return pkg.version;
}

export const BOX_VERSION = readVersion();
