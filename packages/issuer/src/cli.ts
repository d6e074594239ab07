/** `boxcert issuer`: wires flags to buildIssuerApp() and listens. */
import cluster from "node:cluster";
import { readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import type { Command} from "commander";
import { InvalidArgumentError, Option } from "commander";
import pino, { type Logger } from "pino";
import { asArgument, formatHostPort, isZone, LOG_LEVELS, parseLogLevel, pinoLevel, startMetricsEndpoint, type HostPort, type RunningMetricsEndpoint } from "@boxcert/shared";
import { isPostgresUrl, openStore, RegistryOperations, ZoneRecords, type Store } from "@boxcert/store";
import { issuanceRecords } from "./issuance-records.ts";
import { databaseReports } from "./database-report.ts";
import { EmbeddedCa } from "./embedded-ca.ts";
import { AcmeSource, type AcmeDirectoryOptions } from "./acme.ts";
import type { DnsServerAddress } from "./acme-dns-check.ts";
import type { CertificateSource } from "./certificate-source.ts";
import { buildIssuerApp, DEFAULT_MAX_IN_FLIGHT } from "./app.ts";
import { answerMetricsRequests, DEFAULT_WORKERS, gatherWorkerMetrics, isIssuerWorker, reportListening, superviseWorkers } from "./workers.ts";
import { NO_NOTIFIER, startZoneNotifier, type ZoneChangeNotifier } from "./dns-notify.ts";
import { parseDnsServer, parseLifetime, parseListen, parsePositiveInt } from "./options.ts";
import { IssuerMetrics, mergeSnapshots, prometheusText } from "./metrics.ts";

export const DEFAULT_LIFETIME_MS = 90 * 86_400_000;
export const DEFAULT_MAX_CERTS_PER_WEEK = 10;

export interface IssuerConfig {
  store: string;
  keysDir?: string;
  zone: string;
  ca: "embedded" | "acme";
  /** With `ca: "acme"`. */
  acme?: {
    /** In order of preference: the next is asked when one is down, rate-limited or refuses. */
    directories: AcmeDirectoryOptions[];
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
  /** POST requests in flight at most (--max-in-flight; DEFAULT_MAX_IN_FLIGHT when absent). */
  maxInFlight?: number;
  /** Serve GET /metrics (Prometheus text) here (--metrics). */
  metrics?: HostPort;
  /** dns servers told of every zone change by DNS NOTIFY (--notify-dns); with ACME, its dnsServers too. */
  notifyDns?: DnsServerAddress[];
  logger: Logger;
  clock?: () => number;
  /**
   * The cluster worker id when this is one worker of several (--workers): its metrics carry it as their
   * `worker` label and go to the primary, which serves --metrics; "issuer listening" is the primary's line.
   */
  worker?: number;
}

export interface RunningIssuer {
  url: string;
  port: number;
  /** The embedded CA (with `ca: "acme"` too: it is made anyway, for demos and private boxes). */
  ca: EmbeddedCa;
  source: CertificateSource;
  /** The store the issuer opened, and what operators do to it (tests and the demo set up customers with it). */
  store: Store;
  operations: RegistryOperations;
  /** What the process counted (served by --metrics when given). */
  metrics: IssuerMetrics;
  /** The --metrics endpoint's port, or null without --metrics. */
  metricsPort: number | null;
  close(): Promise<void>;
}

/** Where the CA keys live unless told: beside the SQLite file; a PostgreSQL store needs --keys-dir. */
export function defaultKeysDir(store: string): string {
  if (isPostgresUrl(store)) throw new Error("--keys-dir is required with a PostgreSQL store");
  return join(dirname(resolve(store)), "keys");
}

/** What the flags point at, read and checked before anything starts: one message per mistake. */
interface IssuerFiles {
  tls: { cert: string; key: string } | undefined;
  keysDir: string;
  caBundlePem: string | undefined;
}

function readIssuerFiles(config: IssuerConfig): IssuerFiles {
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
    if (!config.acme || config.acme.directories.length === 0) throw new Error("--ca acme needs --acme-directory URL and --acme-dns-server HOST:PORT");
    for (const { url } of config.acme.directories) {
      let parsed: URL | undefined;
      try {
        parsed = new URL(url);
      } catch {
        // reported below
      }
      if (!parsed || !["https:", "http:"].includes(parsed.protocol)) {
        throw new Error(`--acme-directory "${url}" is not an http(s) URL (example: https://acme-staging-v02.api.letsencrypt.org/directory)`);
      }
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
  return { tls, keysDir, caBundlePem };
}

/**
 * What must exist once before several workers start (`--workers`): the store's schema and the embedded CA's
 * keys, made here by the primary so that workers never race to make them.
 */
export async function prepareIssuer(config: IssuerConfig): Promise<void> {
  const { keysDir } = readIssuerFiles(config);
  const store = await openStore(config.store);
  await store.close();
  await EmbeddedCa.loadOrCreate(keysDir);
}

export async function startIssuer(config: IssuerConfig): Promise<RunningIssuer> {
  const { tls, keysDir, caBundlePem } = readIssuerFiles(config);
  const metrics = new IssuerMetrics(config.worker !== undefined ? { worker: String(config.worker) } : {});
  const store = await openStore(config.store, {
    backgroundCheckpoints: true,
    onConnectionError: (error) => {
      metrics.recordStoreConnectionLost();
      config.logger.warn({ event: "store_connection_lost", error: error.message }, "a store connection broke; the next request opens another");
    },
  });
  let endpoint: RunningMetricsEndpoint | null = null;
  let notifier: ZoneChangeNotifier = NO_NOTIFIER;
  const zoneChanged = () => notifier.zoneChanged();
  try {
    notifier = await startZoneNotifier({ zone: config.zone, notifyDns: config.notifyDns, acmeDnsServers: config.acme?.dnsServers, logger: config.logger });
    const ca = await EmbeddedCa.loadOrCreate(keysDir);
    const source: CertificateSource =
      config.ca === "acme" && config.acme
        ? await AcmeSource.start({
            directories: config.acme.directories,
            keysDir,
            zoneRecords: new ZoneRecords(store.db),
            dnsServers: config.acme.dnsServers,
            zoneChanged,
            logger: config.logger,
            metrics,
            ...(caBundlePem ? { caBundlePem } : {}),
            ...(config.acme.contact ? { contact: config.acme.contact } : {}),
          })
        : ca;
    const app = buildIssuerApp({
      records: issuanceRecords(store),
      databases: databaseReports(store),
      source,
      zone: config.zone,
      lifetimeMs: config.lifetimeMs,
      maxCertificatesPerWeek: config.maxCertificatesPerWeek,
      clock: config.clock ?? Date.now,
      logger: config.logger,
      zoneChanged,
      ...(tls ? { tls } : {}),
      ...(config.maxInFlight !== undefined ? { maxInFlight: config.maxInFlight } : {}),
      metrics,
    });
    if (config.worker !== undefined) answerMetricsRequests(() => metrics.snapshot());
    else if (config.metrics) {
      endpoint = await startMetricsEndpoint({ ...config.metrics, text: () => prometheusText(metrics.snapshot()), logger: config.logger });
      config.logger.info({ metrics: formatHostPort({ host: config.metrics.host, port: endpoint.port }) }, "issuer metrics at GET /metrics");
    }
    await app.listen({ host: config.listen.host, port: config.listen.port });
    const address = app.server.address();
    const port = typeof address === "object" && address ? address.port : config.listen.port;
    const url = `${tls ? "https" : "http"}://${formatHostPort({ host: config.listen.host, port })}`;
    const worker = config.worker !== undefined;
    config.logger[worker ? "debug" : "info"]({ url, zone: config.zone, store: store.location, keysDir, ca: source.name }, worker ? "issuer worker started" : "issuer listening");
    if (!tls) config.logger.warn("the issuer serves plain HTTP (--plain-http): use it only on loopback or for tests");
    return {
      url,
      port,
      ca,
      source,
      store,
      operations: new RegistryOperations(store),
      metrics,
      metricsPort: endpoint?.port ?? null,
      async close() {
        await Promise.all([app.close(), endpoint?.close()]);
        metrics.close();
        await app.close();
        await notifier.close();
        await store.close();
      },
    };
  } catch (err) {
    await endpoint?.close();
    metrics.close();
    await notifier.close();
    await store.close();
    throw err;
  }
}

interface DirectoryFlags {
  url: string;
  eabKid?: string;
  eabHmac?: string;
}

/** `--acme-eab-*` belong to the `--acme-directory` before them: commander calls the parsers in argv order. */
function directoryFlagParsers() {
  const directories: DirectoryFlags[] = [];
  const lastDirectory = (flag: string): DirectoryFlags => {
    const last = directories.at(-1);
    if (!last) throw new InvalidArgumentError(`${flag} goes after the --acme-directory it is for`);
    return last;
  };
  return {
    directories,
    directory(url: string): DirectoryFlags[] {
      directories.push({ url });
      return directories;
    },
    eabKid(kid: string): string {
      const last = lastDirectory("--acme-eab-kid");
      if (last.eabKid) throw new InvalidArgumentError(`--acme-directory ${last.url} has two --acme-eab-kid`);
      if (!/^[\x21-\x7e]{1,256}$/.test(kid)) throw new InvalidArgumentError("the EAB key identifier is 1-256 printable characters");
      last.eabKid = kid;
      return kid;
    },
    eabHmac(key: string): string {
      const last = lastDirectory("--acme-eab-hmac");
      if (last.eabHmac) throw new InvalidArgumentError(`--acme-directory ${last.url} has two EAB HMAC keys`);
      last.eabHmac = parseHmacKey(key.trim(), "--acme-eab-hmac");
      return "(set)";
    },
    eabHmacFile(file: string): string {
      const last = lastDirectory("--acme-eab-hmac-file");
      if (last.eabHmac) throw new InvalidArgumentError(`--acme-directory ${last.url} has two EAB HMAC keys`);
      let text: string;
      try {
        text = readFileSync(file, "utf8");
      } catch (err) {
        throw new InvalidArgumentError(`reading ${file}: ${(err as Error).message}`);
      }
      last.eabHmac = parseHmacKey(text.trim(), `--acme-eab-hmac-file ${file}`);
      return file;
    },
  };
}

/** The HMAC key as CAs hand it out: base64url (padding and standard base64 accepted), at least 128 bits. */
function parseHmacKey(value: string, flag: string): string {
  if (!/^[A-Za-z0-9_\-+/]+={0,2}$/.test(value) || Buffer.from(value, "base64url").length < 16) {
    throw new InvalidArgumentError(`${flag}: the EAB HMAC key is base64url, at least 16 bytes`);
  }
  return value.replace(/=+$/, "").replace(/\+/g, "-").replace(/\//g, "_");
}

export function acmeDirectoriesFromFlags(flags: DirectoryFlags[]): AcmeDirectoryOptions[] {
  return flags.map((d) => {
    if (Boolean(d.eabKid) !== Boolean(d.eabHmac)) {
      throw new Error(`--acme-directory ${d.url}: --acme-eab-kid and --acme-eab-hmac (or --acme-eab-hmac-file) go together`);
    }
    return d.eabKid && d.eabHmac ? { url: d.url, eab: { kid: d.eabKid, hmacKey: d.eabHmac } } : { url: d.url };
  });
}

export function registerIssuerCommand(program: Command): void {
  const acmeFlags = directoryFlagParsers();
  program
    .command("issuer")
    .description("run the issuer: checks eligibility and issues certificates to boxes")
    .option("--store <url>", "SQLite file path, or postgres://...", ".data/issuer/registry.sqlite")
    .option("--keys-dir <dir>", "CA keys (0600); default: 'keys' beside the SQLite file")
    .requiredOption("--zone <zone>", "the DNS zone box names live in, e.g. iot.example.net")
    .addOption(new Option("--ca <kind>", "certificate source").choices(["embedded", "acme"]).default("embedded"))
    .option("--acme-directory <url>", "with --ca acme: an ACME directory URL (repeatable: tried in order, the next when one is down or rate-limits)", acmeFlags.directory)
    .option("--acme-eab-kid <kid>", "external account binding key identifier for the --acme-directory before it", acmeFlags.eabKid)
    .option("--acme-eab-hmac <key>", "... and its HMAC key, base64url (visible in ps: prefer --acme-eab-hmac-file)", acmeFlags.eabHmac)
    .option("--acme-eab-hmac-file <file>", "... the HMAC key read from a file (0600)", acmeFlags.eabHmacFile)
    .option("--acme-ca-bundle <file>", "with --ca acme: CA bundle (PEM) trusted for the directories' own HTTPS (test CAs such as Pebble)")
    .option("--acme-contact <mail>", "with --ca acme: contact address of the ACME account")
    .option("--acme-dns-server <host:port>", "with --ca acme: an authoritative server of the zone, asked over TCP before the CA validates (repeatable)", collectDnsServer, [] as DnsServerAddress[])
    .option("--notify-dns <host:port>", "a boxcert dns told of every zone change by DNS NOTIFY, at once (repeatable; the --acme-dns-server ones are told too)", collectDnsServer, [] as DnsServerAddress[])
    .option("--listen <host:port>", "address to listen on", asArgument(parseListen), parseListen("127.0.0.1:8700"))
    .option("--tls-cert <file>", "serve HTTPS with this certificate chain (PEM)")
    .option("--tls-key <file>", "... and this key (PEM)")
    .option("--plain-http", "serve plain HTTP (only for tests and private networks)")
    .option("--cert-lifetime <duration>", "lifetime of embedded-CA certificates (90d, 12h, 5m)", asArgument(parseLifetime), DEFAULT_LIFETIME_MS)
    .option("--max-certs-per-week <n>", "certificates one label may get in a rolling week", parsePositiveInt, DEFAULT_MAX_CERTS_PER_WEEK)
    .option("--max-in-flight <n>", "requests in flight at most; beyond, 503 busy with Retry-After at once", parsePositiveInt, DEFAULT_MAX_IN_FLIGHT)
    .option("--metrics <host:port>", "serve GET /metrics (Prometheus text) on this address", asArgument(parseListen))
    .addOption(new Option("--log-level <level>", `${LOG_LEVELS.join(", ")} (warn is read as warning)`).argParser(asArgument(parseLogLevel)).default("info"))
    .option("--workers <n>", "worker processes sharing the port (one per core by default; 1: a single process)", parsePositiveInt, DEFAULT_WORKERS)
    .action(async (opts) => {
      const workers: number = opts.workers;
      const worker = workers > 1 && isIssuerWorker();
      const logger = pino({ level: pinoLevel(opts.logLevel), base: { component: "issuer", ...(worker ? { worker: cluster.worker?.id } : {}) } });
      const config: IssuerConfig = {
        store: opts.store,
        keysDir: opts.keysDir,
        zone: String(opts.zone).toLowerCase(),
        ca: opts.ca,
        ...(opts.ca === "acme" && acmeFlags.directories.length > 0
          ? { acme: { directories: acmeDirectoriesFromFlags(acmeFlags.directories), caBundle: opts.acmeCaBundle, contact: opts.acmeContact, dnsServers: opts.acmeDnsServer } }
          : {}),
        listen: opts.listen,
        tlsCert: opts.tlsCert,
        tlsKey: opts.tlsKey,
        plainHttp: opts.plainHttp,
        lifetimeMs: opts.certLifetime,
        maxCertificatesPerWeek: opts.maxCertsPerWeek,
        maxInFlight: opts.maxInFlight,
        ...(opts.metrics ? { metrics: opts.metrics } : {}),
        notifyDns: opts.notifyDns,
        logger,
      };
      if (workers > 1 && !worker) {
        await prepareIssuer(config);
        let endpoint: RunningMetricsEndpoint | null = null;
        await superviseWorkers({
          workers,
          logger,
          onListening: async (url) => {
            logger.info({ url, zone: config.zone, workers }, "issuer listening");
            if (!config.metrics) return;
            // The primary serves the workers' metrics, summed (each worker's own gauges apart, by `worker`).
            endpoint = await startMetricsEndpoint({ ...config.metrics, text: async () => prometheusText(mergeSnapshots(await gatherWorkerMetrics())), logger });
            logger.info({ metrics: formatHostPort({ host: config.metrics.host, port: endpoint.port }) }, "issuer metrics at GET /metrics");
          },
        });
        await (endpoint as RunningMetricsEndpoint | null)?.close();
        return;
      }
      const issuer = await startIssuer({ ...config, ...(worker ? { worker: cluster.worker!.id } : {}) });
      if (worker) reportListening(issuer.url);
      const stop = () => {
        void issuer.close().then(() => process.exit(0));
      };
      process.once("SIGINT", stop);
      process.once("SIGTERM", stop);
    });
}

function collectDnsServer(value: string, previous: DnsServerAddress[]): DnsServerAddress[] {
  return [...previous, asArgument(parseDnsServer)(value)];
}
