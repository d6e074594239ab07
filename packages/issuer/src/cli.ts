/** `boxcert issuer`: wires flags to buildIssuerApp() and listens. */
import { readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import type { Command} from "commander";
import { InvalidArgumentError, Option } from "commander";
import pino, { type Logger } from "pino";
import { isZone } from "@boxcert/shared";
import { openStore, isPostgresUrl } from "./store/db.ts";
import { Registry } from "./registry.ts";
import { EmbeddedCa } from "./embedded-ca.ts";
import { AcmeSource } from "./acme.ts";
import { parseDnsServer, type DnsServerAddress } from "./acme-dns-check.ts";
import { ZoneRecords } from "./zone-records.ts";
import type { CertificateSource } from "./certificate-source.ts";
import { buildIssuerApp } from "./app.ts";
import { parseDuration, parseListen, parsePositiveInt } from "./options.ts";

export const DEFAULT_LIFETIME_MS = 90 * 86_400_000;
export const DEFAULT_MAX_CERTS_PER_WEEK = 10;

export interface IssuerConfig {
  store: string;
  keysDir?: string;
  zone: string;
  ca: "embedded" | "acme";
  /** With `ca: "acme"`. */
  acme?: {
    directoryUrl: string;
    caBundle?: string;
    contact?: string;
    dnsServers: DnsServerAddress[];
  };
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
  /** The embedded CA (with `ca: "acme"` too: it is made anyway, for demos and private boxes). */
  ca: EmbeddedCa;
  source: CertificateSource;
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
  let caBundlePem: string | undefined;
  if (config.ca === "acme") {
    if (!config.acme) throw new Error("--ca acme needs --acme-directory URL and --acme-dns-server HOST:PORT");
    try {
      new URL(config.acme.directoryUrl);
    } catch {
      throw new Error(`--acme-directory "${config.acme.directoryUrl}" is not a URL (example: https://acme-staging-v02.api.letsencrypt.org/directory)`);
    }
    if (config.acme.dnsServers.length === 0) throw new Error("--ca acme needs --acme-dns-server HOST:PORT (the zone's authoritative dns, asked before the CA validates)");
    if (config.acme.caBundle) {
      try {
        caBundlePem = readFileSync(config.acme.caBundle, "utf8");
      } catch (err) {
        throw new Error(`reading --acme-ca-bundle: ${(err as Error).message}`, { cause: err });
      }
    }
  }
  const store = await openStore(config.store, { backgroundCheckpoints: true });
  try {
    const ca = await EmbeddedCa.loadOrCreate(keysDir);
    const registry = new Registry(store);
    const source: CertificateSource =
      config.ca === "acme" && config.acme
        ? await AcmeSource.start({
            directoryUrl: config.acme.directoryUrl,
            keysDir,
            zoneRecords: new ZoneRecords(store.db),
            dnsServers: config.acme.dnsServers,
            logger: config.logger,
            ...(caBundlePem ? { caBundlePem } : {}),
            ...(config.acme.contact ? { contact: config.acme.contact } : {}),
          })
        : ca;
    const app = buildIssuerApp({
      registry,
      source,
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
    config.logger.info({ url, zone: config.zone, store: store.location, keysDir, ca: source.name }, "issuer listening");
    if (!tls) config.logger.warn("the issuer serves plain HTTP (--plain-http): use it only on loopback or for tests");
    return {
      url,
      port,
      ca,
      source,
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
    .addOption(new Option("--ca <kind>", "certificate source").choices(["embedded", "acme"]).default("embedded"))
    .option("--acme-directory <url>", "with --ca acme: the ACME directory URL")
    .option("--acme-ca-bundle <file>", "with --ca acme: CA bundle (PEM) trusted for the directory's own HTTPS (test CAs such as Pebble)")
    .option("--acme-contact <mail>", "with --ca acme: contact address of the ACME account")
    .option("--acme-dns-server <host:port>", "with --ca acme: an authoritative server of the zone, asked over TCP before the CA validates (repeatable)", collectDnsServer, [] as DnsServerAddress[])
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
        ...(opts.ca === "acme" && opts.acmeDirectory
          ? { acme: { directoryUrl: opts.acmeDirectory, caBundle: opts.acmeCaBundle, contact: opts.acmeContact, dnsServers: opts.acmeDnsServer } }
          : {}),
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

function collectDnsServer(value: string, previous: DnsServerAddress[]): DnsServerAddress[] {
  try {
    return [...previous, parseDnsServer(value)];
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
}
