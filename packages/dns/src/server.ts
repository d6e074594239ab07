/**
 * The sockets around the pure answer function (answer.ts): one UDP socket and one TCP listener on the same
 * port. Everything that decides what to answer is in answer.ts; this file only frames, bounds and sends.
 */
import { createSocket, type RemoteInfo, type Socket as UdpSocket } from "node:dgram";
import { createServer as createTcpServer, isIPv6, type Server as TcpServer, type Socket } from "node:net";
import { createServer as createHttpServer, type Server as HttpServer } from "node:http";
import type { Logger } from "pino";
import { answer as answerQuery } from "./answer.ts";
import type { Answer, DnsConfig, QuerySource, ZoneSnapshot } from "./zone.ts";

/** Where the server reads the zone from: the store loader in production, a static object in tests. */
export interface ZoneSource {
  /** The current view; called once per query, so it must be a cheap read of data already in memory. */
  snapshot(): ZoneSnapshot;
}

/** Per-rcode and per-type counters (metrics.ts), fed one answer at a time. */
export interface AnswerRecorder {
  recordAnswer(answer: Answer): void;
}

export type AnswerFunction = (query: Buffer, source: QuerySource, zone: ZoneSnapshot, config: DnsConfig) => Answer;

export interface TcpLimits {
  /** A connection with no traffic for this long is closed (RFC 7766 6.2.3 suggests seconds, not minutes). */
  idleTimeoutMs: number;
  /** Connections beyond this are closed as soon as they are accepted. */
  maxConnections: number;
}

export const DEFAULT_TCP_LIMITS: TcpLimits = { idleTimeoutMs: 10_000, maxConnections: 256 };

export interface DnsServerOptions {
  host: string;
  /** 0 picks a free port, the same one for UDP and TCP. */
  port: number;
  config: DnsConfig;
  zone: ZoneSource;
  logger: Logger;
  metrics?: AnswerRecorder;
  tcp?: Partial<TcpLimits>;
  /** The answer function; answer.ts unless a test or benchmark swaps it. */
  answer?: AnswerFunction;
}

export interface RunningDnsServer {
  port: number;
  /** Open TCP connections and the bytes they hold unanswered (for tests and metrics: both stay bounded). */
  stats(): { tcpConnections: number; tcpBufferedBytes: number };
  close(): Promise<void>;
}

/** A TCP message is at most 65535 bytes after its 2-byte length (RFC 1035 4.2.2). */
const MAX_FRAME = 2 + 65535;
/**
 * What one connection may hold unanswered: the partial frame plus what one socket read can deliver while
 * answers wait for the client to read (reads are paused then). Beyond it something is wrong: close.
 */
const MAX_CONNECTION_BUFFER = 2 * MAX_FRAME;
/** How often a flood of refused connections may log one warning. */
const DROP_LOG_INTERVAL_MS = 10_000;
/** Kernel receive buffer for the UDP socket: absorbs bursts while the event loop answers. */
const UDP_RECEIVE_BUFFER = 4 * 1024 * 1024;
const PORT_ATTEMPTS = 20;

function bindUdp(host: string, port: number): Promise<UdpSocket> {
  return new Promise((resolve, reject) => {
    const socket = createSocket({ type: isIPv6(host) ? "udp6" : "udp4" });
    const failed = (err: Error) => {
      socket.close();
      reject(err);
    };
    socket.once("error", failed);
    socket.bind({ address: host, port }, () => {
      socket.off("error", failed);
      resolve(socket);
    });
  });
}

function listenTcp(server: TcpServer, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const failed = (err: Error) => reject(err);
    server.once("error", failed);
    server.listen({ host, port, exclusive: true }, () => {
      server.off("error", failed);
      resolve();
    });
  });
}

function closeUdp(socket: UdpSocket): Promise<void> {
  return new Promise((resolve) => {
    try {
      socket.close(() => resolve());
    } catch {
      resolve(); // already closed
    }
  });
}

export async function startDnsServer(options: DnsServerOptions): Promise<RunningDnsServer> {
  const { host, config, zone, logger, metrics } = options;
  const answer = options.answer ?? answerQuery;
  const limits: TcpLimits = { ...DEFAULT_TCP_LIMITS, ...options.tcp };

  /** One query in, at most one response out; never throws (a bug in answer() costs one query, not the server). */
  function respond(query: Buffer, source: QuerySource): Buffer | null {
    let result: Answer;
    try {
      result = answer(query, source, zone.snapshot(), config);
    } catch (err) {
      logger.warn({ err, client: `${source.address}#${source.port}`, transport: source.transport, bytes: query.length }, "answering a query failed; dropped");
      return null;
    }
    metrics?.recordAnswer(result);
    if (result.rcode === "SERVFAIL") logger.warn(result.log);
    else logger.debug(result.log);
    return result.response;
  }

  // --- TCP (RFC 7766): 2-byte length framing, pipelined queries answered in order, bounded buffers.
  /** Each open connection and what it holds unanswered. */
  const connections = new Map<Socket, { pending: Buffer }>();
  let refused = 0;
  let lastRefusedLog = 0;

  function onConnection(socket: Socket): void {
    const state: { pending: Buffer } = { pending: Buffer.alloc(0) };
    connections.set(socket, state);
    const client = `${socket.remoteAddress}#${socket.remotePort}`;
    const source: QuerySource = { address: socket.remoteAddress ?? "", port: socket.remotePort ?? 0, transport: "tcp" };
    let waitingForDrain = false;
    let peerEnded = false;

    socket.setNoDelay(true);
    socket.setTimeout(limits.idleTimeoutMs, () => {
      logger.debug({ client }, "TCP connection idle; closed");
      socket.destroy();
    });

    const finishIfDone = () => {
      // Half-close (RFC 7766 6.2.4): the client has sent all it will; answer what is complete, then end.
      if (peerEnded && !waitingForDrain) socket.end();
    };

    const drainFrames = () => {
      const pending = state.pending;
      let offset = 0;
      while (!waitingForDrain && pending.length - offset >= 2) {
        const length = pending.readUInt16BE(offset);
        if (length === 0) {
          // No DNS message is empty: the stream is not DNS, and no later frame boundary can be trusted.
          logger.debug({ client }, "TCP frame of length 0; connection closed");
          socket.destroy();
          return;
        }
        if (pending.length - offset < 2 + length) break;
        const query = pending.subarray(offset + 2, offset + 2 + length);
        offset += 2 + length;
        const response = respond(query, source);
        if (!response) continue;
        if (response.length > 0xffff) {
          logger.warn({ client, bytes: response.length }, "response does not fit a TCP frame; dropped");
          continue;
        }
        const framed = Buffer.allocUnsafe(2 + response.length);
        framed.writeUInt16BE(response.length, 0);
        response.copy(framed, 2);
        // A client that sends without reading must not grow our write buffer: stop reading until it drains.
        if (!socket.write(framed)) {
          waitingForDrain = true;
          socket.pause();
        }
      }
      // Copy the unanswered tail so the large read buffer it came from can be freed.
      if (offset > 0) state.pending = Buffer.from(pending.subarray(offset));
      finishIfDone();
    };

    socket.on("data", (chunk: Buffer) => {
      state.pending = state.pending.length === 0 ? chunk : Buffer.concat([state.pending, chunk]);
      if (state.pending.length > MAX_CONNECTION_BUFFER) {
        logger.warn({ client, bytes: state.pending.length }, "TCP connection buffered more than two frames; closed");
        state.pending = Buffer.alloc(0);
        socket.destroy();
        return;
      }
      if (!waitingForDrain) drainFrames();
    });
    socket.on("drain", () => {
      if (!waitingForDrain) return;
      waitingForDrain = false;
      socket.resume();
      drainFrames();
    });
    socket.on("end", () => {
      peerEnded = true;
      if (!waitingForDrain) drainFrames();
    });
    socket.on("error", (err: NodeJS.ErrnoException) => {
      // A client that resets or vanishes is ordinary on the Internet; anything else is ours to look at.
      if (err.code === "ECONNRESET" || err.code === "EPIPE") logger.debug({ client, err: err.message }, "TCP connection reset");
      else logger.warn({ client, err }, "TCP connection error");
    });
    socket.on("close", () => connections.delete(socket));
  }

  // --- Bind: UDP first, then TCP on the same port; with port 0, retry when TCP finds it taken.
  let udp: UdpSocket | null = null;
  let tcp: TcpServer | null = null;
  for (let attempt = 1; ; attempt++) {
    const candidate = await bindUdp(host, options.port).catch((err: Error) => {
      throw new Error(`binding UDP ${host}:${options.port}: ${err.message}`, { cause: err });
    });
    const port = candidate.address().port;
    const server = createTcpServer({ allowHalfOpen: true, noDelay: true }, onConnection);
    server.maxConnections = limits.maxConnections;
    try {
      await listenTcp(server, host, port);
      udp = candidate;
      tcp = server;
      break;
    } catch (err) {
      await closeUdp(candidate);
      const e = err as NodeJS.ErrnoException;
      if (options.port === 0 && e.code === "EADDRINUSE" && attempt < PORT_ATTEMPTS) continue;
      throw new Error(`binding TCP ${host}:${port} (UDP is free there): ${e.message}`, { cause: err });
    }
  }

  try {
    udp.setRecvBufferSize(UDP_RECEIVE_BUFFER);
  } catch (err) {
    logger.debug({ err: (err as Error).message }, "could not enlarge the UDP receive buffer; kept the system default");
  }
  // UDP: one answer per datagram, nothing sent when the answer says drop.
  const udpSocket = udp;
  udpSocket.on("message", (message: Buffer, remote: RemoteInfo) => {
    const response = respond(message, { address: remote.address, port: remote.port, transport: "udp" });
    // Without a callback, a failed send surfaces as the socket's "error" event (logged below).
    if (response) udpSocket.send(response, remote.port, remote.address);
  });
  udp.on("error", (err) => logger.warn({ err }, "UDP socket error"));
  tcp.on("error", (err) => logger.warn({ err }, "TCP listener error"));
  tcp.on("drop", (data) => {
    refused++;
    const now = Date.now();
    if (now - lastRefusedLog >= DROP_LOG_INTERVAL_MS) {
      logger.warn({ refused, maxConnections: limits.maxConnections, lastClient: data?.remoteAddress }, "TCP connections over the cap closed");
      lastRefusedLog = now;
      refused = 0;
    }
  });

  const port = udp.address().port;
  const tcpServer = tcp;
  return {
    port,
    stats() {
      let tcpBufferedBytes = 0;
      for (const { pending } of connections.values()) tcpBufferedBytes += pending.length;
      return { tcpConnections: connections.size, tcpBufferedBytes };
    },
    async close() {
      const closed = new Promise<void>((resolve) => tcpServer.close(() => resolve()));
      for (const socket of connections.keys()) socket.destroy();
      await Promise.all([closed, closeUdp(udpSocket)]);
    },
  };
}

export interface RunningMetricsEndpoint {
  port: number;
  close(): Promise<void>;
}

/** `GET /metrics` in Prometheus text format; everything else 404. Plain node:http: one route needs no framework. */
export async function startMetricsEndpoint(options: { host: string; port: number; text: () => string; logger: Logger }): Promise<RunningMetricsEndpoint> {
  const server: HttpServer = createHttpServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    if (path !== "/metrics" || (req.method !== "GET" && req.method !== "HEAD")) {
      res.writeHead(404, { "content-type": "text/plain; charset=utf-8" }).end("not found: GET /metrics\n");
      return;
    }
    let body: string;
    try {
      body = options.text();
    } catch (err) {
      options.logger.warn({ err }, "building the metrics text failed");
      res.writeHead(500, { "content-type": "text/plain; charset=utf-8" }).end("metrics unavailable\n");
      return;
    }
    res.writeHead(200, { "content-type": "text/plain; version=0.0.4; charset=utf-8" });
    res.end(req.method === "HEAD" ? undefined : body);
  });
  server.requestTimeout = 10_000;
  await new Promise<void>((resolve, reject) => {
    server.once("error", (err) => reject(new Error(`binding the metrics endpoint ${options.host}:${options.port}: ${err.message}`, { cause: err })));
    server.listen({ host: options.host, port: options.port }, () => resolve());
  });
  server.on("error", (err) => options.logger.warn({ err }, "metrics endpoint error"));
  const address = server.address();
  return {
    port: typeof address === "object" && address ? address.port : options.port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
