/**
 * The box's two listeners, serving the same routes: HTTP (never redirects: the HTTPS name may not resolve
 * on every LAN, the IP address must always work) and HTTPS.
 *
 * The HTTPS listener binds at start, so its port is known (and a port conflict reported) at once; until
 * the box has a certificate it refuses every TLS handshake (no certificate configured: "handshake
 * failure" alert) and httpsUrl is null. A new certificate is swapped in with server.setSecureContext():
 * new connections get it, open ones keep theirs, nothing restarts and nothing is dropped.
 *
 * The certificate comes through a ServedTls holder made before the listeners: the agent sets it, the HTTPS
 * listener follows it. So the box makes its parts in order (box.ts): holder, agent, servers, routes.
 *
 * Both listeners bound what a client can hold (docs/box.md "Limits"): time for a request, its headers, an
 * idle keep-alive connection and a TLS handshake, and connections per client address and in total. Node
 * defaults most of these to "forever", so a client trickling one byte every few seconds kept its
 * connection for as long as it liked.
 *
 * The servers are node's own; the routes sit on a small app layer of the box's (http-app.ts: why not
 * fastify).
 */
import { createServer as createHttpServer } from "node:http";
import type { Server as HttpServer, ServerOptions as HttpServerOptions } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { AddressInfo, Server as NetServer } from "node:net";
import type { Logger } from "pino";
import { tlsServerOptions } from "@boxcert/shared";
import { ConnectionCap } from "./connection-cap.ts";
import { HttpApp } from "./http-app.ts";

/**
 * A whole request, headers and body, must arrive within this. The largest body the box takes is a 16 KB
 * form, which a phone on weak Wi-Fi sends in a second or two; 30 s still ends a trickling client.
 */
export const REQUEST_TIMEOUT_MS = 30_000;
/** The request line and headers must arrive within this: a few hundred bytes, but a slow phone waking up. */
export const HEADERS_TIMEOUT_MS = 10_000;
/**
 * An idle connection between two requests is closed after this. Long enough for a browser to reuse it for
 * the page's stylesheet, script and the once-a-second status poll; short enough that idle sockets do not
 * pile up towards the connection caps.
 */
export const KEEP_ALIVE_TIMEOUT_MS = 5_000;
/**
 * A connection silent both ways (the client neither sends nor reads) is closed after this: it catches a
 * client that stops reading a response (the log download is megabytes). Longer than the slowest answer the
 * box computes (the diagnostics wait up to 15 s for the issuer), which it must never cut.
 */
export const IDLE_TIMEOUT_MS = 60_000;
/** A TLS handshake must end within this (Node's default is 120 s); a real one takes milliseconds. */
export const TLS_HANDSHAKE_TIMEOUT_MS = 10_000;
/**
 * Open connections per client address, over both listeners together. A browser opens at most 6 per origin
 * and the homepage has two (HTTP and HTTPS); 32 leaves room for a few tabs and a POS page's polling.
 */
export const MAX_CONNECTIONS_PER_CLIENT = 32;
/**
 * Open connections per listener, all clients together: the per-client cap does not bound a LAN of many
 * addresses (or one IPv6 client with many). Two listeners at 256 stay well inside a device's usual 1,024
 * file descriptors, leaving the rest for the data folder, the logs and the issuer, and bound the memory
 * the sockets and TLS buffers take.
 */
export const MAX_CONNECTIONS = 256;
/**
 * How often Node checks the request and headers deadlines. Its default, 30 s, would let a request live up
 * to twice REQUEST_TIMEOUT_MS; a pass over a few hundred connections once a second costs nothing.
 */
export const DEADLINE_CHECK_INTERVAL_MS = 1_000;

export interface ServerLimits {
  requestTimeoutMs: number;
  headersTimeoutMs: number;
  keepAliveTimeoutMs: number;
  idleTimeoutMs: number;
  tlsHandshakeTimeoutMs: number;
  connectionsPerClient: number;
  connections: number;
}

export const SERVER_LIMITS: Readonly<ServerLimits> = {
  requestTimeoutMs: REQUEST_TIMEOUT_MS,
  headersTimeoutMs: HEADERS_TIMEOUT_MS,
  keepAliveTimeoutMs: KEEP_ALIVE_TIMEOUT_MS,
  idleTimeoutMs: IDLE_TIMEOUT_MS,
  tlsHandshakeTimeoutMs: TLS_HANDSHAKE_TIMEOUT_MS,
  connectionsPerClient: MAX_CONNECTIONS_PER_CLIENT,
  connections: MAX_CONNECTIONS,
};

export interface TlsMaterial {
  /** PKCS#8 key PEM. */
  keyPem: string;
  /** Chain PEM, leaf first. */
  chainPem: string;
}

/** The certificate the HTTPS listener serves: the agent sets it, the listener follows. */
export class ServedTls {
  #material: TlsMaterial | null;
  #listeners = new Set<(material: TlsMaterial) => void>();

  constructor(initial: TlsMaterial | null) {
    this.#material = initial;
  }

  get current(): TlsMaterial | null {
    return this.#material;
  }

  /** Serve this certificate for every new TLS connection from now on. */
  set(material: TlsMaterial): void {
    this.#material = material;
    for (const listener of this.#listeners) listener(material);
  }

  /** Calls listener on every change; returns the function that stops it. */
  onChange(listener: (material: TlsMaterial) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
}

export interface BoxServersOptions {
  host: string;
  httpPort: number;
  httpsPort: number;
  logger: Logger;
  tls: ServedTls;
  /** SERVER_LIMITS unless given (tests shorten the timeouts and lower the caps). */
  limits?: Partial<ServerLimits>;
}

export type RegisterRoutes = (app: HttpApp, scheme: "http" | "https") => void | Promise<void>;

export interface BoxServers {
  /** 0 until listen(). */
  readonly httpPort: number;
  readonly httpsPort: number;
  readonly hasCertificate: boolean;
  /** Adds the routes to each listener (called once for HTTP, once for HTTPS). */
  register(routes: RegisterRoutes): Promise<void>;
  /** Binds both ports; on failure both listeners are closed. */
  listen(): Promise<{ httpPort: number; httpsPort: number }>;
  /** Serve this certificate from now on (sets the holder). */
  setCertificate(material: TlsMaterial): void;
  close(): Promise<void>;
}

/** The TLS policy without key and certificate: what the HTTPS listener starts with before it has one. */
function policyOnly(): ReturnType<typeof tlsServerOptions> {
  const { cert: _cert, key: _key, ...policy } = tlsServerOptions("", "");
  return policy;
}

function bind(server: NetServer, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
}

async function listenOn(server: NetServer, host: string, port: number, what: string): Promise<number> {
  try {
    await bind(server, host, port);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const why = e.code === "EADDRINUSE" ? "the port is already in use" : e.code === "EACCES" ? "permission denied" : e.message;
    throw new Error(`cannot listen for ${what} on ${host}:${port}: ${why}`, { cause: err });
  }
  return (server.address() as AddressInfo).port;
}

/** Waits for the server to stop (its open requests answered); one never listening has nothing to wait for. */
function closeServer(server: NetServer): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

/** The timeouts set at creation (the same for the HTTPS server, among its TLS options). */
function nodeTimeouts(limits: ServerLimits): HttpServerOptions {
  return { requestTimeout: limits.requestTimeoutMs, headersTimeout: limits.headersTimeoutMs, connectionsCheckingInterval: DEADLINE_CHECK_INTERVAL_MS };
}

/** The timeouts Node's servers take as properties: an idle keep-alive connection, a connection silent both ways. */
function setIdleTimeouts(server: HttpServer, limits: ServerLimits): void {
  server.keepAliveTimeout = limits.keepAliveTimeoutMs;
  server.setTimeout(limits.idleTimeoutMs);
}

/** The connection caps on both listeners: per client address (shared by the two) and per listener. */
function capConnections(servers: NetServer[], limits: ServerLimits, logger: Logger): void {
  const cap = new ConnectionCap(limits.connectionsPerClient, (address) => {
    logger.debug({ event: "connection_refused", why: "per-client", address }, "too many connections from this client: closed");
  });
  for (const server of servers) {
    server.maxConnections = limits.connections;
    server.on("drop", (data?: { remoteAddress?: string }) => {
      logger.debug({ event: "connection_refused", why: "total", address: data?.remoteAddress ?? null }, "too many connections in total: closed");
    });
    cap.apply(server);
  }
}

/** Both listeners, made but not listening: routes first (register), then listen(). */
export function createServers(options: BoxServersOptions): BoxServers {
  const limits: ServerLimits = { ...SERVER_LIMITS, ...options.limits };
  // Only a request that fails (a 500) is logged by the app layer; the box's events are logged by the box.
  const serverLogger = options.logger.child({ component: "http" });
  const httpApp = new HttpApp(serverLogger);
  const httpsApp = new HttpApp(serverLogger);
  const httpServer = createHttpServer(nodeTimeouts(limits), httpApp.handle);
  const initial = options.tls.current;
  const httpsServer = createHttpsServer(
    {
      ...(initial ? tlsServerOptions(initial.chainPem, initial.keyPem) : policyOnly()),
      ...nodeTimeouts(limits),
      handshakeTimeout: limits.tlsHandshakeTimeoutMs,
    },
    httpsApp.handle,
  );
  setIdleTimeouts(httpServer, limits);
  setIdleTimeouts(httpsServer, limits);
  capConnections([httpServer, httpsServer], limits, options.logger);
  let hasCertificate = initial !== null;
  const unfollow = options.tls.onChange((material) => {
    httpsServer.setSecureContext(tlsServerOptions(material.chainPem, material.keyPem));
    hasCertificate = true;
  });
  httpsServer.on("tlsClientError", (err) => {
    options.logger.debug({ event: "tls_client_error", err: err.message }, "TLS handshake failed");
  });
  const ports = { httpPort: 0, httpsPort: 0 };
  const close = async (): Promise<void> => {
    unfollow();
    httpApp.close();
    httpsApp.close();
    await Promise.all([closeServer(httpServer), closeServer(httpsServer)]);
  };
  return {
    get httpPort() {
      return ports.httpPort;
    },
    get httpsPort() {
      return ports.httpsPort;
    },
    get hasCertificate() {
      return hasCertificate;
    },
    async register(routes) {
      await routes(httpApp, "http");
      await routes(httpsApp, "https");
    },
    async listen() {
      try {
        ports.httpPort = await listenOn(httpServer, options.host, options.httpPort, "HTTP");
        ports.httpsPort = await listenOn(httpsServer, options.host, options.httpsPort, "HTTPS");
      } catch (err) {
        await close();
        throw err;
      }
      return { ...ports };
    },
    setCertificate(material) {
      options.tls.set(material);
    },
    close,
  };
}

/** Made, routed and listening in one step (tests). */
export async function startServers(
  options: Omit<BoxServersOptions, "tls"> & { certificate: TlsMaterial | null; routes: RegisterRoutes },
): Promise<BoxServers> {
  const servers = createServers({ ...options, tls: new ServedTls(options.certificate) });
  await servers.register(options.routes);
  await servers.listen();
  return servers;
}
