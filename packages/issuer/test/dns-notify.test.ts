/**
 * The issuer's DNS NOTIFY sender (dns-notify.ts) against UDP sockets on 127.0.0.1 that play the dns: the
 * message (opcode 4, AA, the zone's SOA), retransmission when unanswered, a burst coalesced to one in flight
 * and one pending per server, and a silent server never holding up the caller.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { createSocket, type Socket } from "node:dgram";
import packet from "dns-packet";
import pino from "pino";
import { startNotifier } from "../src/dns-notify.ts";
import { waitFor } from "../../../test/support/processes.ts";

const logger = pino({ level: "silent" });

interface FakeDns {
  socket: Socket;
  port: number;
  received: Buffer[];
  close(): Promise<void>;
}

/** A UDP socket that records every message and, when `answer` says so, acknowledges it as a dns would. */
async function fakeDns(answer: (message: Buffer, index: number) => boolean): Promise<FakeDns> {
  const socket = createSocket("udp4");
  const received: Buffer[] = [];
  socket.on("message", (message, remote) => {
    received.push(message);
    if (!answer(message, received.length - 1)) return;
    const response = Buffer.from(message);
    response.writeUInt16BE((message.readUInt16BE(2) & 0x7800) | 0x8000 | 0x0400, 2);
    socket.send(response, remote.port, remote.address);
  });
  await new Promise<void>((resolve) => socket.bind(0, "127.0.0.1", () => resolve()));
  return { socket, port: socket.address().port, received, close: () => new Promise((resolve) => socket.close(() => resolve())) };
}

/** Polls a condition the test's sockets or listeners set (test/support/processes.ts waitFor). */
function until(what: string, condition: () => boolean, timeoutMs = 3000): Promise<boolean> {
  return waitFor(what, async () => condition(), timeoutMs, 5);
}

test("a zone change sends one NOTIFY of the zone's SOA (opcode 4, AA) to every server; answered, nothing more", async () => {
  const a = await fakeDns(() => true);
  const b = await fakeDns(() => true);
  const notifier = await startNotifier({ zone: "boxcert.test", servers: [{ host: "127.0.0.1", port: a.port }, { host: "127.0.0.1", port: b.port }], logger });
  try {
    notifier.zoneChanged();
    await until("both answered", () => notifier.stats().answered === 2);
    for (const dns of [a, b]) {
      assert.equal(dns.received.length, 1);
      const message = dns.received[0]!;
      const flags = message.readUInt16BE(2);
      assert.equal((flags >> 11) & 0xf, 4, "opcode NOTIFY");
      assert.equal(flags & 0x8000, 0, "a query");
      assert.equal(flags & 0x0400, 0x0400, "AA");
      const decoded = packet.decode(message);
      assert.deepEqual(decoded.questions, [{ name: "boxcert.test", type: "SOA", class: "IN" }]);
    }
    // Answered: no retransmission after the retry interval.
    await new Promise((r) => setTimeout(r, 400));
    assert.equal(a.received.length + b.received.length, 2);
  } finally {
    await notifier.close();
    await a.close();
    await b.close();
  }
});

test("unanswered, a NOTIFY is sent again with the same ID, up to three sends; the caller never waits", async () => {
  const silent = await fakeDns(() => false);
  const notifier = await startNotifier({ zone: "boxcert.test", servers: [{ host: "127.0.0.1", port: silent.port }], logger, retryMs: 50 });
  try {
    const started = performance.now();
    notifier.zoneChanged();
    assert.ok(performance.now() - started < 50, "zoneChanged returns at once");
    await until("three sends given up", () => notifier.stats().givenUp === 1);
    assert.equal(silent.received.length, 3);
    assert.equal(new Set(silent.received.map((m) => m.readUInt16BE(0))).size, 1, "retransmissions keep the ID");
  } finally {
    await notifier.close();
    await silent.close();
  }
});

test("a burst of changes is one NOTIFY in flight and one pending, not a queue; a retransmission answered ends it", async () => {
  // The first send of the first NOTIFY is lost; everything after is answered.
  const dns = await fakeDns((_, index) => index > 0);
  const notifier = await startNotifier({ zone: "boxcert.test", servers: [{ host: "127.0.0.1", port: dns.port }], logger, retryMs: 50 });
  try {
    for (let i = 0; i < 100; i++) notifier.zoneChanged();
    await until("two NOTIFYs answered", () => notifier.stats().answered === 2);
    await new Promise((r) => setTimeout(r, 150));
    const ids = dns.received.map((m) => m.readUInt16BE(0));
    assert.equal(new Set(ids).size, 2, `two NOTIFYs for 100 changes (ids ${ids.join(", ")})`);
    assert.equal(dns.received.length, 3, "the first sent twice (its first send lost), the pending one once");
    // A later change is its own NOTIFY.
    notifier.zoneChanged();
    await until("the third answered", () => notifier.stats().answered === 3);
  } finally {
    await notifier.close();
    await dns.close();
  }
});

test("a server that cannot be sent to (no port) is left out, and a zone change never throws", async () => {
  const notifier = await startNotifier({ zone: "boxcert.test", servers: [{ host: "127.0.0.1", port: 0 }], logger });
  try {
    assert.doesNotThrow(() => notifier.zoneChanged());
    assert.equal(notifier.stats().sent, 0);
  } finally {
    await notifier.close();
  }
});
