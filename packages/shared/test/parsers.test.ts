import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { InvalidArgumentError } from "commander";
import {
  asArgument,
  escapeHtml,
  formatHostPort,
  fsyncDir,
  HostPortError,
  parseDuration,
  parseHostPort,
  parseLogLevel,
  parsePort,
  pinoLevel,
  sameNames,
  LOG_LEVELS,
} from "../src/index.ts";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

test("host:port: IPv4, bracketed IPv6, names only when allowed, default port, range", () => {
  assert.deepEqual(parseHostPort("127.0.0.1:5353"), { host: "127.0.0.1", port: 5353 });
  assert.deepEqual(parseHostPort(" [::1]:53 "), { host: "::1", port: 53 });
  assert.deepEqual(parseHostPort("192.168.1.1", { defaultPort: 53 }), { host: "192.168.1.1", port: 53 });
  assert.deepEqual(parseHostPort("Issuer.Example.NET:443", { ipOnly: false }), { host: "issuer.example.net", port: 443 });
  for (const bad of ["localhost:53", "127.0.0.1", "::1:53", "[127.0.0.1]:53", "1.2.3.4:65536", "1.2.3.4:", ":53", "[::1]", "a b:1"]) {
    assert.throws(() => parseHostPort(bad), HostPortError, bad);
  }
  assert.throws(() => parseHostPort("1.2.3.4:0", { minPort: 1 }), /from 1 to 65535/);
});

test("host:port: what formatHostPort prints parses back to the same value", () => {
  const ip = fc.oneof(fc.ipV4(), fc.ipV6().filter((a) => !a.includes(".")));
  fc.assert(
    fc.property(ip, fc.integer({ min: 0, max: 65535 }), (host, port) => {
      const parsed = parseHostPort(formatHostPort({ host, port }));
      assert.equal(parsed.port, port);
      assert.equal(formatHostPort(parsed), formatHostPort({ host: host.toLowerCase(), port }));
    }),
  );
});

test("durations: units, decimals, bounds", () => {
  assert.equal(parseDuration("90d"), 90 * 86_400_000);
  assert.equal(parseDuration("1.5h"), 5_400_000);
  assert.equal(parseDuration("1500ms"), 1500);
  assert.equal(parseDuration(" 30 s "), 30_000);
  assert.throws(() => parseDuration("10"), /not a duration/);
  assert.throws(() => parseDuration("-1s"), /not a duration/);
  assert.throws(() => parseDuration("5s", { min: 10_000 }), /shorter than 10s/);
  assert.throws(() => parseDuration("30d", { max: 2_147_483_647 }), /longer than/);
});

test("log levels: warn and warning are one level, printed as warning; pino gets warn", () => {
  assert.equal(parseLogLevel("warn"), "warning");
  assert.equal(parseLogLevel("WARNING"), "warning");
  assert.equal(parseLogLevel("debug"), "debug");
  assert.throws(() => parseLogLevel("verbose"), /debug, info, warning, error/);
  assert.deepEqual(LOG_LEVELS.map(pinoLevel), ["debug", "info", "warn", "error"]);
});

test("HTML escape covers text and both attribute quotes", () => {
  assert.equal(escapeHtml(`<a href="x" title='y'>&</a>`), "&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;&amp;&lt;/a&gt;");
});

test("same names: order does not matter; case and multiplicity do", () => {
  assert.ok(sameNames(["*.a.zone", "a.zone"], ["a.zone", "*.a.zone"]));
  assert.ok(!sameNames(["*.a.zone", "a.zone"], ["A.zone", "*.a.zone"]));
  assert.ok(!sameNames(["a.zone", "a.zone"], ["a.zone", "b.zone"]));
  assert.ok(!sameNames(["a.zone"], ["a.zone", "b.zone"]));
});

test("fsyncDir syncs a folder and fails clearly on a missing one", async () => {
  const dir = await mkdtemp(join(tmpdir(), "boxcert-fsync-"));
  try {
    await fsyncDir(dir);
    await assert.rejects(fsyncDir(join(dir, "missing")), /ENOENT/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("ports: 0 to 65535 only", () => {
  assert.equal(parsePort("0"), 0);
  assert.equal(parsePort(" 8443 "), 8443);
  for (const bad of ["65536", "-1", "80a", "", "1e3", "123456"]) assert.throws(() => parsePort(bad), HostPortError, bad);
});

test("asArgument: a refused value is commander's usage error, with the flag's wording; a bug stays itself", () => {
  const port = asArgument(parsePort, (message, value) => `${message}; ${value} is not for --port`);
  assert.equal(port("8069"), 8069);
  assert.throws(() => port("x"), (err: Error) => err instanceof InvalidArgumentError && /"x" is not a port number.*x is not for --port/.test(err.message));
  const buggy = asArgument(() => {
    throw new TypeError("a bug");
  });
  assert.throws(() => buggy("1"), TypeError);
});
