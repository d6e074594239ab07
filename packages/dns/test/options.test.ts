/** The TCP limit, poll and NOTIFY flags of `boxcert dns` (options.ts): what each accepts, and what they build. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { ValueError } from "@boxcert/shared";
import { buildDnsConfig, buildTcpLimits, parseCidr, parseConnectionCount, parseIdleTimeout, parsePollInterval, type DnsFlags } from "../src/options.ts";
import { DEFAULT_TCP_LIMITS } from "../src/tcp.ts";

const flags: DnsFlags = { zone: "boxcert.test", listen: { host: "127.0.0.1", port: 5353 }, store: "registry.sqlite", logLevel: "info" };

test("--tcp-max-connections and --tcp-max-per-client take a whole number from 1 to 65535", () => {
  assert.equal(parseConnectionCount("1"), 1);
  assert.equal(parseConnectionCount(" 512 "), 512);
  assert.equal(parseConnectionCount("65535"), 65535);
  for (const bad of ["0", "65536", "-3", "1.5", "16k", "", "1e3", "0x10"]) {
    assert.throws(() => parseConnectionCount(bad), (err: Error) => err instanceof ValueError && /not a number of connections from 1 to 65535/.test(err.message), bad);
  }
});

test("--tcp-idle-timeout takes a duration from 1s to 2m", () => {
  assert.equal(parseIdleTimeout("10s"), 10_000);
  assert.equal(parseIdleTimeout("1s"), 1000);
  assert.equal(parseIdleTimeout("2m"), 120_000);
  assert.throws(() => parseIdleTimeout("500ms"), /shorter than 1s/);
  assert.throws(() => parseIdleTimeout("3m"), /longer than 2m/);
  assert.throws(() => parseIdleTimeout("10"), /not a duration/);
});

test("the TCP limits: the defaults, the flags, a per-client default held to a lower cap, and a per-client limit above the cap refused", () => {
  assert.deepEqual(buildTcpLimits(flags), DEFAULT_TCP_LIMITS);
  assert.deepEqual(buildTcpLimits({ ...flags, tcpMaxConnections: 1000, tcpMaxPerClient: 4, tcpIdleTimeout: 5000 }), {
    maxConnections: 1000,
    maxPerClient: 4,
    idleTimeoutMs: 5000,
  });
  assert.equal(buildTcpLimits({ ...flags, tcpMaxConnections: 8 }).maxPerClient, 8);
  assert.equal(buildTcpLimits({ ...flags, tcpMaxPerClient: 256 }).maxPerClient, 256);
  assert.throws(() => buildTcpLimits({ ...flags, tcpMaxPerClient: 300 }), /--tcp-max-per-client 300 is above --tcp-max-connections 256/);
});

test("--poll-interval takes a duration from 50ms to 10m", () => {
  assert.equal(parsePollInterval("250ms"), 250);
  assert.equal(parsePollInterval("10m"), 600_000);
  assert.throws(() => parsePollInterval("10ms"), /shorter than 50ms/);
  assert.throws(() => parsePollInterval("11m"), /longer than 10m/);
});

test("--allow-notify: loopback by default; the ranges given replace it", () => {
  assert.deepEqual(buildDnsConfig(flags).allowNotify, ["127.0.0.0/8", "::1/128"]);
  assert.deepEqual(buildDnsConfig({ ...flags, allowNotify: [parseCidr("10.0.0.0/24"), parseCidr("192.0.2.7")] }).allowNotify, ["10.0.0.0/24", "192.0.2.7/32"]);
  assert.throws(() => parseCidr("10.0.0.0/33"), /not a CIDR range/);
});
