/**
 * One running database (`boxcert erp`): its data folder (locked to this process), its identity, the
 * store of boxes and pairing secrets, the daily report to the issuer and the HTTPS pages and API. Built
 * from typed options (cli.ts validates the flags); nothing here reads process.env.
 */
import type { AddressInfo } from "node:net";
import type { Logger } from "pino";
import { formatHostPort, type BackoffSchedule, type HostPort } from "@boxcert/shared";
import { dataPaths, ensureDataDir, openDatabase, type Database, type Opened } from "./database.ts";
import { lockDataDir } from "./data-lock.ts";
import { JsonStore } from "./store.ts";
import { createJsonPoster } from "./http-client.ts";
import { IssuerReporter } from "./issuer-report.ts";
import { OperatorLogin } from "./web/login.ts";
import { buildErpApp } from "./web/app.ts";
import type { DatabaseKind } from "./wire.ts";
import { connectBox, type IssuedPairing } from "./pairing.ts";

export interface ErpOptions {
  dataDir: string;
  issuerUrl: URL;
  /** Extra PEM root(s) trusted for the issuer, beside the bundled ones. */
  issuerCa?: string;
  listen: HostPort;
  /** PEM chain and key; null serves plain HTTP (--plain-http). */
  tls: { cert: string; key: string } | null;
  /** The URL boxes and browsers use; `<scheme>://<listen>/` when not given. */
  publicUrl?: URL;
  /** Required when the data folder holds no database yet. */
  enterpriseCode?: string;
  kind?: DatabaseKind;
  /** The zone of the boxes' names, put in connection tokens. */
  zone?: string;
  /** The operator's password; null runs the pages without a login (--insecure-no-login). */
  password: string | null;
  logger: Logger;
  clock?: () => number;
  reportIntervalMs?: number;
  reportBackoff?: BackoffSchedule;
}

export interface RunningErp {
  /** Where it listens. */
  url: string;
  publicUrl: URL;
  port: number;
  database: Database;
  reporter: IssuerReporter;
  store: JsonStore;
  /** "Connect a box" as the IoT page does it: a one-time connection token for the next box. */
  connectBox(): Promise<IssuedPairing>;
  close(): Promise<void>;
}

function logOpened(logger: Logger, opened: Opened): void {
  const { dbUuid, kind } = opened.database.record;
  if (opened.created) logger.info({ event: "database_created", dbUuid, kind }, "a new database was created");
  // Which fields, never their values: one of them is the subscription code.
  if (opened.changed.length > 0) logger.info({ event: "database_changed", dbUuid, fields: opened.changed }, "flags changed the stored database");
}

function warnings(options: ErpOptions, publicUrl: URL, logger: Logger): void {
  if (!options.tls) logger.warn({ event: "plain_http" }, "the pages and the API are served over plain HTTP (--plain-http): only behind a TLS proxy, on loopback or for tests");
  if (options.issuerUrl.protocol === "http:") logger.warn({ event: "issuer_plaintext", issuer: options.issuerUrl.origin }, "the issuer URL is http://: reports are not encrypted (tests and private networks only)");
  if (options.password === null) logger.warn({ event: "no_login" }, "the pages run without a login (--insecure-no-login): anyone who reaches them sees the subscription code");
  if (!options.publicUrl && ["0.0.0.0", "::"].includes(options.listen.host)) {
    logger.warn({ event: "public_url_default", publicUrl: publicUrl.toString() }, "no --public-url: boxes cannot reach an address like this one; give the URL they use");
  }
}

export async function startErp(options: ErpOptions): Promise<RunningErp> {
  const clock = options.clock ?? Date.now;
  const { logger } = options;
  const paths = dataPaths(options.dataDir);
  await ensureDataDir(paths.dir);
  const unlock = await lockDataDir(paths.lock);
  const poster = createJsonPoster(options.issuerCa ? { ca: options.issuerCa } : {});
  try {
    const opened = await openDatabase(paths, { now: clock(), ...(options.enterpriseCode !== undefined ? { enterpriseCode: options.enterpriseCode } : {}), ...(options.kind ? { kind: options.kind } : {}) });
    logOpened(logger, opened);
    const { database } = opened;
    const store = await JsonStore.open(paths.store);
    const login = options.password === null ? null : await OperatorLogin.create(options.password, clock);
    // Mutable on purpose: with --listen on port 0 (tests) the default's port is known only after listen.
    const publicUrl = new URL(options.publicUrl ?? `${options.tls ? "https" : "http"}://${formatHostPort(options.listen)}/`);
    const reporter = new IssuerReporter({
      issuerUrl: options.issuerUrl,
      database,
      poster,
      clock,
      logger,
      ...(options.reportIntervalMs ? { intervalMs: options.reportIntervalMs } : {}),
      ...(options.reportBackoff ? { backoff: options.reportBackoff } : {}),
    });
    const app = await buildErpApp({ database, store, report: () => reporter.status(), publicUrl, zone: options.zone ?? null, login, clock, logger, tls: options.tls });
    await app.listen({ host: options.listen.host, port: options.listen.port });
    const port = (app.server.address() as AddressInfo).port;
    if (!options.publicUrl) publicUrl.port = String(port);
    const url = `${options.tls ? "https" : "http"}://${formatHostPort({ host: options.listen.host, port })}/`;
    logger.info({ event: "erp_listening", url, publicUrl: publicUrl.toString(), dbUuid: database.record.dbUuid, kind: database.record.kind }, "the database is listening");
    warnings(options, publicUrl, logger);
    reporter.start();
    let closing: Promise<void> | null = null;
    const close = async (): Promise<void> => {
      const reporting = reporter.stop();
      // Ends a report in flight at once (an issuer that does not answer would hold the stop 15 s).
      poster.close();
      await reporting;
      await app.close();
      await store.settled();
      await unlock();
    };
    const connect = () => connectBox({ store, database, publicUrl, zone: options.zone ?? null, clock, logger });
    return { url, publicUrl, port, database, reporter, store, connectBox: connect, close: () => (closing ??= close()) };
  } catch (err) {
    poster.close();
    await unlock();
    throw err;
  }
}
