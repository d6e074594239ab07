/**
 * DNS over TCP (RFC 7766) for one connection: 2-byte length framing, pipelined queries answered in order,
 * bounded buffers, an idle timeout, half-close. What to answer is not decided here: `respond` does it.
 */
import type { Socket } from "node:net";
import type { Logger } from "pino";
import type { QuerySource } from "./zone.ts";

export interface TcpLimits {
  /** A connection with no traffic for this long is closed (RFC 7766 6.2.3 suggests seconds, not minutes). */
  idleTimeoutMs: number;
  /** Connections beyond this are closed as soon as they are accepted. */
  maxConnections: number;
}

export const DEFAULT_TCP_LIMITS: TcpLimits = { idleTimeoutMs: 10_000, maxConnections: 256 };

/** One query in, at most one response out (null: send nothing); never throws. */
export type Responder = (query: Buffer, source: QuerySource) => Buffer | null;

/** A TCP message is at most 65535 bytes after its 2-byte length (RFC 1035 4.2.2). */
const MAX_FRAME = 2 + 65535;
/**
 * What one connection may hold unanswered: the partial frame plus what one socket read can deliver while
 * answers wait for the client to read (reads are paused then). Beyond it something is wrong: close.
 */
const MAX_CONNECTION_BUFFER = 2 * MAX_FRAME;

/** The open connections and the bytes each holds unanswered (both stay bounded; tests and metrics read them). */
export type TcpConnections = Map<Socket, { pending: Buffer }>;

/** A connection's state between reads: what it holds unanswered, and whether it waits for the client. */
class FramedConnection {
  pending: Buffer = Buffer.alloc(0);
  private waitingForDrain = false;
  private peerEnded = false;
  private readonly source: QuerySource;
  private readonly client: string;

  constructor(
    private readonly socket: Socket,
    private readonly respond: Responder,
    private readonly logger: Logger,
  ) {
    this.source = { address: socket.remoteAddress ?? "", port: socket.remotePort ?? 0, transport: "tcp" };
    this.client = `${socket.remoteAddress}#${socket.remotePort}`;
  }

  received(chunk: Buffer): void {
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    if (this.pending.length > MAX_CONNECTION_BUFFER) {
      this.logger.warn({ client: this.client, bytes: this.pending.length }, "TCP connection buffered more than two frames; closed");
      this.pending = Buffer.alloc(0);
      this.socket.destroy();
      return;
    }
    if (!this.waitingForDrain) this.answerFrames();
  }

  drained(): void {
    if (!this.waitingForDrain) return;
    this.waitingForDrain = false;
    this.socket.resume();
    this.answerFrames();
  }

  ended(): void {
    this.peerEnded = true;
    if (!this.waitingForDrain) this.answerFrames();
  }

  failed(err: NodeJS.ErrnoException): void {
    // A client that resets or vanishes is ordinary on the Internet; anything else is ours to look at.
    if (err.code === "ECONNRESET" || err.code === "EPIPE") this.logger.debug({ client: this.client, err: err.message }, "TCP connection reset");
    else this.logger.warn({ client: this.client, err }, "TCP connection error");
  }

  idle(): void {
    this.logger.debug({ client: this.client }, "TCP connection idle; closed");
    this.socket.destroy();
  }

  /** Answers every complete frame in order, until the client stops reading. */
  private answerFrames(): void {
    const pending = this.pending;
    let offset = 0;
    while (!this.waitingForDrain && pending.length - offset >= 2) {
      const length = pending.readUInt16BE(offset);
      if (length === 0) {
        // No DNS message is empty: the stream is not DNS, and no later frame boundary can be trusted.
        this.logger.debug({ client: this.client }, "TCP frame of length 0; connection closed");
        this.socket.destroy();
        return;
      }
      if (pending.length - offset < 2 + length) break;
      const query = pending.subarray(offset + 2, offset + 2 + length);
      offset += 2 + length;
      this.send(this.respond(query, this.source));
    }
    // Copy the unanswered tail so the large read buffer it came from can be freed.
    if (offset > 0) this.pending = Buffer.from(pending.subarray(offset));
    // Half-close (RFC 7766 6.2.4): the client has sent all it will; answer what is complete, then end.
    if (this.peerEnded && !this.waitingForDrain) this.socket.end();
  }

  private send(response: Buffer | null): void {
    if (!response) return;
    if (response.length > 0xffff) {
      this.logger.warn({ client: this.client, bytes: response.length }, "response does not fit a TCP frame; dropped");
      return;
    }
    const framed = Buffer.allocUnsafe(2 + response.length);
    framed.writeUInt16BE(response.length, 0);
    response.copy(framed, 2);
    // A client that sends without reading must not grow our write buffer: stop reading until it drains.
    if (!this.socket.write(framed)) {
      this.waitingForDrain = true;
      this.socket.pause();
    }
  }
}

/** The TCP listener's connection handler: each connection framed and answered, and tracked in `connections`. */
export function tcpConnectionHandler(respond: Responder, limits: TcpLimits, logger: Logger, connections: TcpConnections): (socket: Socket) => void {
  return (socket) => {
    const connection = new FramedConnection(socket, respond, logger);
    connections.set(socket, connection);
    socket.setNoDelay(true);
    socket.setTimeout(limits.idleTimeoutMs, () => connection.idle());
    socket.on("data", (chunk: Buffer) => connection.received(chunk));
    socket.on("drain", () => connection.drained());
    socket.on("end", () => connection.ended());
    socket.on("error", (err: NodeJS.ErrnoException) => connection.failed(err));
    socket.on("close", () => connections.delete(socket));
  };
}
