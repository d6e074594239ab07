/**
 * This package's files read at run time (static/, package.json), from the package folder. The build
 * (scripts/build.ts) replaces this module by one that holds the same files' contents.
 */
import { join } from "node:path";
import { packageFileReader } from "@boxcert/shared";

export const packageFile = packageFileReader(join(import.meta.dirname, ".."));
