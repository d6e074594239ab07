/**
 * DNS over TCP (RFC 7766): 2-byte length framing, pipelined queries answered in order, bounded buffers, an
 * idle timeout, half-close, and the connection limits (which connection to close is connection-table.ts's
 * decision). What to answer is not decided here: `respond` does it.
 */
import type { Socket } from "node:net";
import type { Logger } from "pino";
import { clientOf, ConnectionTable, type ConnectionLimits, type LimitReached } from "./connection-table.ts";
import type { QuerySource } from "./zone.ts";

export interface TcpLimits extends ConnectionLimits {
  /** A connection with no traffic for this long is closed (RFC 7766 6.2.3 suggests seconds, not minutes). */
  idleTimeoutMs: number;
}

/**
 * 256 connections: far more than the resolvers that ask an authoritative server at once over TCP (most ask
 * over UDP), far below a process's descriptor limit. 16 per client: a resolver pipelines its queries on one
 * connection per server (RFC 7766 6.2.2), so an address needs few; 16 leaves room for a resolver farm or a NAT
 * behind one address, while one client holds at most 1/16 of the cap.
 */
export const DEFAULT_TCP_LIMITS: TcpLimits = { idleTimeoutMs: 10_000, maxConnections: 256, maxPerClient: 16 };

/** Why the server closed a connection: a fixed list, so each can be a metric label. */
export const TCP_CLOSE_REASONS = ["idle_timeout", "client_limit", "global_cap", "refused_client_limit", "refused_global_cap", "buffer_limit", "zero_length_frame"] as const;
export type TcpCloseReason = (typeof TCP_CLOSE_REASONS)[number];

export interface TcpCloseRecorder {
  recordTcpClose(reason: TcpCloseReason): void;
}

/** One query in, at most one response out (null: send nothing); never throws. */
export type Responder = (query: Buffer, source: QuerySource) => Buffer | null;

/** The TCP listener's side: each accepted socket admitted (or not), framed and answered. */
export interface TcpConnections {
  accept(socket: Socket): void;
  /** Open connections and the bytes they hold unanswered (both stay bounded; tests and metrics read them). */
  stats(): { tcpConnections: number; tcpBufferedBytes: number };
  /** Closes every connection (the server is stopping; not counted as closed by a limit). */
  closeAll(): void;
}

/** How often closing connections at the limits may log one warning. */
const LIMIT_LOG_INTERVAL_MS = 10_000;

/** A TCP message is at most 65535 bytes after its 2-byte length (RFC 1035 4.2.2). */
const MAX_FRAME = 2 + 65535;
/**
 * What one connection may hold unanswered: the partial frame plus what one socket read can deliver while
 * answers wait for the client to read (reads are paused then). Beyond it something is wrong: close.
 */
const MAX_CONNECTION_BUFFER = 2 * MAX_FRAME;

/** What every connection shares: the answer function, the table of open connections, the log and counters. */
interface TcpContext {
  respond: Responder;
  table: ConnectionTable<FramedConnection>;
  logger: Logger;
  metrics: TcpCloseRecorder | undefined;
}

/** A connection's state between reads: what it holds unanswered, and whether it waits for the client. */
class FramedConnection {
  pending: Buffer = Buffer.alloc(0);
  private waitingForDrain = false;
  private peerEnded = false;
  private readonly source: QuerySource;
  private readonly client: string;
  private readonly logger: Logger;
  private readonly flushed = () => this.noteActivity();

  constructor(
    private readonly socket: Socket,
    private readonly context: TcpContext,
  ) {
    this.logger = context.logger;
    this.source = { address: socket.remoteAddress ?? "", port: socket.remotePort ?? 0, transport: "tcp" };
    this.client = `${socket.remoteAddress}#${socket.remotePort}`;
  }

  /** Serves an admitted connection. */
  start(idleTimeoutMs: number): void {
    const socket = this.socket;
    socket.setNoDelay(true);
    socket.setTimeout(idleTimeoutMs, () => this.idle());
    socket.on("data", (chunk: Buffer) => this.received(chunk));
    socket.on("drain", () => this.drained());
    socket.on("end", () => this.ended());
    socket.on("error", (err: NodeJS.ErrnoException) => this.failed(err));
    socket.on("close", () => this.context.table.remove(this));
  }

  /** Closed by the server: forgotten at once (its slot is free now), counted by reason. */
  close(reason: TcpCloseReason): void {
    if (this.socket.destroyed) return;
    this.context.table.remove(this);
    this.context.metrics?.recordTcpClose(reason);
    this.socket.destroy();
  }

  /** The server is stopping. */
  shutdown(): void {
    this.socket.destroy();
  }

  private received(chunk: Buffer): void {
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    if (this.pending.length > MAX_CONNECTION_BUFFER) {
      this.logger.warn({ client: this.client, bytes: this.pending.length }, "TCP connection buffered more than two frames; closed");
      this.pending = Buffer.alloc(0);
      this.close("buffer_limit");
      return;
    }
    if (!this.waitingForDrain) this.answerFrames();
    this.noteActivity();
  }

  private drained(): void {
    if (!this.waitingForDrain) return;
    this.waitingForDrain = false;
    this.socket.resume();
    this.answerFrames();
    this.noteActivity();
  }

  private ended(): void {
    this.peerEnded = true;
    if (!this.waitingForDrain) this.answerFrames();
  }

  /**
   * Busy (a partial query read, or an answer not yet handed to the kernel) or idle since now: what the
   * limits may close is only ever an idle connection, the one idle the longest.
   */
  private noteActivity(): void {
    const busy = this.pending.length > 0 || this.waitingForDrain || this.socket.writableLength > 0;
    if (busy) this.context.table.markBusy(this);
    else this.context.table.markIdle(this);
  }

  private failed(err: NodeJS.ErrnoException): void {
    // A client that resets or vanishes is ordinary on the Internet; anything else is ours to look at.
    if (err.code === "ECONNRESET" || err.code === "EPIPE") this.logger.debug({ client: this.client, err: err.message }, "TCP connection reset");
    else this.logger.warn({ client: this.client, err }, "TCP connection error");
  }

  private idle(): void {
    this.logger.debug({ client: this.client }, "TCP connection idle; closed");
    this.close("idle_timeout");
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
        this.close("zero_length_frame");
        return;
      }
      if (pending.length - offset < 2 + length) break;
      const query = pending.subarray(offset + 2, offset + 2 + length);
      offset += 2 + length;
      this.send(this.context.respond(query, this.source));
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
    // Once this answer has reached the kernel, the connection may be idle again (the callback says when).
    if (!this.socket.write(framed, this.flushed)) {
      this.waitingForDrain = true;
      this.socket.pause();
    }
  }
}

/** Closing connections at the limits logs one warning per interval, with counts, not one line per connection. */
class LimitLog {
  private closed = new Map<TcpCloseReason, number>();
  private lastLog = 0;

  constructor(private readonly logger: Logger) {}

  note(reason: TcpCloseReason, client: string): void {
    this.closed.set(reason, (this.closed.get(reason) ?? 0) + 1);
    const now = Date.now();
    if (now - this.lastLog < LIMIT_LOG_INTERVAL_MS) return;
    this.logger.warn({ closed: Object.fromEntries(this.closed), lastClient: client }, "TCP connections closed at the connection limits");
    this.lastLog = now;
    this.closed = new Map();
  }
}

const REFUSED: Record<LimitReached, TcpCloseReason> = { client_limit: "refused_client_limit", global_cap: "refused_global_cap" };

/** The TCP listener's connections under `limits`, each admitted by the table before it is served. */
export function tcpConnections(respond: Responder, limits: TcpLimits, logger: Logger, metrics?: TcpCloseRecorder): TcpConnections {
  const context: TcpContext = { respond, table: new ConnectionTable<FramedConnection>(limits), logger, metrics };
  const limitLog = new LimitLog(logger);
  return {
    accept(socket) {
      const connection = new FramedConnection(socket, context);
      const client = clientOf(socket.remoteAddress);
      const admission = context.table.open(client, connection);
      if (admission.kind === "refused") {
        connection.close(REFUSED[admission.limit]);
        limitLog.note(REFUSED[admission.limit], client);
        return;
      }
      if (admission.kind === "made-room") {
        admission.evicted.close(admission.limit);
        limitLog.note(admission.limit, admission.evictedClient);
      }
      connection.start(limits.idleTimeoutMs);
    },
    stats() {
      let tcpBufferedBytes = 0;
      for (const connection of context.table.connections()) tcpBufferedBytes += connection.pending.length;
      return { tcpConnections: context.table.size, tcpBufferedBytes };
    },
    closeAll() {
      for (const connection of [...context.table.connections()]) connection.shutdown();
    },
  };
}
