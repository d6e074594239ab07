/** `boxcert box ...` as a real process (bin/boxcert-box.js runs the same commands as the main binary). */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { readFile, writeFile, mkdir } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { join } from "node:path";
import { tempDir } from "./helpers/fixture.ts";
import { startTestIssuer } from "./helpers/test-issuer.ts";
import { startTestDatabase } from "./helpers/test-database.ts";
import { parseCheckInterval } from "../src/cli.ts";
import { formatConnectionToken } from "../src/config.ts";

const BIN = fileURLToPath(new URL("../bin/boxcert-box.js", import.meta.url));

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(args: string[]): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (c: Buffer) => (stdout += c));
    child.stderr.on("data", (c: Buffer) => (stderr += c));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

test("connect and credential write the configuration; the code is never printed", async (t) => {
  const temp = await tempDir();
  t.after(temp.cleanup);
  const dir = join(temp.dir, "box");
  const connected = await run(["box", "connect", "--data-dir", dir, "--server", "https://erp.example", "--db-uuid", "U-1", "--enterprise-code", "CODE-XYZ"]);
  assert.equal(connected.code, 0, connected.stderr);
  assert.ok(!connected.stdout.includes("CODE-XYZ"));
  const config = JSON.parse(await readFile(join(dir, "config.json"), "utf8")) as Record<string, unknown>;
  assert.equal(config.server, "https://erp.example/");
  assert.equal(config.dbUuid, "U-1");
  assert.equal(config.enterpriseCode, "CODE-XYZ");
  assert.match(String(config.identifier), /^[0-9a-f-]{36}$/);

  const set = await run(["box", "--data-dir", dir, "credential", "--db-uuid", "U-2", "--enterprise-code", "C2"]);
  assert.equal(set.code, 0, set.stderr);
  const cleared = await run(["box", "credential", "--data-dir", dir, "--clear"]);
  assert.equal(cleared.code, 0, cleared.stderr);
  const after = JSON.parse(await readFile(join(dir, "config.json"), "utf8")) as Record<string, unknown>;
  assert.equal(after.dbUuid, null);
  assert.equal(after.enterpriseCode, null);
  assert.equal(after.server, "https://erp.example/");
  assert.equal(after.identifier, config.identifier);

  // A connection token from the database's IoT page is the same as the three values.
  const token = formatConnectionToken({ server: "https://erp2.example", dbUuid: "U-3", enterpriseCode: "CODE-T" });
  const byToken = await run(["box", "connect", "--data-dir", dir, "--token", token]);
  assert.equal(byToken.code, 0, byToken.stderr);
  assert.ok(!byToken.stdout.includes("CODE-T"));
  const third = JSON.parse(await readFile(join(dir, "config.json"), "utf8")) as Record<string, unknown>;
  assert.deepEqual([third.server, third.dbUuid, third.enterpriseCode], ["https://erp2.example/", "U-3", "CODE-T"]);

  // A token's pairing secret is kept for the registration, never printed; a connect without one drops it.
  const secret = "pAiRiNg-SeCrEt-0123456789abcdefghijklmnopq";
  const paired = await run(["box", "connect", "--data-dir", dir, "--token", formatConnectionToken({ server: "https://erp2.example", dbUuid: "U-3", enterpriseCode: "CODE-T", pairingSecret: secret })]);
  assert.equal(paired.code, 0, paired.stderr);
  assert.ok(!paired.stdout.includes(secret) && !paired.stderr.includes(secret));
  assert.match(paired.stdout, /registers with the database/);
  assert.equal((JSON.parse(await readFile(join(dir, "config.json"), "utf8")) as Record<string, unknown>).pairingSecret, secret);
  assert.equal((await run(["box", "connect", "--data-dir", dir, "--server", "https://erp3.example", "--db-uuid", "U-4", "--enterprise-code", "C-4"])).code, 0);
  assert.equal((JSON.parse(await readFile(join(dir, "config.json"), "utf8")) as Record<string, unknown>).pairingSecret, null);
});

test("connect --token with a pairing secret, then the agent registers with the database, whose TLS it verifies with --database-ca", async (t) => {
  const temp = await tempDir();
  const issuer = await startTestIssuer();
  const database = await startTestDatabase({ tls: true });
  let stopBox = async (): Promise<void> => undefined;
  // One hook, in this order: the box stops before its data folder is removed (it writes its log until it
  // exits), whatever order node runs separate hooks in.
  t.after(async () => {
    await stopBox();
    await Promise.allSettled([issuer.close(), database.close()]);
    await temp.cleanup();
  });
  const caFile = join(temp.dir, "database-ca.pem");
  await writeFile(caFile, database.ca?.pem ?? "");
  const dir = join(temp.dir, "box");
  const token = formatConnectionToken({ server: database.url, dbUuid: "U-1", enterpriseCode: "CODE-XYZ", pairingSecret: database.issuePairing() });
  assert.equal((await run(["box", "connect", "--data-dir", dir, "--token", token])).code, 0);
  const args = ["box", "--data-dir", dir, "--issuer", issuer.url, "--database-ca", caFile, "--http-port", "0", "--https-port", "0", "--listen-host", "127.0.0.1", "--ip", "127.0.0.1"];
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ["ignore", "pipe", "pipe"] });
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  stopBox = async () => {
    child.kill("SIGTERM");
    await exited;
  };
  for (let i = 0; i < 500 && database.registrations.length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 20));
  assert.deepEqual(database.registrations.map((r) => r.status), [200]);
  assert.ok(typeof database.registrations[0]?.body.pairing === "string");
});

test("bad flags: one clear line and a non-zero exit", async (t) => {
  const temp = await tempDir();
  t.after(temp.cleanup);
  const cases: [string[], RegExp][] = [
    [["box", "--issuer", "http://127.0.0.1:1"], /required option '--data-dir <dir>'/],
    [["box", "--data-dir", temp.dir], /required option '--issuer <url>'/],
    [["box", "--data-dir", temp.dir, "--issuer", "ftp://x"], /--issuer must be an https:\/\//],
    [["box", "--data-dir", temp.dir, "--issuer", "https://vendor:hunter2@issuer.example"], /--issuer must not contain a user name or password/],
    [["box", "--data-dir", temp.dir, "--issuer", "https://issuer.example/?key=hunter2"], /--issuer must not contain a query/],
    [["box", "connect", "--data-dir", temp.dir, "--server", "https://erp.example/?apikey=hunter2", "--db-uuid", "U", "--enterprise-code", "C"], /server URL must not contain a query/],
    [["box", "--data-dir", temp.dir, "--issuer", "http://x", "--http-port", "abc"], /--http-port .* invalid/],
    [["box", "--data-dir", temp.dir, "--issuer", "http://x", "--ip", "not-an-ip"], /--ip is not an IP address/],
    [["box", "--data-dir", temp.dir, "--issuer", "http://x", "--log-level", "loud"], /log level must be one of/],
    [["box", "--data-dir", temp.dir, "--issuer", "http://x", "--issuer-ca", "/no/such/file"], /--issuer-ca \/no\/such\/file/],
    [["box", "--data-dir", temp.dir, "--issuer", "http://x", "--database-ca", "/no/such/file"], /--database-ca \/no\/such\/file/],
    [["box", "--data-dir", temp.dir, "--issuer", "http://x", "--database-ca", BIN], /--database-ca .*: no PEM certificate in the file/],
    [["box", "connect", "--data-dir", temp.dir, "--token", formatConnectionToken({ server: "https://erp.example", dbUuid: "U", enterpriseCode: "C", pairingSecret: "hunter2" })], /pairing secret is not valid/],
    [["box", "--data-dir", temp.dir, "--issuer", "http://x", "--check-interval", "9s"], /--check-interval .* must be at least 10s/],
    [["box", "--data-dir", temp.dir, "--issuer", "http://x", "--check-interval", "6"], /--check-interval .* must be a duration/],
    [["box", "connect", "--data-dir", temp.dir, "--server", "erp.example", "--db-uuid", "U", "--enterprise-code", "C"], /server URL/],
    [["box", "connect", "--data-dir", temp.dir, "--server", "https://erp.example"], /give --token, or all of --server, --db-uuid and --enterprise-code/],
    [["box", "connect", "--data-dir", temp.dir, "--token", "not-a-token"], /a connection token starts with "boxcert1\."/],
    [["box", "connect", "--data-dir", temp.dir, "--token", "boxcert1.e30", "--server", "https://erp.example"], /--token cannot be combined/],
    [["box", "--data-dir", temp.dir, "--issuer", "http://x", "--resolver", "dns.example"], /--resolver .*must be an IP address/],
    [["box", "--data-dir", temp.dir, "--issuer", "http://x", "--zone-dns", "127.0.0.1"], /--zone-dns .*needs a port/],
    [["box", "credential", "--data-dir", temp.dir, "--db-uuid", "U"], /give both --db-uuid and --enterprise-code, or --clear/],
    [["box", "credential", "--data-dir", temp.dir, "--clear", "--db-uuid", "U"], /--clear cannot be combined/],
  ];
  const results = await Promise.all(cases.map(([args]) => run(args)));
  results.forEach((result, i) => {
    const [args, pattern] = cases[i] as [string[], RegExp];
    assert.notEqual(result.code, 0, args.join(" "));
    assert.match(result.stderr, pattern, args.join(" "));
    assert.equal(result.stderr.trim().split("\n").length, 1, `more than one line for ${args.join(" ")}: ${result.stderr}`);
    assert.ok(!result.stderr.includes("hunter2"), `the secret is repeated: ${result.stderr}`);
  });
});

test("--check-interval takes a duration of at least 10 s", () => {
  assert.equal(parseCheckInterval("6h"), 6 * 3600_000);
  assert.equal(parseCheckInterval("10s"), 10_000);
  assert.equal(parseCheckInterval("1.5m"), 90_000);
  assert.equal(parseCheckInterval("1d"), 86_400_000);
  for (const bad of ["9s", "9999ms", "0s", "6", "h", "-1h", "25d"]) assert.throws(() => parseCheckInterval(bad), bad);
});

test("a config file that is not JSON stops the agent with an error naming it", async (t) => {
  const temp = await tempDir();
  t.after(temp.cleanup);
  await mkdir(temp.dir, { recursive: true });
  await writeFile(join(temp.dir, "config.json"), "{oops");
  const result = await run(["box", "--data-dir", temp.dir, "--issuer", "http://127.0.0.1:1", "--http-port", "0", "--https-port", "0"]);
  assert.equal(result.code, 1);
  assert.match(result.stderr, new RegExp(`${join(temp.dir, "config.json")}: not valid JSON`));
  assert.equal(await readFile(join(temp.dir, "config.json"), "utf8"), "{oops");
});

test("the agent runs, warns about an http:// issuer, and stops cleanly on SIGTERM", async (t) => {
  const temp = await tempDir();
  const issuer = await startTestIssuer();
  t.after(temp.cleanup);
  t.after(() => issuer.close());
  const args = ["box", "--data-dir", temp.dir, "--issuer", issuer.url, "--http-port", "0", "--https-port", "0", "--listen-host", "127.0.0.1", "--ip", "127.0.0.1", "--name", "till-3"];
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  const started = new Promise<string>((resolve, reject) => {
    child.stdout.on("data", (c: Buffer) => {
      stdout += c;
      const match = /box till-3 at (http:\/\/127\.0\.0\.1:\d+\/)/.exec(stdout);
      if (match) resolve(match[1] as string);
    });
    child.on("exit", (code) => reject(new Error(`exited ${code}: ${stdout}`)));
  });
  const url = await started;
  const status = (await (await fetch(`${url}api/status`)).json()) as { name: string; certificate: { errorCode: string } };
  assert.equal(status.name, "till-3");
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  child.kill("SIGTERM");
  assert.equal(await exited, 0);
  assert.match(stdout, /"event":"issuer_plaintext"/);
  assert.match(stdout, /"event":"stopped"/);
});
