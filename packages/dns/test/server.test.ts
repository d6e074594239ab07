/**
 * The DNS server's sockets (server.ts) with real UDP and TCP on 127.0.0.1, port 0, over a static zone: framing,
 * pipelining, limits and hostile input. What the answers say is answer.ts's business and tested there.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createSocket } from "node:dgram";
import { randomBytes } from "node:crypto";
import packet from "dns-packet";
import pino from "pino";
import { startDnsServer, type RunningDnsServer, type ZoneSource } from "../src/server.ts";
import { type DnsConfig } from "../src/zone.ts";
import { framed, query, sleep, tcpClient, testDnsConfig, udpExchange } from "./helpers/dns-client.ts";

const LABEL = "abcdefghijklmnop";
const config: DnsConfig = testDnsConfig();
const zone: ZoneSource = {
  snapshot: () => ({ version: 1, activeLabels: new Set([LABEL]), challenges: new Map() }),
};
const logger = pino({ level: "silent" });

let server: RunningDnsServer;
before(async () => {
  server = await startDnsServer({ host: "127.0.0.1", port: 0, config, zone, logger });
});
after(async () => {
  await server.close();
});

async function udpAsk(port: number, message: Buffer, timeoutMs = 2000): Promise<packet.Packet> {
  return packet.decode(await udpExchange(port, message, timeoutMs));
}

test("UDP: a query gets its answer, on the same port as TCP", async () => {
  const response = await udpAsk(server.port, query(7, `192-168-1-42.${LABEL}.boxcert.test`));
  assert.equal(response.id, 7);
  assert.equal(response.type, "response");
  assert.deepEqual(
    response.answers?.map((a) => [a.type, "data" in a ? a.data : null]),
    [["A", "192.168.1.42"]],
  );
  const tcp = await tcpClient(server.port);
  tcp.socket.write(framed(query(8, `192-168-1-42.${LABEL}.boxcert.test`)));
  assert.equal((await tcp.next(1))[0]!.id, 8);
  tcp.socket.destroy();
});

test("TCP: two pipelined queries in one write are answered in order on one connection", async () => {
  const tcp = await tcpClient(server.port);
  tcp.socket.write(Buffer.concat([framed(query(1, `10-0-0-1.${LABEL}.boxcert.test`)), framed(query(2, `10-0-0-2.${LABEL}.boxcert.test`))]));
  const [first, second] = await tcp.next(2);
  assert.deepEqual([first!.id, second!.id], [1, 2]);
  assert.equal((first!.answers?.[0] as { data: string }).data, "10.0.0.1");
  assert.equal((second!.answers?.[0] as { data: string }).data, "10.0.0.2");
  tcp.socket.destroy();
});

test("TCP: a frame split across writes, down to single bytes, is reassembled", async () => {
  const tcp = await tcpClient(server.port);
  const bytes = Buffer.concat([framed(query(3, `127-0-0-1.${LABEL}.boxcert.test`)), framed(query(4, `127-0-0-2.${LABEL}.boxcert.test`))]);
  // The length prefix alone, then its second byte with part of the message, then the rest a byte at a time.
  const cuts = [1, 2, 10, ...Array.from({ length: bytes.length - 10 }, (_, i) => 11 + i)];
  let from = 0;
  for (const to of cuts) {
    tcp.socket.write(bytes.subarray(from, to));
    from = to;
    await sleep(1);
  }
  const answers = await tcp.next(2);
  assert.deepEqual(answers.map((a) => a.id), [3, 4]);
  tcp.socket.destroy();
});

test("TCP: half-close after the last query still gets every answer, then the server ends", async () => {
  const tcp = await tcpClient(server.port);
  tcp.socket.end(Buffer.concat([framed(query(5, `10-1-1-1.${LABEL}.boxcert.test`)), framed(query(6, `nope.boxcert.test`))]));
  await tcp.closed;
  assert.deepEqual(tcp.responses.map((r) => r.id), [5, 6]);
});

test("TCP: an idle connection is closed by the server", async () => {
  const idle = await startDnsServer({ host: "127.0.0.1", port: 0, config, zone, logger, tcp: { idleTimeoutMs: 300 } });
  try {
    const tcp = await tcpClient(idle.port);
    // Traffic restarts the clock: answered at 200 ms, the connection lives past the first 300 ms.
    await sleep(200);
    tcp.socket.write(framed(query(10, `10-0-0-10.${LABEL}.boxcert.test`)));
    await tcp.next(1);
    const started = Date.now();
    await tcp.closed;
    const waited = Date.now() - started;
    assert.ok(waited >= 250 && waited < 3000, `closed ${waited} ms after the last answer (idle timeout 300 ms)`);
    while (idle.stats().tcpConnections > 0) await sleep(10); // the server's side closes a moment after the client sees it
  } finally {
    await idle.close();
  }
});

test("TCP: at the cap with every connection in the middle of a query, a new one is closed; those keep working", async () => {
  const capped = await startDnsServer({ host: "127.0.0.1", port: 0, config, zone, logger, tcp: { maxConnections: 4 } });
  after(() => capped.close());
  const open = await Promise.all(Array.from({ length: 4 }, () => tcpClient(capped.port)));
  const queries = open.map((_, i) => framed(query(100 + i, `10-0-0-9.${LABEL}.boxcert.test`)));
  // The first byte of each query: every connection holds a partial frame, so none is idle.
  for (const [i, client] of open.entries()) client.socket.write(queries[i]!.subarray(0, 1));
  while (capped.stats().tcpBufferedBytes < open.length) await sleep(5);
  const extra = await tcpClient(capped.port);
  let extraAnswered = false;
  extra.socket.write(framed(query(9, `10-0-0-9.${LABEL}.boxcert.test`)), () => {});
  extra.socket.once("data", () => (extraAnswered = true));
  await Promise.race([extra.closed, sleep(2000).then(() => assert.fail("the fifth connection was not closed"))]);
  assert.equal(extraAnswered, false);
  for (const [i, client] of open.entries()) {
    client.socket.write(queries[i]!.subarray(1));
    assert.equal((await client.next(1))[0]!.id, 100 + i);
  }
  for (const client of open) client.socket.destroy();
  await Promise.all(open.map((c) => c.closed));
});

test("TCP: a 65535-byte length followed by garbage neither crashes the server nor buffers beyond one frame", async () => {
  const tcp = await tcpClient(server.port);
  const header = Buffer.from([0xff, 0xff]);
  tcp.socket.write(Buffer.concat([header, randomBytes(30_000)]));
  await sleep(50);
  assert.ok(server.stats().tcpBufferedBytes <= 2 + 65535, `buffered ${server.stats().tcpBufferedBytes}`);
  // Complete that frame and send more whole garbage frames: each is consumed (and dropped), none piles up.
  tcp.socket.write(randomBytes(65535 - 30_000));
  let most = 0;
  for (let i = 0; i < 20; i++) {
    tcp.socket.write(Buffer.concat([header, randomBytes(65535)]));
    await sleep(5);
    most = Math.max(most, server.stats().tcpBufferedBytes);
  }
  assert.ok(most <= 2 * (2 + 65535), `buffered at most ${most} bytes`);
  // The frame boundaries held: a real query after the garbage is answered on the same connection (garbage
  // with a readable header may have earned a FORMERR of its own, so look for this id among the answers).
  tcp.socket.write(framed(query(0xbeef, `10-0-0-11.${LABEL}.boxcert.test`)));
  const started = Date.now();
  while (!tcp.responses.some((r) => r.id === 0xbeef)) {
    assert.ok(Date.now() - started < 3000, "the query after the garbage frames was not answered");
    await sleep(10);
  }
  tcp.socket.destroy();
  assert.equal((await udpAsk(server.port, query(12, `10-0-0-12.${LABEL}.boxcert.test`))).id, 12);
});

test("TCP: a client that sends many queries and never reads is bounded by back-pressure", async () => {
  const tcp = await tcpClient(server.port);
  tcp.socket.pause(); // never read: the server's writes fill the socket buffers
  const one = framed(query(13, `10-0-0-13.${LABEL}.boxcert.test`));
  // More answers than the kernel's socket buffers hold on loopback, so the server must stop reading.
  const many = Buffer.concat(Array.from({ length: 200_000 }, () => one));
  tcp.socket.write(many);
  let most = 0;
  for (let i = 0; i < 50; i++) {
    await sleep(10);
    most = Math.max(most, server.stats().tcpBufferedBytes);
  }
  assert.ok(most > 0, "the server never held unread queries: it did not stop reading");
  assert.ok(most <= 2 * (2 + 65535), `buffered at most ${most} bytes`);
  // The server still serves others meanwhile.
  assert.equal((await udpAsk(server.port, query(14, `10-0-0-14.${LABEL}.boxcert.test`))).id, 14);
  tcp.socket.destroy();
});

test("UDP: a burst of random garbage does not crash the server", async () => {
  const socket = createSocket("udp4");
  for (let i = 0; i < 1000; i++) {
    const size = Math.floor(Math.random() * 600);
    const bytes = randomBytes(size);
    // Half look like queries (QDCOUNT 1) so the decoder gets further than the header.
    if (i % 2 && size >= 12) bytes.writeUInt16BE(1, 4);
    socket.send(bytes, server.port, "127.0.0.1");
    if (i % 200 === 0) await sleep(1);
  }
  socket.close();
  // The server may still be working through the burst (or the kernel dropped some of it): ask until answered.
  const started = Date.now();
  for (;;) {
    const response = await udpAsk(server.port, query(15, `10-0-0-15.${LABEL}.boxcert.test`), 1000).catch(() => null);
    if (response) {
      assert.equal(response.id, 15);
      break;
    }
    assert.ok(Date.now() - started < 30_000, "no answer to a valid query within 30 s of the garbage burst");
  }
});

test("port 0 gives UDP and TCP the same free port; a taken port is a clear error", async () => {
  const other = await startDnsServer({ host: "127.0.0.1", port: 0, config, zone, logger });
  try {
    assert.notEqual(other.port, server.port);
    await assert.rejects(startDnsServer({ host: "127.0.0.1", port: other.port, config, zone, logger }), /binding UDP 127\.0\.0\.1:\d+: .*EADDRINUSE/);
  } finally {
    await other.close();
  }
});
