/** `boxcert erp` as users run it: flag errors (one line, non-zero exit), a start over HTTPS, `duplicate`. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { boxcert, startBoxcert } from "../../../test/support/processes.ts";
import { testPki, tempDir } from "./helpers/fixture.ts";
import { httpsRequest } from "./helpers/https.ts";

test("bad flags: one clear line and a non-zero exit, never the secret", async (t) => {
  const temp = await tempDir();
  t.after(temp.cleanup);
  const { tls } = await testPki();
  await writeFile(join(temp.dir, "tls.pem"), tls.cert);
  await writeFile(join(temp.dir, "tls.key"), tls.key);
  await writeFile(join(temp.dir, "short-password"), "short\n");
  await writeFile(join(temp.dir, "password"), "a long enough password\n");
  await writeFile(join(temp.dir, "not-a-ca.pem"), "hello");
  const dir = join(temp.dir, "db");
  const base = ["erp", "--data-dir", dir, "--issuer", "https://issuer.example", "--listen", "127.0.0.1:0"];
  const tlsFlags = ["--tls-cert", join(temp.dir, "tls.pem"), "--tls-key", join(temp.dir, "tls.key")];
  const login = ["--password-file", join(temp.dir, "password")];
  const cases: Array<[string[], RegExp]> = [
    [["erp", "--issuer", "https://issuer.example", "--listen", "127.0.0.1:0", ...tlsFlags, ...login], /required option '--data-dir <dir>'/],
    [["erp", "--data-dir", dir, "--listen", "127.0.0.1:0", ...tlsFlags, ...login], /required option '--issuer <url>'/],
    [["erp", "--data-dir", dir, "--issuer", "https://issuer.example", ...tlsFlags, ...login], /required option '--listen <host:port>'/],
    [[...base, ...login], /give --tls-cert and --tls-key to serve HTTPS, or --plain-http/],
    [[...base, "--tls-cert", join(temp.dir, "tls.pem"), ...login], /--tls-cert and --tls-key go together/],
    [[...base, ...tlsFlags, "--plain-http", ...login], /--plain-http cannot be combined/],
    [[...base, "--tls-cert", join(temp.dir, "none.pem"), "--tls-key", join(temp.dir, "tls.key"), ...login], /--tls-cert .*none\.pem: ENOENT/],
    [[...base, ...tlsFlags], /give --password-file FILE .*or --insecure-no-login/],
    [[...base, ...tlsFlags, ...login, "--insecure-no-login"], /--password-file and --insecure-no-login exclude each other/],
    [[...base, ...tlsFlags, "--password-file", join(temp.dir, "short-password")], /at least 8 characters/],
    [[...base, ...tlsFlags, ...login, "--issuer-ca", join(temp.dir, "not-a-ca.pem")], /no PEM certificate in the file/],
    [["erp", "--data-dir", dir, "--issuer", "ftp://issuer.example", "--listen", "127.0.0.1:0", ...tlsFlags, ...login], /--issuer must start with https:\/\//],
    [["erp", "--data-dir", dir, "--issuer", "https://vendor:hunter2@issuer.example", "--listen", "127.0.0.1:0", ...tlsFlags, ...login], /--issuer must not contain a user name or password/],
    [["erp", "--data-dir", dir, "--issuer", "https://issuer.example/?key=hunter2", "--listen", "127.0.0.1:0", ...tlsFlags, ...login], /--issuer must not contain a query/],
    [["erp", "--data-dir", dir, "--issuer", "https://issuer.example", "--listen", "nowhere", ...tlsFlags, ...login], /--listen.*"nowhere" is not HOST:PORT/],
    [[...base, ...tlsFlags, ...login, "--public-url", "https://erp.example/shop"], /--public-url must be an origin/],
    [[...base, ...tlsFlags, ...login, "--public-url", "http://erp.example/"], /--public-url is http:\/\/ but the database serves HTTPS/],
    [[...base, ...tlsFlags, ...login, "--kind", "duplicate"], /--kind.*duplicate.*invalid/],
    [[...base, ...tlsFlags, ...login, "--enterprise-code", "has space"], /--enterprise-code must be 1 to 200 printable characters/],
    [[...base, ...tlsFlags, ...login, "--zone", "not a zone"], /--zone must be a DNS zone name/],
    [[...base, ...tlsFlags, ...login, "--log-level", "loud"], /"loud" is not a log level/],
    [[...base, ...tlsFlags, ...login], /holds no database yet: give --enterprise-code/],
    [["erp", "duplicate", "--from", dir], /required option '--to <dir>'/],
    [["erp", "duplicate", "--from", join(temp.dir, "nothing"), "--to", join(temp.dir, "copy")], /holds no database/],
  ];
  const results = await Promise.all(cases.map(([args]) => boxcert(args)));
  results.forEach((result, i) => {
    const [args, pattern] = cases[i]!;
    assert.notEqual(result.code, 0, args.join(" "));
    assert.match(result.stderr, pattern, args.join(" "));
    assert.equal(result.stderr.trim().split("\n").length, 1, `more than one line for ${args.join(" ")}: ${result.stderr}`);
    assert.ok(!result.stderr.includes("hunter2"), `the secret is repeated: ${result.stderr}`);
  });
});

test("boxcert erp serves HTTPS, keeps its UUID across a restart, stops on SIGTERM; duplicate makes a copy", async (t) => {
  const temp = await tempDir();
  t.after(temp.cleanup);
  const { ca, tls } = await testPki();
  await writeFile(join(temp.dir, "tls.pem"), tls.cert);
  await writeFile(join(temp.dir, "tls.key"), tls.key);
  await writeFile(join(temp.dir, "password"), "a long enough password\n");
  const dir = join(temp.dir, "db");
  const args = (extra: string[]) => [
    "erp", "--data-dir", dir, "--issuer", "http://127.0.0.1:1", "--listen", "127.0.0.1:0",
    "--tls-cert", join(temp.dir, "tls.pem"), "--tls-key", join(temp.dir, "tls.key"), "--password-file", join(temp.dir, "password"), ...extra,
  ];
  const listening = (output: string) => /"event":"erp_listening"/.test(output);
  const first = await startBoxcert(args(["--enterprise-code", "CODE-CLI-1", "--kind", "staging"]), listening);
  const started = JSON.parse(first.output().split("\n").find((line) => line.includes("erp_listening"))!) as { url: string; dbUuid: string; kind: string };
  assert.equal(started.kind, "staging");
  const page = await httpsRequest(`${started.url}login`, ca.pem);
  assert.equal(page.status, 200);
  await first.stop();
  assert.equal(first.child.exitCode, 0, first.output());
  assert.ok(!first.output().includes("CODE-CLI-1"), "the subscription code is never logged");

  const second = await startBoxcert(args([]), listening);
  t.after(() => second.stop());
  assert.match(second.output(), new RegExp(`"dbUuid":"${started.dbUuid}","kind":"staging"`));
  await second.stop();

  const copy = join(temp.dir, "copy");
  const duplicated = await boxcert(["erp", "duplicate", "--from", dir, "--to", copy]);
  assert.equal(duplicated.code, 0, duplicated.stderr);
  const record = JSON.parse(await readFile(join(copy, "database.json"), "utf8")) as Record<string, unknown>;
  assert.equal(record.kind, "duplicate");
  assert.notEqual(record.dbUuid, started.dbUuid);
  assert.match(duplicated.stdout, new RegExp(`database ${record.dbUuid as string} \\(kind duplicate\\) made in .* from ${started.dbUuid}: 0 boxes copied`));
});
