/**
 * Files a package reads at run time (the pages' stylesheets and scripts, its package.json), by their path in
 * the package. Each package that has some holds a `src/package-files.ts` made with this reader; from the
 * sources the files are read from the package folder, and the build (scripts/build.ts) replaces that module
 * by one that holds their contents, so a bundle needs no file beside it and cannot be separated from them.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";

export type PackageFileReader = (path: string) => Buffer;

export function packageFileReader(packageRoot: string): PackageFileReader {
  return (path) => readFileSync(join(packageRoot, path));
}
