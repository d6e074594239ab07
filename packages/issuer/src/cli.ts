/** `boxcert issuer`: wires flags to buildIssuerApp() and listens. */
import { readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import type { Command} from "commander";
import { Option } from "commander";
import pino, { type Logger } from "pino";
import { isZone } from "@boxcert/shared";
import { openStore, isPostgresUrl } from "./store/db.ts";
import { Registry } from "./registry.ts";
import { EmbeddedCa } from "./embedded-ca.ts";
import { buildIssuerApp } from "./app.ts";
import { parseDuration, parseListen, parsePositiveInt } from "./options.ts";

export const DEFAULT_LIFETIME_MS = 90 * 86_400_000;
export const DEFAULT_MAX_CERTS_PER_WEEK = 10;

export interface IssuerConfig {
  store: string;
  keysDir?: string;
  zone: string;
  ca: "embedded";
  listen: { host: string; port: number };
  tlsCert?: string;
  tlsKey?: string;
  plainHttp?: boolean;
  lifetimeMs: number;
  maxCertificatesPerWeek: number;
  logger: Logger;
  clock?: () => number;
}

export interface RunningIssuer {
  url: string;
  port: number;
  ca: EmbeddedCa;
  registry: Registry;
  close(): Promise<void>;
}

/** Where the CA keys live unless told: beside the SQLite file; a PostgreSQL store needs --keys-dir. */
export function defaultKeysDir(store: string): string {
  if (isPostgresUrl(store)) throw new Error("--keys-dir is required with a PostgreSQL store");
  return join(dirname(resolve(store)), "keys");
}

export async function startIssuer(config: IssuerConfig): Promise<RunningIssuer> {
  if (!isZone(config.zone)) throw new Error(`--zone "${config.zone}" is not a DNS zone name (example: iot.example.net)`);
  let tls: { cert: string; key: string } | undefined;
  if (config.tlsCert || config.tlsKey) {
    if (!config.tlsCert || !config.tlsKey) throw new Error("--tls-cert and --tls-key go together");
    try {
      tls = { cert: readFileSync(config.tlsCert, "utf8"), key: readFileSync(config.tlsKey, "utf8") };
    } catch (err) {
      throw new Error(`reading the issuer's TLS certificate or key: ${(err as Error).message}`, { cause: err });
    }
  } else if (!config.plainHttp) {
    throw new Error("give --tls-cert and --tls-key to serve HTTPS, or --plain-http to serve plain HTTP (tests, private networks)");
  }
  const keysDir = config.keysDir ?? defaultKeysDir(config.store);
  const store = await openStore(config.store, { backgroundCheckpoints: true });
  try {
    const ca = await EmbeddedCa.loadOrCreate(keysDir);
    const registry = new Registry(store);
    const app = buildIssuerApp({
      registry,
      source: ca,
      zone: config.zone,
      lifetimeMs: config.lifetimeMs,
      maxCertificatesPerWeek: config.maxCertificatesPerWeek,
      clock: config.clock ?? Date.now,
      logger: config.logger,
      ...(tls ? { tls } : {}),
    });
    await app.listen({ host: config.listen.host, port: config.listen.port });
    const address = app.server.address();
    const port = typeof address === "object" && address ? address.port : config.listen.port;
    const host = config.listen.host.includes(":") ? `[${config.listen.host}]` : config.listen.host;
    const url = `${tls ? "https" : "http"}://${host}:${port}`;
    config.logger.info({ url, zone: config.zone, store: store.location, keysDir, ca: "embedded" }, "issuer listening");
    if (!tls) config.logger.warn("the issuer serves plain HTTP (--plain-http): use it only on loopback or for tests");
    return {
      url,
      port,
      ca,
      registry,
      async close() {
        await app.close();
        await store.close();
      },
    };
  } catch (err) {
    await store.close();
    throw err;
  }
}

export function registerIssuerCommand(program: Command): void {
  program
    .command("issuer")
    .description("run the issuer: checks eligibility and issues certificates to boxes")
    .option("--store <url>", "SQLite file path, or postgres://...", ".data/issuer/registry.sqlite")
    .option("--keys-dir <dir>", "CA keys (0600); default: 'keys' beside the SQLite file")
    .requiredOption("--zone <zone>", "the DNS zone box names live in, e.g. iot.example.net")
    .addOption(new Option("--ca <kind>", "certificate source").choices(["embedded"]).default("embedded"))
    .option("--listen <host:port>", "address to listen on", parseListen, parseListen("127.0.0.1:8700"))
    .option("--tls-cert <file>", "serve HTTPS with this certificate chain (PEM)")
    .option("--tls-key <file>", "... and this key (PEM)")
    .option("--plain-http", "serve plain HTTP (only for tests and private networks)")
    .option("--cert-lifetime <duration>", "lifetime of embedded-CA certificates (90d, 12h, 5m)", parseDuration, DEFAULT_LIFETIME_MS)
    .option("--max-certs-per-week <n>", "certificates one label may get in a rolling week", parsePositiveInt, DEFAULT_MAX_CERTS_PER_WEEK)
    .addOption(new Option("--log-level <level>", "log level").choices(["debug", "info", "warn", "error"]).default("info"))
    .action(async (opts) => {
      const logger = pino({ level: opts.logLevel, base: { component: "issuer" } });
      const issuer = await startIssuer({
        store: opts.store,
        keysDir: opts.keysDir,
        zone: String(opts.zone).toLowerCase(),
        ca: opts.ca,
        listen: opts.listen,
        tlsCert: opts.tlsCert,
        tlsKey: opts.tlsKey,
        plainHttp: opts.plainHttp,
        lifetimeMs: opts.certLifetime,
        maxCertificatesPerWeek: opts.maxCertsPerWeek,
        logger,
      });
      const stop = () => {
        void issuer.close().then(() => process.exit(0));
      };
      process.once("SIGINT", stop);
      process.once("SIGTERM", stop);
    });
}
