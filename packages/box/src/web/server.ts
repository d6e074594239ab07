/**
 * The box's two listeners, serving the same routes: HTTP (never redirects: the HTTPS name may not resolve
 * on every LAN, the IP address must always work) and HTTPS.
 *
 * The HTTPS listener binds at start, so its port is known (and a port conflict reported) at once; until
 * the box has a certificate it refuses every TLS handshake (no certificate configured: "handshake
 * failure" alert) and httpsUrl is null. A new certificate is swapped in with server.setSecureContext():
 * new connections get it, open ones keep theirs, nothing restarts and nothing is dropped.
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

export interface BoxServersOptions {
  host: string;
  httpPort: number;
  httpsPort: number;
  logger: Logger;
  /** The certificate to serve from the start, if there is one. */
  certificate: TlsMaterial | null;
  /** Adds the routes to one listener (called once for HTTP, once for HTTPS). */
  routes: (app: FastifyInstance, scheme: "http" | "https") => void | Promise<void>;
}

export interface BoxServers {
  httpPort: number;
  httpsPort: number;
  readonly hasCertificate: boolean;
  /** Serve this certificate for every new TLS connection from now on. */
  setCertificate(material: TlsMaterial): void;
  close(): Promise<void>;
}

/** The TLS policy without key and certificate: what the HTTPS listener starts with before it has one. */
function policyOnly(): ReturnType<typeof tlsServerOptions> {
  const { cert: _cert, key: _key, ...policy } = tlsServerOptions("", "");
  return policy;
}

async function listen(app: FastifyInstance, host: string, port: number, what: string): Promise<number> {
  try {
    await app.listen({ host, port });
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const why = e.code === "EADDRINUSE" ? "the port is already in use" : e.code === "EACCES" ? "permission denied" : e.message;
    throw new Error(`cannot listen for ${what} on ${host}:${port}: ${why}`, { cause: err });
  }
  return (app.server.address() as AddressInfo).port;
}

export async function startServers(options: BoxServersOptions): Promise<BoxServers> {
  // Fastify logs every request at info; the homepage polls once a second while a check runs. Its own
  // lines are kept from warn up (errors, closing), the box's events are logged by the box.
  const serverLogger = options.logger.child({ component: "http" }, { level: "warn" }) as FastifyBaseLogger;
  const common = { loggerInstance: serverLogger, return503OnClosing: true } as const;
  const httpApp = Fastify(common);
  const initial = options.certificate;
  const httpsApp = Fastify({
    ...common,
    https: initial ? tlsServerOptions(initial.chainPem, initial.keyPem) : policyOnly(),
  });
  let hasCertificate = initial !== null;
  (httpsApp.server as HttpsServer).on("tlsClientError", (err) => {
    options.logger.debug({ event: "tls_client_error", err: err.message }, "TLS handshake failed");
  });
  // The routes only use the request/reply API, the same over both servers; fastify types it per server.
  const https = httpsApp as unknown as FastifyInstance;
  await options.routes(httpApp, "http");
  await options.routes(https, "https");
  let httpPort: number;
  let httpsPort: number;
  try {
    httpPort = await listen(httpApp, options.host, options.httpPort, "HTTP");
    httpsPort = await listen(https, options.host, options.httpsPort, "HTTPS");
  } catch (err) {
    await Promise.allSettled([httpApp.close(), httpsApp.close()]);
    throw err;
  }
  return {
    httpPort,
    httpsPort,
    get hasCertificate() {
      return hasCertificate;
    },
    setCertificate(material) {
      (httpsApp.server as HttpsServer).setSecureContext(tlsServerOptions(material.chainPem, material.keyPem));
      hasCertificate = true;
    },
    async close() {
      await Promise.allSettled([httpApp.close(), httpsApp.close()]);
    },
  };
}
