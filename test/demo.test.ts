/**
 * `npm start` as a user runs it: the demo prints its lines, the printed curl line verifies the box's HTTPS,
 * Ctrl-C stops it cleanly, and a second start reuses the data (same label, no new certificate).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { freePort, startBoxcert, tempDir } from "./support/processes.ts";
import { admin } from "./support/system.ts";

async function demo(dataDir: string): Promise<{ lines: Record<string, string>; stop(): Promise<number | null> }> {
  const ports = ["--issuer-port", String(await freePort()), "--http-port", String(await freePort()), "--https-port", String(await freePort())];
  const proc = await startBoxcert(["demo", "--data-dir", dataDir, ...ports], (out) => /^dig: /m.test(out), 90_000);
  const lines = Object.fromEntries(
    proc.output().split("\n").filter((l) => /^(homepage|https|root|curl|dig): /.test(l)).map((l) => [l.slice(0, l.indexOf(":")), l.slice(l.indexOf(": ") + 2)]),
  );
  return {
    lines,
    stop: () =>
      new Promise((resolve) => {
        proc.child.once("exit", (code) => resolve(code));
        proc.child.kill("SIGINT");
      }),
  };
}

test("the demo prints working lines, stops on Ctrl-C, and reuses its data", async () => {
  const dataDir = tempDir("boxcert-demo-");
  const first = await demo(dataDir);
  assert.match(first.lines.homepage!, /^http:\/\/127\.0\.0\.1:\d+\/$/);
  assert.match(first.lines.https!, /^https:\/\/127-0-0-1\.[a-z2-7]{16}\.boxcert\.test:\d+\/$/);
  assert.match(first.lines.root!, /root\.pem$/);
  const curl = first.lines.curl!.split(" ");
  assert.equal(curl[0], "curl");
  assert.ok(curl.includes("--cacert") && curl.includes("--resolve"));
  const page = execFileSync(curl[0]!, [...curl.slice(1), "-sS", "--fail"]).toString();
  assert.match(page, /<h1>/);
  // The printed dig line resolves the box's HTTPS name to its address through boxcert dns.
  const dig = first.lines.dig!.split(" ");
  assert.equal(dig[0], "dig");
  const resolved = execFileSync(dig[0]!, [...dig.slice(1), "+short"]).toString().trim();
  assert.equal(resolved, "127.0.0.1");
  assert.equal(await first.stop(), 0);

  const second = await demo(dataDir);
  assert.equal(new URL(second.lines.https!).hostname, new URL(first.lines.https!).hostname, "same label");
  const certificates = (await admin(join(dataDir, "issuer", "registry.sqlite"), "cert", "list")) as unknown[];
  assert.equal(certificates.length, 1, "no new certificate");
  assert.equal(await second.stop(), 0);
});
