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
