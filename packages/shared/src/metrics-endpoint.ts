/**
 * The `GET /metrics` endpoint `boxcert dns --metrics` and `boxcert issuer --metrics` serve: Prometheus text
 * exposition format 0.0.4, built by the component's `text()` only when scraped. Plain node:http: one route
 * needs no framework.
 */
import { createServer as createHttpServer, type Server as HttpServer } from "node:http";

/** The one thing the endpoint logs: a failed text build or a socket error (pino's Logger fits). */
export interface MetricsEndpointLogger {
  warn(details: object, message: string): void;
}

export interface RunningMetricsEndpoint {
  port: number;
  close(): Promise<void>;
}

/** `GET /metrics` (and HEAD) in Prometheus text format; everything else 404. */
export async function startMetricsEndpoint(options: { host: string; port: number; text: () => string | Promise<string>; logger: MetricsEndpointLogger }): Promise<RunningMetricsEndpoint> {
  const server: HttpServer = createHttpServer(async (req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    if (path !== "/metrics" || (req.method !== "GET" && req.method !== "HEAD")) {
      res.writeHead(404, { "content-type": "text/plain; charset=utf-8" }).end("not found: GET /metrics\n");
      return;
    }
    let body: string;
    try {
      body = await options.text();
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
