/**
 * The sockets around the pure answer function (answer.ts): one UDP socket and one TCP listener on the same
 * port. Everything that decides what to answer is in answer.ts; this file only frames, bounds and sends.
 */
import { createSocket, type RemoteInfo, type Socket as UdpSocket } from "node:dgram";
import { createServer as createTcpServer, isIPv6, type Server as TcpServer, type Socket } from "node:net";
import type { Logger } from "pino";
import { answer as answerQuery } from "./answer.ts";
import type { Answer, DnsConfig, QuerySource, ZoneSnapshot } from "./zone.ts";
import { DEFAULT_TCP_LIMITS, tcpConnections, type Responder, type TcpCloseRecorder, type TcpLimits } from "./tcp.ts";

export { DEFAULT_TCP_LIMITS, TCP_CLOSE_REASONS, type TcpCloseReason, type TcpCloseRecorder, type TcpLimits } from "./tcp.ts";
/** The metrics endpoint is shared with the issuer (its `--metrics`). */
export { startMetricsEndpoint, type RunningMetricsEndpoint } from "@boxcert/shared";

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

export interface DnsServerOptions {
  host: string;
  /** 0 picks a free port, the same one for UDP and TCP. */
  port: number;
  config: DnsConfig;
  zone: ZoneSource;
  logger: Logger;
  /** Counters (metrics.ts): every answer, and every TCP connection the server closed, by reason. */
  metrics?: AnswerRecorder & TcpCloseRecorder;
  tcp?: Partial<TcpLimits>;
  /** The answer function; answer.ts unless a test or benchmark swaps it. */
  answer?: AnswerFunction;
  /**
   * Called after an accepted NOTIFY (RFC 1996) has been answered: reload the zone now. It must return at once
   * (the zone loader coalesces bursts); a throw is logged, never the server's problem.
   */
  onNotify?: () => void;
}

export interface RunningDnsServer {
  port: number;
  /** Open TCP connections and the bytes they hold unanswered (for tests and metrics: both stay bounded). */
  stats(): { tcpConnections: number; tcpBufferedBytes: number };
  close(): Promise<void>;
}

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

/** How often NOTIFYs refused for their source may log one warning (anyone can send them: no log flood). */
const REFUSED_NOTIFY_LOG_INTERVAL_MS = 10_000;

/** One query in, at most one response out; never throws (a bug in answer() costs one query, not the server). */
function responder(options: DnsServerOptions): Responder {
  const { config, zone, logger, metrics } = options;
  const answer = options.answer ?? answerQuery;
  let refusedNotifies = 0;
  let refusedLoggedAt = -Infinity;
  const refusedNotify = (result: Answer) => {
    refusedNotifies++;
    const now = Date.now();
    if (now - refusedLoggedAt < REFUSED_NOTIFY_LOG_INTERVAL_MS) return;
    logger.warn({ refused: refusedNotifies, last: result.log }, "DNS NOTIFY refused: its source is outside --allow-notify");
    refusedLoggedAt = now;
    refusedNotifies = 0;
  };
  return (query, source) => {
    let result: Answer;
    try {
      result = answer(query, source, zone.snapshot(), config);
    } catch (err) {
      logger.warn({ err, client: `${source.address}#${source.port}`, transport: source.transport, bytes: query.length }, "answering a query failed; dropped");
      return null;
    }
    metrics?.recordAnswer(result);
    if (result.rcode === "SERVFAIL") logger.warn(result.log);
    else if (result.notify === "refused") refusedNotify(result);
    // From an allowed source, but not our zone's SOA: a primary configured for another zone.
    else if (result.notify === "rejected") logger.info(result.log);
    else logger.debug(result.log);
    if (result.notify === "accepted" && options.onNotify) {
      // After this query's response is sent: the reload reads the store, the answer does not wait for it.
      const onNotify = options.onNotify;
      queueMicrotask(() => {
        try {
          onNotify();
        } catch (err) {
          logger.warn({ err }, "reloading the zone on NOTIFY failed");
        }
      });
    }
    return result.response;
  };
}

/** UDP first, then TCP on the same port; with port 0, another port when TCP finds the UDP one taken. */
async function bindBoth(host: string, wantedPort: number, onConnection: (socket: Socket) => void): Promise<{ udp: UdpSocket; tcp: TcpServer }> {
  for (let attempt = 1; ; attempt++) {
    const udp = await bindUdp(host, wantedPort).catch((err: Error) => {
      throw new Error(`binding UDP ${host}:${wantedPort}: ${err.message}`, { cause: err });
    });
    const port = udp.address().port;
    // No `maxConnections`: Node would close the newcomer at the cap, and the limits (tcp.ts) close an idle
    // connection of the busiest client instead.
    const tcp = createTcpServer({ allowHalfOpen: true, noDelay: true }, onConnection);
    try {
      await listenTcp(tcp, host, port);
      return { udp, tcp };
    } catch (err) {
      await closeUdp(udp);
      const e = err as NodeJS.ErrnoException;
      if (wantedPort === 0 && e.code === "EADDRINUSE" && attempt < PORT_ATTEMPTS) continue;
      throw new Error(`binding TCP ${host}:${port} (UDP is free there): ${e.message}`, { cause: err });
    }
  }
}

export async function startDnsServer(options: DnsServerOptions): Promise<RunningDnsServer> {
  const { host, logger } = options;
  const limits: TcpLimits = { ...DEFAULT_TCP_LIMITS, ...options.tcp };
  const respond = responder(options);
  const connections = tcpConnections(respond, limits, logger, options.metrics);
  const { udp, tcp } = await bindBoth(host, options.port, (socket) => connections.accept(socket));

  try {
    udp.setRecvBufferSize(UDP_RECEIVE_BUFFER);
  } catch (err) {
    logger.debug({ err: (err as Error).message }, "could not enlarge the UDP receive buffer; kept the system default");
  }
  // UDP: one answer per datagram, nothing sent when the answer says drop.
  udp.on("message", (message: Buffer, remote: RemoteInfo) => {
    const response = respond(message, { address: remote.address, port: remote.port, transport: "udp" });
    // Without a callback, a failed send surfaces as the socket's "error" event (logged below).
    if (response) udp.send(response, remote.port, remote.address);
  });
  udp.on("error", (err) => logger.warn({ err }, "UDP socket error"));
  tcp.on("error", (err) => logger.warn({ err }, "TCP listener error"));

  return {
    port: udp.address().port,
    stats: () => connections.stats(),
    async close() {
      const closed = new Promise<void>((resolve) => tcp.close(() => resolve()));
      connections.closeAll();
      await Promise.all([closed, closeUdp(udp)]);
    },
  };
}

