/**
 * DNS NOTIFY (RFC 1996) on real UDP and TCP sockets on 127.0.0.1: the response's shape, the source allow
 * list, another zone, malformed ones, the counters; and the zone loader it wakes (a real SQLite store):
 * a change is answered after one NOTIFY, and a burst of reloads is one or two reads of the store.
 */
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import packet from "dns-packet";
import pino from "pino";
import { openStore, ZoneRecords } from "@boxcert/store";
import { startDnsServer, type ZoneSource } from "../src/server.ts";
import { openDnsZone } from "../src/zone-loader.ts";
import { DnsMetrics } from "../src/metrics.ts";
import { buildDnsConfig } from "../src/options.ts";
import { type DnsConfig } from "../src/zone.ts";
import { framed, query, tcpClient, testDnsConfig, udpExchange } from "./helpers/dns-client.ts";
import { waitFor } from "../../../test/support/processes.ts";

const logger = pino({ level: "silent" });
const baseConfig: DnsConfig = testDnsConfig();
const zone: ZoneSource = { snapshot: () => ({ version: 7, activeLabels: new Set(), challenges: new Map() }) };

const folders: string[] = [];
after(() => {
  for (const folder of folders) rmSync(folder, { recursive: true, force: true });
});

/** dns-packet takes the opcode in the flags (its `opcode` field is only decoded). */
const OPCODE_NOTIFY = 4 << 11;

/** A NOTIFY as a primary sends it: opcode 4, AA, the zone's SOA as the question (and, optionally, the new SOA). */
function notify(id: number, name = "boxcert.test", type: packet.RecordType = "SOA"): Buffer {
  return packet.encode({ type: "query", id, flags: OPCODE_NOTIFY | packet.AUTHORITATIVE_ANSWER, questions: [{ type, name, class: "IN" }] });
}


interface Header {
  id: number;
  qr: boolean;
  opcode: number;
  aa: boolean;
  rcode: number;
  question: string | null;
}

function header(response: Buffer): Header {
  const flags = response.readUInt16BE(2);
  const decoded = packet.decode(response);
  const q = decoded.questions?.[0];
  return {
    id: response.readUInt16BE(0),
    qr: (flags & 0x8000) !== 0,
    opcode: (flags >> 11) & 0xf,
    aa: (flags & 0x0400) !== 0,
    rcode: flags & 0xf,
    question: q ? `${q.name} ${q.type} ${q.class}` : null,
  };
}

async function server(config: DnsConfig) {
  const metrics = new DnsMetrics();
  let notified = 0;
  const running = await startDnsServer({ host: "127.0.0.1", port: 0, config, zone, logger, metrics, onNotify: () => notified++ });
  return { running, metrics, notified: () => notified };
}

/** Waits for a condition, polling (never a fixed sleep). */
/** Polls a condition the test's sockets or listeners set (test/support/processes.ts waitFor). */
function until(what: string, condition: () => boolean, timeoutMs = 3000): Promise<boolean> {
  return waitFor(what, async () => condition(), timeoutMs, 5);
}

test("NOTIFY of the zone's SOA from loopback (the default): NOERROR, QR, opcode 4, AA, same id and question; the zone reloads", async () => {
  const { running, metrics, notified } = await server(baseConfig);
  try {
    const udp = header(await udpExchange(running.port, notify(4242, "BoxCert.Test")));
    assert.deepEqual(udp, { id: 4242, qr: true, opcode: 4, aa: true, rcode: 0, question: "BoxCert.Test SOA IN" });
    await until("the reload after the UDP NOTIFY", () => notified() === 1);

    const tcp = await tcpClient(running.port);
    tcp.socket.write(framed(notify(4343)));
    const [answer] = (await tcp.next(1)) as Array<packet.DecodedPacket & { opcode: string; rcode: string }>;
    tcp.socket.destroy();
    assert.equal(answer!.id, 4343);
    assert.equal(answer!.type, "response");
    assert.equal(answer!.opcode, "NOTIFY");
    assert.equal(answer!.rcode, "NOERROR");
    assert.equal(answer!.flag_aa, true);
    await until("the reload after the TCP NOTIFY", () => notified() === 2);
    assert.match(metrics.prometheusText(), /boxcert_dns_notifies_total\{outcome="accepted"\} 2\n/);
    assert.match(metrics.prometheusText(), /boxcert_dns_notifies_received_total 2\n/);
  } finally {
    await running.close();
  }
});

test("NOTIFY from a source outside --allow-notify: REFUSED, and the zone is not reloaded", async () => {
  // The server listens on 127.0.0.1; an allow list that leaves 127.0.0.1 out stands for a stranger.
  const config = buildDnsConfig({ zone: "boxcert.test", listen: { host: "127.0.0.1", port: 0 }, store: "-", logLevel: "info", allowNotify: ["10.0.0.0/8", "127.0.0.2/32"] });
  const { running, metrics, notified } = await server(config);
  try {
    const refused = header(await udpExchange(running.port, notify(17)));
    assert.deepEqual(refused, { id: 17, qr: true, opcode: 4, aa: false, rcode: 5, question: "boxcert.test SOA IN" });
    // A normal query still answers, so a reload would have had the time to be asked for.
    await udpExchange(running.port, query(18, "boxcert.test", "SOA"));
    assert.equal(notified(), 0);
    assert.match(metrics.prometheusText(), /boxcert_dns_notifies_total\{outcome="refused"\} 1\n/);
    assert.match(metrics.prometheusText(), /boxcert_dns_notifies_total\{outcome="accepted"\} 0\n/);
    // From 127.0.0.2 (TCP lets the client pick its loopback address), it is accepted.
    const tcp = await tcpClient(running.port, "127.0.0.2");
    tcp.socket.write(framed(notify(19)));
    const [answer] = (await tcp.next(1)) as Array<packet.Packet & { rcode: string }>;
    tcp.socket.destroy();
    assert.equal(answer!.rcode, "NOERROR");
    await until("the reload after the allowed NOTIFY", () => notified() === 1);
  } finally {
    await running.close();
  }
});

test("refused NOTIFYs log one warning per 10 s at most, with the count (anyone can send them)", async () => {
  const lines: string[] = [];
  const captured = pino({ level: "info" }, { write: (line: string) => void lines.push(line) });
  const config = buildDnsConfig({ zone: "boxcert.test", listen: { host: "127.0.0.1", port: 0 }, store: "-", logLevel: "info", allowNotify: ["10.0.0.0/8"] });
  const running = await startDnsServer({ host: "127.0.0.1", port: 0, config, zone, logger: captured });
  try {
    for (let i = 0; i < 5; i++) assert.equal(header(await udpExchange(running.port, notify(i))).rcode, 5);
    const warnings = lines.filter((line) => line.includes("DNS NOTIFY refused"));
    assert.equal(warnings.length, 1, lines.join(""));
    assert.equal(JSON.parse(warnings[0]!).refused, 1);
  } finally {
    await running.close();
  }
});

test("NOTIFY for another zone: NOTAUTH; for another type: FORMERR; malformed: FORMERR; none reloads", async () => {
  const { running, metrics, notified } = await server(baseConfig);
  try {
    const cases: Array<[string, Buffer, number]> = [
      ["another zone", notify(1, "example.com"), 9],
      ["a name below the zone", notify(2, "x.boxcert.test"), 9],
      ["the parent", notify(3, "test"), 9],
      ["another type", notify(4, "boxcert.test", "A"), 1],
      ["no question", packet.encode({ type: "query", id: 5, flags: OPCODE_NOTIFY, questions: [] }), 1],
    ];
    for (const [what, message, rcode] of cases) {
      const h = header(await udpExchange(running.port, message));
      assert.equal(h.rcode, rcode, what);
      assert.equal(h.opcode, 4, what);
      assert.equal(h.qr, true, what);
    }
    // Truncated inside the question: FORMERR with the id (the header is readable).
    const truncated = notify(6).subarray(0, 20);
    const h = header(await udpExchange(running.port, truncated));
    assert.deepEqual([h.id, h.rcode, h.opcode], [6, 1, 4]);
    assert.equal(notified(), 0);
    assert.match(metrics.prometheusText(), /boxcert_dns_notifies_total\{outcome="rejected"\} 6\n/);
    assert.match(metrics.prometheusText(), /boxcert_dns_responses_total\{rcode="NOTAUTH"\} 3\n/);
  } finally {
    await running.close();
  }
});

test("--allow-notify: a range with host bits set is a start-up error", () => {
  assert.throws(
    () => buildDnsConfig({ zone: "boxcert.test", listen: { host: "127.0.0.1", port: 0 }, store: "-", logLevel: "info", allowNotify: ["10.0.0.1/8"] }),
    /--allow-notify: .*host bits set/,
  );
});

test("the zone loader: a NOTIFY makes a new TXT value answered without waiting for the poll; a burst is one or two store reads", async () => {
  const folder = mkdtempSync(join(tmpdir(), "boxcert-notify-"));
  folders.push(folder);
  const path = join(folder, "registry.sqlite");
  const writer = await openStore(path);
  // A poll far away: only the NOTIFY can bring the value in time.
  const loaded = await openDnsZone(path, logger, 3_600_000);
  const { running } = { running: await startDnsServer({ host: "127.0.0.1", port: 0, config: baseConfig, zone: loaded, logger, onNotify: () => void loaded.refresh() }) };
  try {
    assert.equal(loaded.listening, null, "SQLite has nothing to listen to");
    await new ZoneRecords(writer.db).addChallenge("abcdefghijklmnop", "value-one");
    assert.equal(loaded.snapshot().challenges.size, 0);
    assert.equal(header(await udpExchange(running.port, notify(1))).rcode, 0);
    await until("the value after the NOTIFY", () => loaded.snapshot().challenges.get("abcdefghijklmnop")?.[0] === "value-one");

    // Fifty refreshes at once: the one running and one after it, never fifty.
    const before = loaded.reads();
    await Promise.all(Array.from({ length: 50 }, () => loaded.refresh()));
    assert.equal(loaded.reads() - before, 2);

    // A burst of NOTIFYs over UDP: every one answered, the change read, and never more reads than NOTIFYs.
    await new ZoneRecords(writer.db).addChallenge("abcdefghijklmnop", "value-two");
    const burstBefore = loaded.reads();
    const answers = await Promise.all(Array.from({ length: 30 }, (_, i) => udpExchange(running.port, notify(100 + i))));
    assert.deepEqual(new Set(answers.map((a) => header(a).rcode)), new Set([0]));
    await until("the second value", () => loaded.snapshot().challenges.get("abcdefghijklmnop")?.length === 2);
    assert.ok(loaded.reads() - burstBefore <= 30, `${loaded.reads() - burstBefore} reads for 30 NOTIFYs`);
  } finally {
    await running.close();
    await loaded.close();
    await writer.close();
  }
});
