import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { BOX_ERROR_CODES, BOX_ERRORS, ISSUER_ERROR_CODES, ISSUER_ERRORS, REFUSAL_REASONS, formatErrorCode } from "../src/errors.ts";

const docs = readFileSync(new URL("../../../docs/errors.md", import.meta.url), "utf8");
/**
 * The six codes of the original product page that boxcert follows (its Italian documentation page "Certificato
 * HTTPS (IoT)", troubleshooting section), in the order it lists them. They are facts of the
 * contract, so this test holds them itself: the catalogue, its order and the docs are checked against them.
 */
const ORIGINAL_PAGE_CODES = [
  "ERR_IOT_HTTPS_CHECK_NO_SERVER",
  "ERR_IOT_HTTPS_CHECK_CERT_READ_EXCEPTION",
  "ERR_IOT_HTTPS_LOAD_NO_CREDENTIAL",
  "ERR_IOT_HTTPS_LOAD_REQUEST_EXCEPTION",
  "ERR_IOT_HTTPS_LOAD_REQUEST_STATUS",
  "ERR_IOT_HTTPS_LOAD_REQUEST_NO_RESULT",
];

test("the docs list every box error code and every refusal reason", () => {
  for (const code of BOX_ERROR_CODES) assert.ok(docs.includes("`" + code), `docs/errors.md misses ${code}`);
  for (const reason of REFUSAL_REASONS) assert.ok(docs.includes("`" + reason + "`"), `docs/errors.md misses ${reason}`);
});

test("the docs list every issuer error code with its status, one row each", () => {
  assert.ok(ISSUER_ERROR_CODES.length >= 13, "the catalogue has the issuer's codes");
  for (const code of ISSUER_ERROR_CODES) {
    const { status, meaning } = ISSUER_ERRORS[code];
    assert.ok(meaning.length > 10, code);
    assert.ok(docs.includes(`| ${status} | \`${code}\` |`), `docs/errors.md misses the row "| ${status} | \`${code}\` |"`);
  }
});

test("every box error code has a meaning and remedies", () => {
  for (const code of BOX_ERROR_CODES) {
    assert.ok(BOX_ERRORS[code].meaning.length > 10, code);
    assert.ok(BOX_ERRORS[code].remedies.length > 0, code);
  }
});

test("the six codes are exactly the original page's, in its order, and the docs name no other", () => {
  assert.deepEqual([...BOX_ERROR_CODES], ORIGINAL_PAGE_CODES);
  const inDocs = [...new Set(docs.match(/ERR_IOT_HTTPS_[A-Z_]+/g))].sort();
  assert.deepEqual(inDocs, [...ORIGINAL_PAGE_CODES].sort());
});

test("REQUEST_STATUS carries the status number, the others do not", () => {
  assert.equal(formatErrorCode("ERR_IOT_HTTPS_LOAD_REQUEST_STATUS", 404), "ERR_IOT_HTTPS_LOAD_REQUEST_STATUS 404");
  assert.equal(formatErrorCode("ERR_IOT_HTTPS_LOAD_NO_CREDENTIAL", 404), "ERR_IOT_HTTPS_LOAD_NO_CREDENTIAL");
});
