/**
 * What an idle box does not load: @peculiar/x509 (and its ASN.1 stack) is loaded only when the box makes a
 * CSR (csr.ts). Checked in a fresh process: the box's whole module graph, then one CSR.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);
const SRC = join(import.meta.dirname, "..", "src");

const PROBE = `
import { createRequire } from "node:module";
const cache = createRequire(import.meta.url).cache;
const loaded = () => Object.keys(cache).some((file) => file.includes("@peculiar"));
await import(${JSON.stringify(join(SRC, "index.ts"))});
const atStart = loaded();
const { createCsr } = await import(${JSON.stringify(join(SRC, "certificate", "csr.ts"))});
const { newTlsKey } = await import(${JSON.stringify(join(SRC, "certificate", "tls-key.ts"))});
const pem = await createCsr(newTlsKey(), ["a.example.test"]);
console.log(JSON.stringify({ atStart, afterCsr: loaded(), csr: pem.startsWith("-----BEGIN CERTIFICATE REQUEST-----") }));
`;

test("an idle box has not loaded @peculiar/x509; its first CSR loads it", async () => {
  const { stdout } = await run(process.execPath, ["--import", "tsx", "--input-type=module", "-e", PROBE], { cwd: join(SRC, "..") });
  assert.deepEqual(JSON.parse(stdout.trim().split("\n").at(-1) as string), { atStart: false, afterCsr: true, csr: true });
});

/** In a fresh process: the CSR for the key in KEY_FILE and NAMES through csrFor(CSR_FILE), and whether x509 got loaded. */
const CSR_PROBE = `
import { createRequire } from "node:module";
import { readFileSync } from "node:fs";
const cache = createRequire(import.meta.url).cache;
const { csrFor } = await import(${JSON.stringify(join(SRC, "certificate", "csr.ts"))});
const { tlsKeyFromPem } = await import(${JSON.stringify(join(SRC, "certificate", "tls-key.ts"))});
const [keyFile, csrFile, names] = process.argv.slice(1);
const csr = await csrFor(csrFile, tlsKeyFromPem(readFileSync(keyFile, "utf8")), names.split(","));
console.log(JSON.stringify({ csr, loaded: Object.keys(cache).some((file) => file.includes("@peculiar")) }));
`;

test("a refresh reuses the CSR made for the same key and names (x509 not loaded); other names or a broken file make a new one", async () => {
  const { mkdtempSync, writeFileSync, readFileSync } = await import("node:fs");
  const { tmpdir } = await import("node:os");
  const { newTlsKey } = await import("../src/certificate/tls-key.ts");
  const dir = mkdtempSync(join(tmpdir(), "boxcert-csr-"));
  const keyFile = join(dir, "key.pem");
  const csrFile = join(dir, "https.csr.json");
  writeFileSync(keyFile, newTlsKey().pem);
  const probe = async (names: string) => {
    const { stdout } = await run(process.execPath, ["--import", "tsx", "--input-type=module", "-e", CSR_PROBE, keyFile, csrFile, names], { cwd: join(SRC, "..") });
    return JSON.parse(stdout.trim().split("\n").at(-1) as string) as { csr: string; loaded: boolean };
  };
  const first = await probe("a.example.test,*.a.example.test");
  assert.equal(first.loaded, true, "the first CSR is made with x509");
  assert.match(first.csr, /^-----BEGIN CERTIFICATE REQUEST-----/);
  const again = await probe("a.example.test,*.a.example.test");
  assert.deepEqual(again, { csr: first.csr, loaded: false }, "the same key and names: the saved CSR, x509 never loaded");
  const other = await probe("b.example.test");
  assert.equal(other.loaded, true);
  assert.notEqual(other.csr, first.csr, "other names: a new CSR");
  assert.deepEqual((JSON.parse(readFileSync(csrFile, "utf8")) as { names: string[] }).names, ["b.example.test"], "the file now holds the new one");
  writeFileSync(csrFile, "{ not json");
  const repaired = await probe("b.example.test");
  assert.equal(repaired.loaded, true, "a broken file: a new CSR");
  assert.doesNotThrow(() => JSON.parse(readFileSync(csrFile, "utf8")));
});
