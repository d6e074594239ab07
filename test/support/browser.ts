/**
 * A real browser for system tests: Debian's /usr/bin/chromium driven by playwright-core, headless, in a
 * fresh profile and a fresh HOME whose NSS database trusts the test's root (certutil), and with the
 * zone's names mapped to 127.0.0.1 (--host-resolver-rules), so the box's HTTPS address opens with a
 * certificate Chromium validates for real. No certificate check is switched off.
 */
import { execFile } from "node:child_process";
import { existsSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { chromium, type BrowserContext } from "playwright-core";
import { tempDir } from "./processes.ts";

const run = promisify(execFile);

export const CHROMIUM = "/usr/bin/chromium";

export const CHROMIUM_FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

export interface TestBrowser {
  context: BrowserContext;
  profile: string;
  close(): Promise<void>;
}

/** Adds a root to the NSS database Chromium reads at `$HOME/.pki/nssdb`. */
export async function trustRoot(home: string, rootPem: string | readonly string[]): Promise<void> {
  const db = join(home, ".pki", "nssdb");
  mkdirSync(db, { recursive: true, mode: 0o700 });
  await run("certutil", ["-d", `sql:${db}`, "-N", "--empty-password"]);
  const files = typeof rootPem === "string" ? [rootPem] : rootPem;
  for (const [i, file] of files.entries()) await run("certutil", ["-d", `sql:${db}`, "-A", "-t", "C,,", "-n", `boxcert test root ${i + 1}`, "-i", file]);
}

/**
 * Starts Chromium. Fails (never skips) when chromium or certutil is missing: scripts/test.sh installs them.
 */
/**
 * A script that runs Chromium inside a network namespace (the shop's `pos`): playwright talks to it over
 * the pipe it inherits, and its DNS is the namespace's resolv.conf, the shop router's.
 */
function chromiumIn(namespace: string): string {
  const script = join(tempDir("boxcert-chromium-netns-"), "chromium");
  writeFileSync(script, `#!/bin/sh\nexec ip netns exec ${namespace} ${CHROMIUM} "$@"\n`, { mode: 0o755 });
  return script;
}

/**
 * `zone`: map the zone's names to 127.0.0.1 (loopback tests). `namespace`: run Chromium in that network
 * namespace, resolving names as the machines there do (the shop tests); `args`: more flags.
 */
export async function launchBrowser(options: { zone?: string; rootPem: string | readonly string[]; namespace?: string; args?: string[] }): Promise<TestBrowser> {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install chromium (scripts/test.sh does it)`);
  const home = tempDir("boxcert-browser-home-");
  await trustRoot(home, options.rootPem).catch((err: Error) => {
    throw new Error(`certutil could not make the browser's NSS database (apt-get install libnss3-tools): ${err.message}`);
  });
  const profile = tempDir("boxcert-browser-profile-");
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: options.namespace ? chromiumIn(options.namespace) : CHROMIUM,
    headless: true,
    args: [...CHROMIUM_FLAGS, ...(options.zone ? [`--host-resolver-rules=MAP *.${options.zone} 127.0.0.1`] : []), ...(options.args ?? [])],
    env: { ...process.env, HOME: home },
    acceptDownloads: true,
    viewport: { width: 1100, height: 900 },
    locale: "en-US",
  });
  context.setDefaultTimeout(15_000);
  return {
    context,
    profile,
    close: async () => {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
      rmSync(home, { recursive: true, force: true });
    },
  };
}
