/**
 * A DNS client for the socket tests: the zone they serve, queries, a UDP exchange, RFC 7766 framing, and a
 * TCP connection that collects answers.
 */
import { createSocket } from "node:dgram";
import { connect, type Socket } from "node:net";
import packet from "dns-packet";
import { DEFAULT_ALLOW, DEFAULT_TTL, type DnsConfig } from "../../src/zone.ts";

/** The tests' zone, boxcert.test, with ns1 on 127.0.0.1; `overrides` replace whole fields. */
export function testDnsConfig(overrides: Partial<DnsConfig> = {}): DnsConfig {
  return {
    zone: "boxcert.test",
    nameServers: [{ name: "ns1.boxcert.test", addresses: ["127.0.0.1"] }],
    caa: ["letsencrypt.org"],
    allow: [...DEFAULT_ALLOW],
    ttl: { ...DEFAULT_TTL },
    hostmaster: "hostmaster.boxcert.test",
    ...overrides,
  };
}

/** Sends one UDP message to 127.0.0.1:`port` and resolves with the first answer (rejects after `timeoutMs`). */
export function udpExchange(port: number, message: Buffer, timeoutMs = 2000): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const socket = createSocket("udp4");
    const timer = setTimeout(() => {
      socket.close();
      reject(new Error("no UDP answer"));
    }, timeoutMs);
    socket.once("message", (msg) => {
      clearTimeout(timer);
      socket.close();
      resolve(msg);
    });
    socket.send(message, port, "127.0.0.1");
  });
}

export function query(id: number, name: string, type: packet.RecordType = "A"): Buffer {
  return packet.encode({ type: "query", id, flags: 0, questions: [{ type, name, class: "IN" }] });
}

export function framed(message: Buffer): Buffer {
  const length = Buffer.alloc(2);
  length.writeUInt16BE(message.length);
  return Buffer.concat([length, message]);
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface TcpClient {
  socket: Socket;
  responses: packet.Packet[];
  /** Resolves when the connection closes, whoever closed it. */
  closed: Promise<void>;
  isClosed(): boolean;
  /** The first `count` answers, waiting for them up to 3 s. */
  next(count: number): Promise<packet.Packet[]>;
}

/** A TCP connection to 127.0.0.1:`port`, from `localAddress` (any 127.x.y.z on Linux) when given. */
export function tcpClient(port: number, localAddress?: string): Promise<TcpClient> {
  return new Promise((resolve, reject) => {
    const socket = connect({ port, host: "127.0.0.1", localAddress });
    const responses: packet.Packet[] = [];
    let buffer = Buffer.alloc(0);
    let waiters: Array<() => void> = [];
    let closedNow = false;
    socket.on("data", (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk]);
      while (buffer.length >= 2 && buffer.length >= 2 + buffer.readUInt16BE(0)) {
        const length = buffer.readUInt16BE(0);
        try {
          responses.push(packet.decode(buffer.subarray(2, 2 + length)));
        } catch {
          responses.push({ id: -1 } as packet.Packet); // an undecodable answer still counts as an answer
        }
        buffer = buffer.subarray(2 + length);
      }
      for (const w of waiters) w();
    });
    socket.on("error", () => {});
    const closed = new Promise<void>((res) =>
      socket.once("close", () => {
        closedNow = true;
        res();
      }),
    );
    const next = (count: number) =>
      new Promise<packet.Packet[]>((res, rej) => {
        const timer = setTimeout(() => rej(new Error(`only ${responses.length} of ${count} TCP answers`)), 3000);
        const check = () => {
          if (responses.length >= count) {
            clearTimeout(timer);
            waiters = waiters.filter((w) => w !== check);
            res(responses.slice(0, count));
          }
        };
        waiters.push(check);
        check();
      });
    socket.once("connect", () => resolve({ socket, responses, closed, isClosed: () => closedNow, next }));
    socket.once("error", reject);
  });
}
