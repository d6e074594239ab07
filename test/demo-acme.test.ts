/**
 * `npm start -- --dns-listen ... --acme-directory ... --acme-ca-bundle ... --acme-root ...` with Debian's
 * Pebble: the demo's box gets its certificate from Pebble through the demo's own dns, and the printed curl
 * line verifies it against Pebble's root. Without --acme-root, the demo says why there is no root.
 */
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { boxcert, freePort, startBoxcert, tempDir, type Proc } from "./support/processes.ts";
import { startPebble, type StartedPebble } from "./support/pebble.ts";

const stops: Array<() => Promise<void>> = [];
after(async () => {
  for (const stop of stops.reverse()) await stop();
});

function printed(proc: Proc): Record<string, string> {
  return Object.fromEntries(
    proc.output().split("\n").filter((l) => /^(homepage|https|ca|root|curl|dig): /.test(l)).map((l) => [l.slice(0, l.indexOf(":")), l.slice(l.indexOf(": ") + 2)]),
  );
}

async function demo(pebble: StartedPebble, dnsPort: number, extra: string[]): Promise<Proc> {
  const ports = ["--issuer-port", String(await freePort()), "--http-port", String(await freePort()), "--https-port", String(await freePort())];
  const args = ["demo", "--data-dir", tempDir("boxcert-demo-acme-"), ...ports, "--dns-listen", `127.0.0.1:${dnsPort}`, "--acme-directory", pebble.directoryUrl, "--acme-ca-bundle", pebble.tls.ca, ...extra];
  const proc = await startBoxcert(args, (out) => /^dig: /m.test(out), 90_000);
  stops.push(() => proc.stop());
  return proc;
}

test("the demo with Pebble: the printed curl line verifies the box against Pebble's root", async () => {
  const dnsPort = await freePort();
  const pebble = await startPebble({ dnsServer: `127.0.0.1:${dnsPort}` });
  stops.push(() => pebble.stop());
  const rootFile = join(tempDir("boxcert-pebble-root-"), "pebble-root.pem");
  writeFileSync(rootFile, pebble.rootPem);

  const proc = await demo(pebble, dnsPort, ["--acme-root", rootFile]);
  const lines = printed(proc);
  assert.match(lines.ca!, /ACME, DNS-01 through 127\.0\.0\.1:\d+/);
  assert.equal(lines.root, rootFile);
  const curl = lines.curl!.split(" ");
  const page = execFileSync(curl[0]!, [...curl.slice(1), "-sS", "--fail"]).toString();
  assert.match(page, /<h1>/);
  await proc.stop();

  // Without --acme-root: the demo says why its curl line has no root (and that line does not verify).
  const second = await demo(pebble, dnsPort, []);
  const without = printed(second);
  assert.match(without.root!, /not given: ACME chains do not carry the CA's root; pass --acme-root FILE/);
  assert.match(without.curl!, /add --cacert with the CA's root/);
});

test("the demo refuses --acme-directory with a dns port the CA cannot know", async () => {
  const result = await boxcert(["demo", "--data-dir", tempDir("boxcert-demo-acme-"), "--issuer-port", String(await freePort()), "--acme-directory", "https://127.0.0.1:1/dir"]);
  assert.notEqual(result.code, 0);
  assert.match(result.stderr, /--acme-directory needs --dns-listen HOST:PORT with a fixed port/);
});
