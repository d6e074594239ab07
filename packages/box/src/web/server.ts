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
 */
import Fastify from "fastify";
import type { FastifyBaseLogger, FastifyInstance } from "fastify";
import type { Server as HttpsServer } from "node:https";
import type { AddressInfo } from "node:net";
import type { Logger } from "pino";
import { tlsServerOptions } from "@boxcert/shared";

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
}

export type RegisterRoutes = (app: FastifyInstance, scheme: "http" | "https") => void | Promise<void>;

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

async function listenOn(app: FastifyInstance, host: string, port: number, what: string): Promise<number> {
  try {
    await app.listen({ host, port });
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const why = e.code === "EADDRINUSE" ? "the port is already in use" : e.code === "EACCES" ? "permission denied" : e.message;
    throw new Error(`cannot listen for ${what} on ${host}:${port}: ${why}`, { cause: err });
  }
  return (app.server.address() as AddressInfo).port;
}

/** Both listeners, made but not listening: routes first (register), then listen(). */
export function createServers(options: BoxServersOptions): BoxServers {
  // Fastify logs every request at info; the homepage polls once a second while a check runs. Its own
  // lines are kept from warn up (errors, closing), the box's events are logged by the box.
  const serverLogger = options.logger.child({ component: "http" }, { level: "warn" }) as FastifyBaseLogger;
  const common = { loggerInstance: serverLogger, return503OnClosing: true } as const;
  const httpApp = Fastify(common);
  const initial = options.tls.current;
  const httpsApp = Fastify({
    ...common,
    https: initial ? tlsServerOptions(initial.chainPem, initial.keyPem) : policyOnly(),
  });
  const httpsServer = httpsApp.server as HttpsServer;
  let hasCertificate = initial !== null;
  const unfollow = options.tls.onChange((material) => {
    httpsServer.setSecureContext(tlsServerOptions(material.chainPem, material.keyPem));
    hasCertificate = true;
  });
  httpsServer.on("tlsClientError", (err) => {
    options.logger.debug({ event: "tls_client_error", err: err.message }, "TLS handshake failed");
  });
  // The routes only use the request/reply API, the same over both servers; fastify types it per server.
  const https = httpsApp as unknown as FastifyInstance;
  const ports = { httpPort: 0, httpsPort: 0 };
  const close = async (): Promise<void> => {
    unfollow();
    await Promise.allSettled([httpApp.close(), httpsApp.close()]);
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
      await routes(https, "https");
    },
    async listen() {
      try {
        ports.httpPort = await listenOn(httpApp, options.host, options.httpPort, "HTTP");
        ports.httpsPort = await listenOn(https, options.host, options.httpsPort, "HTTPS");
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
