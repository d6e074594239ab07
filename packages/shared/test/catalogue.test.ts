import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { BOX_ERROR_CODES, BOX_ERRORS, REFUSAL_REASONS, formatErrorCode } from "../src/errors.ts";

const docs = readFileSync(new URL("../../../docs/errors.md", import.meta.url), "utf8");
// The original page sits in shared/ beside the checkout (as in CI).
const seedUrl = new URL("../../../../shared/seed/https_certificate_iot.it.txt", import.meta.url);

test("the docs list every box error code and every refusal reason", () => {
  for (const code of BOX_ERROR_CODES) assert.ok(docs.includes("`" + code), `docs/errors.md misses ${code}`);
  for (const reason of REFUSAL_REASONS) assert.ok(docs.includes("`" + reason + "`"), `docs/errors.md misses ${reason}`);
});

test("every box error code has a meaning and remedies", () => {
  for (const code of BOX_ERROR_CODES) {
    assert.ok(BOX_ERRORS[code].meaning.length > 10, code);
    assert.ok(BOX_ERRORS[code].remedies.length > 0, code);
  }
});

test("the six codes are exactly the original page's", () => {
  const seed = readFileSync(seedUrl, "utf8");
  const found = [...new Set(seed.match(/ERR_IOT_HTTPS_[A-Z_]+/g))].sort();
  assert.deepEqual(found, [...BOX_ERROR_CODES].sort());
});

test("REQUEST_STATUS carries the status number, the others do not", () => {
  assert.equal(formatErrorCode("ERR_IOT_HTTPS_LOAD_REQUEST_STATUS", 404), "ERR_IOT_HTTPS_LOAD_REQUEST_STATUS 404");
  assert.equal(formatErrorCode("ERR_IOT_HTTPS_LOAD_NO_CREDENTIAL", 404), "ERR_IOT_HTTPS_LOAD_NO_CREDENTIAL");
});
