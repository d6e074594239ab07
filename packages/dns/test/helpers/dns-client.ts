/** A DNS client for the socket tests: queries, RFC 7766 framing, and a TCP connection that collects answers. */
import { connect, type Socket } from "node:net";
import packet from "dns-packet";

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
