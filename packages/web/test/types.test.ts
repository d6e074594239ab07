/**
 * index.d.ts is written by hand beside a JavaScript module (browsers load it as it is; no build step).
 * tsc checks, through this file, that the module's JSDoc types satisfy the declarations and that the
 * declarations accept no argument the module does not; the test checks the exports at run time.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as js from "../src/boxcert-web.js";
import type * as declared from "@boxcert/web";

// The module provides everything the declarations promise, with compatible types.
const asDeclared: typeof declared = js;

type Fn = (...args: never[]) => unknown;
/** true when every argument list G accepts, F accepts too. */
type AcceptsAll<F extends Fn, G extends Fn> = Parameters<G> extends Parameters<F> ? true : false;
const argumentsAgree: [
  AcceptsAll<typeof js.boxClient, typeof declared.boxClient>,
  AcceptsAll<typeof js.diagnose, typeof declared.diagnose>,
  AcceptsAll<typeof js.describe, typeof declared.describe>,
  AcceptsAll<typeof js.certificateProblem, typeof declared.certificateProblem>,
] = [true, true, true, true];

test("the module exports what index.d.ts declares, and nothing else", () => {
  assert.deepEqual(Object.keys(asDeclared).sort(), [
    "BoxUnreachableError", "LANGUAGES", "addressSpace", "boxClient", "certificateProblem", "describe", "diagnose", "isMixedContent", "zoneOf",
  ]);
  assert.deepEqual(argumentsAgree, [true, true, true, true]);
});
