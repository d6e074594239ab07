#!/usr/bin/env node
// The compiled bundle when `npm run build` made one (packages/cli/dist), else the TypeScript sources through
// tsx (development). BOXCERT_FROM_SOURCE=1 runs the sources even when a bundle is there.
import { existsSync } from "node:fs";

const compiled = new URL("../dist/boxcert.js", import.meta.url);
if (process.env.BOXCERT_FROM_SOURCE !== "1" && existsSync(compiled)) {
  await import(compiled.href);
} else {
  const { register } = await import("tsx/esm/api");
  register();
  await import("../src/main.ts");
}
