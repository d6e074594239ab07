/**
 * The TCP connection limits (tcp.ts, connection-table.ts) on real sockets: one address hoarding idle
 * connections on 127.0.0.1 while others connect from 127.0.0.2 and 127.0.0.3 (Linux routes all of 127/8 to
 * loopback). The idle timeout is a minute here, so only the limits can explain a connection closed within
 * the test: a newcomer answered within seconds was given room by closing someone's idle connection.
 */
import { test, after } from "node:test";
import assert from "node:assert/strict";
import pino from "pino";
import { startDnsServer, type RunningDnsServer, type ZoneSource } from "../src/server.ts";
import { DnsMetrics } from "../src/metrics.ts";
import type { TcpLimits } from "../src/tcp.ts";
import { type DnsConfig } from "../src/zone.ts";
import { framed, query, sleep, tcpClient, type TcpClient, testDnsConfig } from "./helpers/dns-client.ts";

const LABEL = "abcdefghijklmnop";
const NAME = `10-0-0-1.${LABEL}.boxcert.test`;
const config: DnsConfig = testDnsConfig();
const zone: ZoneSource = {
  snapshot: () => ({ version: 1, activeLabels: new Set([LABEL]), challenges: new Map() }),
};
const logger = pino({ level: "silent" });
const HOG = "127.0.0.1";
const OTHER = "127.0.0.2";
const SMALL = "127.0.0.3";
const NO_IDLE_TIMEOUT_IN_TEST = 60_000;

const clients: TcpClient[] = [];
const servers: RunningDnsServer[] = [];
after(async () => {
  for (const client of clients) client.socket.destroy();
  await Promise.all(servers.map((server) => server.close()));
});

async function start(tcp: Partial<TcpLimits>): Promise<{ server: RunningDnsServer; metrics: DnsMetrics }> {
  const metrics = new DnsMetrics();
  const server = await startDnsServer({ host: "127.0.0.1", port: 0, config, zone, logger, metrics, tcp: { idleTimeoutMs: NO_IDLE_TIMEOUT_IN_TEST, ...tcp } });
  servers.push(server);
  return { server, metrics };
}

/** `count` connections from `from`, one after the other, so the server accepts them in this order. */
async function connectMany(server: RunningDnsServer, from: string, count: number): Promise<TcpClient[]> {
  const opened: TcpClient[] = [];
  for (let i = 0; i < count; i++) {
    const client = await tcpClient(server.port, from);
    clients.push(client);
    opened.push(client);
  }
  return opened;
}

async function until(condition: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const started = Date.now();
  while (!condition()) {
    if (Date.now() - started > timeoutMs) assert.fail(`not within ${timeoutMs} ms: ${what}`);
    await sleep(10);
  }
}

/** Which of `group` the server has closed, by index. */
function closedIndexes(group: TcpClient[]): number[] {
  return group.flatMap((client, i) => (client.isClosed() ? [i] : []));
}

async function answers(client: TcpClient, id: number): Promise<void> {
  client.socket.write(framed(query(id, NAME)));
  const response = (await client.next(client.responses.length + 1)).at(-1)!;
  assert.equal(response.id, id);
  assert.deepEqual(response.answers?.map((a) => ("data" in a ? a.data : null)), ["10.0.0.1"]);
}

function closedTotal(metrics: DnsMetrics, reason: string): number {
  const line = new RegExp(`^boxcert_dns_tcp_closed_total\\{reason="${reason}"\\} (\\d+)$`, "m").exec(metrics.prometheusText());
  assert.ok(line, `no boxcert_dns_tcp_closed_total{reason="${reason}"}`);
  return Number(line[1]);
}

const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i);

test("TCP, default limits: 300 idle connections from one address leave it its 16 newest, and another address is answered at once", async () => {
  const { server, metrics } = await start({});
  const hog = await connectMany(server, HOG, 300);
  await until(() => closedIndexes(hog).length === 300 - 16, "the hog is down to its 16 connections");
  assert.deepEqual(closedIndexes(hog), range(0, 284), "the connections idle the longest were closed");
  assert.equal(server.stats().tcpConnections, 16);

  const other = (await connectMany(server, OTHER, 1))[0]!;
  await answers(other, 1);
  // The hog is held to its share, not shut out: its remaining connections still work.
  await answers(hog[299]!, 2);
  assert.equal(closedTotal(metrics, "client_limit"), 284);
  assert.equal(closedTotal(metrics, "refused_global_cap"), 0);
});

test("TCP, at the global cap: a newcomer is answered, and what closes is the busiest client's idle connection, not a smaller client's older one", async () => {
  const { server, metrics } = await start({ maxConnections: 8, maxPerClient: 6 });
  const small = await connectMany(server, SMALL, 2);
  const hog = await connectMany(server, HOG, 8);
  await until(() => closedIndexes(hog).length === 2, "the hog is held to its 6 connections");
  assert.deepEqual(closedIndexes(hog), [0, 1]);
  await until(() => server.stats().tcpConnections === 8, "the cap is reached");

  const newcomers = await connectMany(server, OTHER, 2);
  for (const [i, newcomer] of newcomers.entries()) await answers(newcomer, 10 + i);
  await until(() => closedIndexes(hog).length === 4, "two more of the hog's connections closed for the newcomers");
  assert.deepEqual(closedIndexes(hog), [0, 1, 2, 3]);
  assert.deepEqual(closedIndexes(small), [], "the smaller client's connections, though older, stay open");
  for (const [i, client] of small.entries()) await answers(client, 20 + i);
  assert.equal(server.stats().tcpConnections, 8);
  assert.equal(closedTotal(metrics, "client_limit"), 2);
  assert.equal(closedTotal(metrics, "global_cap"), 2);
});

test("TCP, at the global cap: a connection in the middle of a query is not closed for a newcomer, though it is the oldest", async () => {
  const { server, metrics } = await start({ maxConnections: 4, maxPerClient: 4 });
  const hog = await connectMany(server, HOG, 4);
  const partial = framed(query(30, NAME));
  hog[0]!.socket.write(partial.subarray(0, 3));
  await until(() => server.stats().tcpBufferedBytes === 3, "the server holds the partial query");

  const newcomer = (await connectMany(server, OTHER, 1))[0]!;
  await answers(newcomer, 31);
  await until(() => closedIndexes(hog).length === 1, "one of the hog's connections closed for the newcomer");
  assert.deepEqual(closedIndexes(hog), [1], "the oldest idle one, not the busy oldest");
  hog[0]!.socket.write(partial.subarray(3));
  assert.equal((await hog[0]!.next(1))[0]!.id, 30);
  assert.equal(closedTotal(metrics, "global_cap"), 1);
});
