/**
 * The npm package of the box (scripts/pack-box.ts) as a user installs it: `npm install -g` of the tarball
 * into an empty prefix with an empty cache, then the installed command, run by the machine's node, against
 * a real issuer.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { packBox } from "../scripts/pack-box.ts";
import { freePort, spawnProcess, StopWaiting, tempDir, waitFor, type Proc } from "./support/processes.ts";
import { customer, startIssuerProcess, type BoxStatus } from "./support/system.ts";

const run = promisify(execFile);

/** An environment without what the test runner or an `npm test` put there (tsx in NODE_OPTIONS, npm_config_*). */
function userEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(npm_|NODE_OPTIONS$)/i.test(k)));
  return { ...env, ...extra };
}

/** Every path below `dir` (relative), folders included. */
function tree(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: "utf8" });
}

test("npm install -g of the tarball installs the box alone, and the installed command gets a certificate and serves its homepage", async (t) => {
  const work = tempDir("boxcert-npm-");
  const procs: Proc[] = [];
  t.after(async () => {
    // The box before the issuer, both before their folders.
    for (const proc of procs.reverse()) await proc.stop();
    rmSync(work, { recursive: true, force: true });
  });

  const tarball = packBox(join(work, "out"));
  assert.match(tarball, /boxcert-box-\d+\.\d+\.\d+\.tgz$/);

  // A user's folder with the tarball, an empty npm cache, an empty prefix and no ~/.npmrc of the machine's.
  const prefix = join(work, "prefix");
  const cache = join(work, "cache");
  const userconfig = join(work, "npmrc");
  writeFileSync(userconfig, "");
  const installed = await run("npm", ["install", "-g", tarball, "--prefix", prefix, "--cache", cache, "--userconfig", userconfig, "--loglevel", "http"], {
    cwd: work,
    env: userEnv(),
  });
  const npmOutput = installed.stdout + installed.stderr;
  // The registry was reachable and not needed: npm logs every request it makes at this level.
  assert.doesNotMatch(npmOutput, /http fetch/, npmOutput);

  // Nothing but the package: no dependency beside it, none inside it, no native module anywhere.
  const modules = join(prefix, "lib", "node_modules");
  assert.deepEqual(readdirSync(modules), ["@boxcert"]);
  assert.deepEqual(readdirSync(join(modules, "@boxcert")), ["box"]);
  const files = tree(join(modules, "@boxcert", "box"));
  assert.ok(!files.some((f) => f.split("/").includes("node_modules")), files.join("\n"));
  assert.ok(!tree(prefix).some((f) => /better-sqlite3|\.node$/.test(f)), "a native module was installed");
  assert.ok(files.includes("THIRD-PARTY-LICENSES") && files.includes("README.md"), files.join("\n"));

  // The command npm linked, run as a user runs it (its #!/usr/bin/env node: the machine's node).
  const bin = join(prefix, "bin", "boxcert-box");
  const env = userEnv({ PATH: `${prefix}/bin:${process.env.PATH}` });
  const help = await run(bin, ["--help"], { env });
  assert.match(help.stdout, /Usage: boxcert-box/);
  assert.match(help.stdout, /box \[options\]/);
  const boxHelp = await run(bin, ["box", "--help"], { env });
  assert.match(boxHelp.stdout, /--data-dir <dir>/);
  assert.match(boxHelp.stdout, /--issuer <url>/);

  // Against a real issuer: connected, started, enrolled, certified (the CSR loads the lazily imported chunk).
  const issuer = await startIssuerProcess({ dir: join(work, "issuer") });
  procs.push(issuer.proc);
  const code = "NPM-PACKAGE-1";
  const dbUuid = await customer(issuer.store, code, "in_progress", 1);
  const dataDir = join(work, "box");
  await run(bin, ["box", "connect", "--data-dir", dataDir, "--server", "http://erp.test:8069", "--db-uuid", dbUuid, "--enterprise-code", code], { env });
  const httpPort = await freePort();
  const args = ["box", "--data-dir", dataDir, "--issuer", issuer.url, "--ip", "127.0.0.1", "--listen-host", "127.0.0.1", "--http-port", String(httpPort), "--https-port", String(await freePort())];
  const box = spawnProcess(bin, args, { env });
  procs.push(box);
  const url = `http://127.0.0.1:${httpPort}`;
  const status = await waitFor("the installed box's certificate", async () => {
    if (box.child.exitCode !== null) throw new StopWaiting(`the installed box exited with ${box.child.exitCode}:\n${box.output()}`);
    const s = (await (await fetch(`${url}/api/status`)).json()) as BoxStatus;
    return !s.checking && s.certificate.status === "ok" ? s : null;
  }, 60_000).catch((err: Error) => {
    throw new Error(`${err.message}\n${box.output().slice(-3000)}`);
  });
  assert.match(status.httpsUrl ?? "", /^https:\/\/127-0-0-1\.[a-z0-9]+\.boxcert\.test:\d+\/$/);

  const home = await fetch(`${url}/`);
  assert.equal(home.status, 200);
  assert.match(home.headers.get("content-type") ?? "", /text\/html/);
  assert.match(await home.text(), new RegExp(status.name));
});
