/**
 * buildBox(options): the whole box agent, wired, without listening. start() opens the data folder, binds
 * the two listeners and starts the renewal schedule; stop() undoes all of it. The parts are made in the
 * order they need each other (assemble): the served-certificate holder, the agent that sets it, the
 * registration with the database (after every check), the scheduler that runs the agent, the listeners
 * that follow the holder, then the routes over all of them. Tests drive it directly with real sockets on
 * port 0 and an injected clock and timers; nothing here reads process.env.
 */
import { isIP } from "node:net";
import { readFile } from "node:fs/promises";
import type { Logger } from "pino";
import { dataPaths, ensureDataDir } from "./data-dir.ts";
import { loadOrCreateConfig, pairedOriginOf, updateConfig } from "./config.ts";
import type { BoxConfig, LogLevel } from "./config.ts";
import type { DataPaths } from "./data-dir.ts";
import type { BoxIdentity } from "./certificate/identity.ts";
import { loadOrCreateIdentity } from "./certificate/identity.ts";
import { createIssuerClient } from "./certificate/issuer-client.ts";
import type { IssuerClient } from "./certificate/issuer-client.ts";
import { readCertificateFile } from "./certificate/certificate-file.ts";
import type { StoredCertificate } from "./certificate/certificate-file.ts";
import { removePendingKey, tlsKeyFromPem } from "./certificate/tls-key.ts";
import { BoxAgent } from "./certificate/agent.ts";
import { CHECK_INTERVAL_MS, RenewalScheduler } from "./certificate/renewal.ts";
import type { CheckTrigger } from "./certificate/check.ts";
import { createServers, ServedTls } from "./web/server.ts";
import type { BoxServers, TlsMaterial } from "./web/server.ts";
import { registerWeb } from "./web/app.ts";
import { newWebState } from "./web/page-kit.ts";
import type { WebState } from "./web/page-kit.ts";
import type { WebDeps } from "./web/page-kit.ts";
import { diagnosticsTarget, runDiagnostics } from "./diagnostics/index.ts";
import type { DiagnosticsReport } from "./diagnostics/index.ts";
import { buildView, toApiStatus } from "./web/status.ts";
import type { BoxStatus, BoxView } from "./web/status.ts";
import { pinoLevel } from "@boxcert/shared";
import type { BackoffSchedule } from "@boxcert/shared";
import { DatabaseRegistration } from "./database/registration.ts";
import type { RegisteredFacts } from "./database/registration.ts";
import { httpsUrl } from "./web/status.ts";
import { BOX_VERSION } from "./version.ts";
import { createBoxLog } from "./logs.ts";
import type { BoxLog } from "./logs.ts";
import { detectLanAddress } from "./network.ts";
import { systemClock, systemTimers } from "./clock.ts";
import type { Clock, Timers } from "./clock.ts";

export interface BoxOptions {
  dataDir: string;
  /** The issuer's base URL; http:// is accepted with a warning. */
  issuerUrl: string;
  /** Extra CA certificates (PEM) trusted for an https:// issuer and the chains it hands out, besides the bundled roots. */
  issuerCa?: string;
  /** Extra CA certificates (PEM) trusted for the database's TLS (`--database-ca`), besides the bundled roots. */
  databaseCa?: string;
  /** The retry schedule of a failed registration with the database (RENEWAL_BACKOFF). */
  registrationBackoff?: BackoffSchedule;
  /** The zone the box must be enrolled in (`--zone`, the vendor's pin); saved as config.json's zonePin at start. */
  zone?: string;
  httpPort: number;
  httpsPort: number;
  /** Where to listen, e.g. 0.0.0.0 or 127.0.0.1. */
  host: string;
  /** The LAN address advertised in the HTTPS name; detected when absent. */
  ip?: string;
  /** Saved in config.json when given. */
  name?: string;
  /** Saved in config.json when given. */
  logLevel?: LogLevel;
  clock?: Clock;
  timers?: Timers;
  /** For the renewal backoff's jitter. */
  random?: () => number;
  /** Also log to stdout (the command line does; tests do not). */
  logToStdout?: boolean;
  /** Per-request timeout towards the issuer (15 s). */
  issuerTimeoutMs?: number;
  /** How often the periodic check asks the issuer even for a valid certificate (6 hours; CHECK_INTERVAL_MS). */
  checkIntervalMs?: number;
  /** The LAN resolvers the diagnostics ask (`HOST[:PORT]`); default: the system's. */
  lanResolvers?: string[];
  /** The zone's authoritative servers for the diagnostics (`HOST:PORT`); default: the zone's NS records. */
  zoneDns?: string[];
}

/** The diagnostics run at most this often; in between, the last report is shown. */
export const DIAGNOSTICS_MIN_INTERVAL_MS = 10_000;

export interface Box {
  start(): Promise<{ httpPort: number; httpsPort: number }>;
  stop(): Promise<void>;
  /**
   * Runs a check now (or joins the running one) and returns the status after it and after the
   * registration with the database it may start. "demand" (the default) follows the homepage's rule (no
   * request for a valid certificate that is not due, unless the box shows an error); "periodic" is the
   * timed check's (asks the issuer: a refresh).
   */
  checkNow(trigger?: CheckTrigger): Promise<BoxStatus>;
  status(): BoxStatus;
}

interface Running {
  log: BoxLog;
  logger: Logger;
  client: IssuerClient;
  agent: BoxAgent;
  registration: DatabaseRegistration;
  scheduler: RenewalScheduler;
  servers: BoxServers;
  web: WebState;
  view(): BoxView;
}

/** The key https.pem holds is also the pending one: a crash came between saving and removing it. */
async function finishInterruptedSave(pendingKeyPath: string, saved: StoredCertificate | null): Promise<boolean> {
  if (!saved) return false;
  try {
    return tlsKeyFromPem(await readFile(pendingKeyPath, "utf8")).spki.equals(saved.key.spki);
  } catch {
    return false;
  }
}

function tlsMaterial(certificate: StoredCertificate): TlsMaterial {
  return { keyPem: certificate.key.pem, chainPem: certificate.chainPem };
}

function validateOptions(options: BoxOptions): string {
  const ip = options.ip ?? detectLanAddress();
  if (isIP(ip) === 0) throw new Error(`not an IP address: "${ip}"`);
  if (options.checkIntervalMs !== undefined && !(Number.isFinite(options.checkIntervalMs) && options.checkIntervalMs > 0)) {
    throw new Error(`the check interval must be a positive number of milliseconds, not ${options.checkIntervalMs}`);
  }
  return ip;
}

/**
 * The data folder and config.json, with the name and log level given on the command line saved in it, and
 * the zone pin set to this start's --zone (cleared without it: the flag, not the file, is the vendor's word).
 */
async function prepareConfig(paths: DataPaths, options: BoxOptions): Promise<BoxConfig> {
  await ensureDataDir(paths);
  const config = await loadOrCreateConfig(paths, options.name);
  const patch: Partial<BoxConfig> = {};
  if (options.name !== undefined && options.name !== config.name) patch.name = options.name;
  if (options.logLevel !== undefined && options.logLevel !== config.logLevel) patch.logLevel = options.logLevel;
  if ((options.zone ?? null) !== config.zonePin) patch.zonePin = options.zone ?? null;
  return Object.keys(patch).length > 0 ? updateConfig(paths, patch) : config;
}

function connectIssuer(options: BoxOptions, identity: BoxIdentity, logger: Logger): IssuerClient {
  const client = createIssuerClient({
    url: options.issuerUrl,
    identity,
    ...(options.issuerCa !== undefined ? { ca: options.issuerCa } : {}),
    ...(options.issuerTimeoutMs !== undefined ? { timeoutMs: options.issuerTimeoutMs } : {}),
  });
  if (client.plaintext) {
    logger.warn({ event: "issuer_plaintext", issuer: client.url.origin }, "the issuer URL is http://: requests are not encrypted (tests and private networks only)");
  }
  if (!client.chainTrust) {
    logger.warn(
      { event: "chain_unverified", issuer: client.url.origin },
      "the issuer is http:// and no --issuer-ca is given: the chains it hands out are saved without verifying them against a trusted root (tests only)",
    );
  }
  return client;
}

/** A token's zone that the --zone pin overrides (the token came before the pin): said once, at start. */
function warnZoneOverride(config: BoxConfig, logger: Logger): void {
  if (config.zonePin === null || config.expectedZone === null || config.zonePin === config.expectedZone) return;
  logger.warn(
    { event: "zone_pin_overrides", zonePin: config.zonePin, expectedZone: config.expectedZone },
    `--zone ${config.zonePin} wins over the zone ${config.expectedZone} a connection token named`,
  );
}

/** The certificate https.pem holds, served from the start; a pending key left by an interrupted save is removed. */
async function readSavedCertificate(paths: DataPaths, logger: Logger): Promise<StoredCertificate | null> {
  const file = await readCertificateFile(paths.https);
  const saved = file.kind === "present" ? file.certificate : null;
  if (file.kind === "unreadable") logger.error({ event: "certificate_unreadable", detail: file.error }, "https.pem cannot be used");
  if (await finishInterruptedSave(paths.pendingKey, saved)) {
    await removePendingKey(paths);
    logger.info({ event: "pending_key_removed" }, "removed the pending TLS key left by an interrupted save");
  }
  return saved;
}

/**
 * A pino child keeps the level it was made with: set it on the one the box logs through. The line goes
 * out under whichever of the two levels shows info, so a change to "warning" is logged too.
 */
function applyLogLevel(logger: Logger, level: LogLevel): void {
  const apply = (): void => {
    logger.level = pinoLevel(level);
  };
  const tell = (): void => logger.info({ event: "log_level", level }, "log level changed");
  if (logger.isLevelEnabled("info")) {
    tell();
    apply();
  } else {
    apply();
    tell();
  }
}

/** The diagnostics, run at most every DIAGNOSTICS_MIN_INTERVAL_MS: in between, the last report (or the running one). */
function diagnosticsCache(clock: Clock, run: () => Promise<DiagnosticsReport>): () => Promise<DiagnosticsReport> {
  let last: { at: number; report: Promise<DiagnosticsReport> } | null = null;
  return () => {
    const now = clock();
    if (last && now - last.at < DIAGNOSTICS_MIN_INTERVAL_MS) return last.report;
    const report = run();
    last = { at: now, report };
    report.catch(() => {
      if (last?.report === report) last = null;
    });
    return report;
  };
}

interface Parts {
  options: BoxOptions;
  ip: string;
  paths: DataPaths;
  clock: Clock;
  timers: Timers;
  config: BoxConfig;
  identity: BoxIdentity;
  client: IssuerClient;
  logger: Logger;
  saved: StoredCertificate | null;
}

/** Makes the agent, the scheduler and the listeners (routes registered, not listening yet). */
async function assemble(parts: Parts): Promise<Omit<Running, "log">> {
  const { options, ip, paths, clock, timers, config, logger, client } = parts;
  const tls = new ServedTls(parts.saved ? tlsMaterial(parts.saved) : null);
  const agent = new BoxAgent({
    paths,
    config,
    identity: parts.identity,
    client,
    clock,
    logger,
    served: parts.saved,
    serve: (certificate) => tls.set(tlsMaterial(certificate)),
    onLogLevel: (changed) => applyLogLevel(logger, changed.logLevel),
  });
  const facts = (): RegisteredFacts => {
    const current = view();
    return { name: current.name, ip, httpsUrl: httpsUrl(current.https), certificateExpiry: current.certificate.notAfter, version: BOX_VERSION, httpPort: servers.httpPort };
  };
  const registration = new DatabaseRegistration({
    identity: parts.identity,
    clock,
    timers,
    logger,
    ...(options.random ? { random: options.random } : {}),
    ...(options.registrationBackoff ? { backoff: options.registrationBackoff } : {}),
    ...(options.databaseCa !== undefined ? { ca: options.databaseCa } : {}),
    config: () => agent.refreshConfig(),
    changeConfig: async (update) => {
      await updateConfig(paths, update);
      return agent.refreshConfig();
    },
    facts,
  });
  const scheduler = new RenewalScheduler({
    check: async (trigger) => {
      const result = await agent.check(trigger);
      // Every check may have changed a registered fact (the certificate) or brought a pairing secret.
      registration.nudge();
      return result;
    },
    clock,
    timers,
    ...(options.checkIntervalMs !== undefined ? { intervalMs: options.checkIntervalMs } : {}),
    ...(options.random ? { random: options.random } : {}),
    onCrash: (err) => logger.error({ event: "check_crashed", err }, "the certificate check crashed"),
  });
  const servers = createServers({ host: options.host, httpPort: options.httpPort, httpsPort: options.httpsPort, logger, tls });
  const view = (): BoxView => {
    const current = agent.config;
    return buildView({
      name: current.name,
      identifier: current.identifier,
      ip,
      server: current.server,
      hasCredential: current.dbUuid !== null && current.enterpriseCode !== null,
      logLevel: current.logLevel,
      httpPort: servers.httpPort,
      httpsPort: servers.httpsPort,
      certificate: agent.served?.info ?? null,
      error: agent.error,
      loading: agent.loading,
      checking: scheduler.running,
      lastCheck: scheduler.lastCheck,
      nextCheck: scheduler.nextCheckAt,
      now: clock(),
      database: registration.view(current),
    });
  };
  const diagnostics = diagnosticsCache(clock, () =>
    runDiagnostics({
      ...diagnosticsTarget(view()),
      issuerUrl: options.issuerUrl,
      issuerCa: options.issuerCa,
      ...(options.lanResolvers && options.lanResolvers.length > 0 ? { lanResolvers: options.lanResolvers } : {}),
      ...(options.zoneDns && options.zoneDns.length > 0 ? { authoritative: options.zoneDns } : {}),
    }),
  );
  const web: WebDeps = {
    view,
    clock,
    dataDir: paths.dir,
    logFile: paths.log,
    issuerUrl: options.issuerUrl,
    logger,
    homepageOpened: async () => {
      await agent.refreshConfig();
      scheduler.homepageOpened();
    },
    checkAgain: () => void scheduler.run(),
    config: () => agent.config,
    changeConfig: async (patch) => {
      await updateConfig(paths, patch);
      return agent.refreshConfig();
    },
    pairedOrigin: () => pairedOriginOf(agent.config),
    served: () => agent.served,
    diagnostics,
  };
  const state = newWebState(clock, logger);
  await servers.register((app, scheme) => registerWeb(app, { deps: web, scheme, state }));
  return { logger, client, agent, registration, scheduler, servers, view, web: state };
}

export function buildBox(options: BoxOptions): Box {
  const clock = options.clock ?? systemClock;
  const timers = options.timers ?? systemTimers;
  const paths = dataPaths(options.dataDir);
  const ip = validateOptions(options);
  let running: Running | null = null;

  function status(): BoxStatus {
    if (!running) throw new Error("the box is not started");
    return toApiStatus(running.view());
  }

  async function start(): Promise<{ httpPort: number; httpsPort: number }> {
    if (running) throw new Error("the box is already started");
    const config = await prepareConfig(paths, options);
    const identity = await loadOrCreateIdentity(paths);
    const log = createBoxLog({ file: paths.log, level: config.logLevel, stdout: options.logToStdout ?? false });
    const logger = log.logger.child({ box: config.identifier });
    let client: IssuerClient | null = null;
    try {
      client = connectIssuer(options, identity, logger);
      warnZoneOverride(config, logger);
      const saved = await readSavedCertificate(paths, logger);
      const parts = await assemble({ options, ip, paths, clock, timers, config, identity, client, logger, saved });
      const ports = await parts.servers.listen();
      running = { log, ...parts };
      logger.info(
        {
          event: "started",
          ip,
          ...ports,
          issuer: client.url.origin,
          expectedZone: config.zonePin ?? config.expectedZone,
          pairedWith: pairedOriginOf(config),
          checkIntervalMs: options.checkIntervalMs ?? CHECK_INTERVAL_MS,
          certificate: saved ? saved.info.serial : null,
        },
        "box started",
      );
      parts.scheduler.start();
      return ports;
    } catch (err) {
      client?.close();
      log.close();
      throw err;
    }
  }

  async function stop(): Promise<void> {
    const current = running;
    if (!current) return;
    await current.scheduler.stop();
    await current.registration.stop();
    await current.servers.close();
    current.web.requestLog.close();
    current.web.posLog.close();
    current.client.close();
    current.logger.info({ event: "stopped" }, "box stopped");
    running = null;
    current.log.close();
  }

  async function checkNow(trigger: CheckTrigger = "demand"): Promise<BoxStatus> {
    if (!running) throw new Error("the box is not started");
    await running.scheduler.run(trigger);
    await running.registration.settled();
    return status();
  }

  return { start, stop, checkNow, status };
}
