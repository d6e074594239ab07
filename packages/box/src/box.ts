/**
 * buildBox(options): the whole box agent, wired, without listening. start() opens the data folder, binds
 * the two listeners and starts the renewal schedule; stop() undoes all of it. Tests drive it directly
 * with real sockets on port 0 and an injected clock and timers; nothing here reads process.env.
 */
import { isIP } from "node:net";
import { readFile } from "node:fs/promises";
import type { Logger } from "pino";
import { dataPaths, ensureDataDir } from "./data-dir.ts";
import { loadOrCreateConfig, updateConfig } from "./config.ts";
import type { BoxConfig, LogLevel } from "./config.ts";
import { loadOrCreateIdentity } from "./certificate/identity.ts";
import { createIssuerClient } from "./certificate/issuer-client.ts";
import type { IssuerClient } from "./certificate/issuer-client.ts";
import { readCertificateFile } from "./certificate/certificate-file.ts";
import type { StoredCertificate } from "./certificate/certificate-file.ts";
import { removePendingKey, tlsKeyFromPem } from "./certificate/tls-key.ts";
import { BoxAgent } from "./certificate/agent.ts";
import { CHECK_INTERVAL_MS, RenewalScheduler } from "./certificate/renewal.ts";
import type { CheckTrigger } from "./certificate/check.ts";
import { startServers } from "./web/server.ts";
import type { BoxServers } from "./web/server.ts";
import { newRouteState, registerRoutes } from "./web/routes.ts";
import { diagnosticsTarget, runDiagnostics } from "./diagnostics/index.ts";
import type { DiagnosticsReport } from "./diagnostics/index.ts";
import { buildStatus } from "./web/status.ts";
import type { BoxStatus } from "./web/status.ts";
import { pinoLevel } from "@boxcert/shared";
import { createBoxLog } from "./logs.ts";
import type { BoxLog } from "./logs.ts";
import { detectLanAddress } from "./network.ts";
import { systemClock, systemTimers } from "./clock.ts";
import type { Clock, Timers } from "./clock.ts";

export interface BoxOptions {
  dataDir: string;
  /** The issuer's base URL; http:// is accepted with a warning. */
  issuerUrl: string;
  /** Extra CA certificates (PEM) trusted for an https:// issuer, besides the bundled roots. */
  issuerCa?: string;
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
   * Runs a check now (or joins the running one) and returns the status after it. "demand" (the default)
   * follows the homepage's rule (no request for a valid certificate that is not due, unless the box shows
   * an error); "periodic" is the timed check's (asks the issuer: a refresh).
   */
  checkNow(trigger?: CheckTrigger): Promise<BoxStatus>;
  status(): BoxStatus;
}

interface Running {
  log: BoxLog;
  logger: Logger;
  client: IssuerClient;
  agent: BoxAgent;
  scheduler: RenewalScheduler;
  servers: BoxServers;
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

export function buildBox(options: BoxOptions): Box {
  const clock = options.clock ?? systemClock;
  const timers = options.timers ?? systemTimers;
  const paths = dataPaths(options.dataDir);
  const ip = options.ip ?? detectLanAddress();
  if (isIP(ip) === 0) throw new Error(`not an IP address: "${ip}"`);
  if (options.checkIntervalMs !== undefined && !(Number.isFinite(options.checkIntervalMs) && options.checkIntervalMs > 0)) {
    throw new Error(`the check interval must be a positive number of milliseconds, not ${options.checkIntervalMs}`);
  }
  let running: Running | null = null;
  let lastDiagnostics: { at: number; report: Promise<DiagnosticsReport> } | null = null;

  /** The last report while it is younger than 10 s (or still running); else a new run. */
  function diagnostics(): Promise<DiagnosticsReport> {
    const now = clock();
    if (lastDiagnostics && now - lastDiagnostics.at < DIAGNOSTICS_MIN_INTERVAL_MS) return lastDiagnostics.report;
    const target = diagnosticsTarget(status());
    const report = runDiagnostics({
      ...target,
      issuerUrl: options.issuerUrl,
      issuerCa: options.issuerCa,
      ...(options.lanResolvers && options.lanResolvers.length > 0 ? { lanResolvers: options.lanResolvers } : {}),
      ...(options.zoneDns && options.zoneDns.length > 0 ? { authoritative: options.zoneDns } : {}),
    });
    lastDiagnostics = { at: now, report };
    report.catch(() => {
      if (lastDiagnostics?.report === report) lastDiagnostics = null;
    });
    return report;
  }

  function status(): BoxStatus {
    if (!running) throw new Error("the box is not started");
    const { agent, scheduler, servers } = running;
    const config: BoxConfig = agent.config;
    return buildStatus({
      name: config.name,
      identifier: config.identifier,
      ip,
      server: config.server,
      hasCredential: config.dbUuid !== null && config.enterpriseCode !== null,
      logLevel: config.logLevel,
      httpPort: servers.httpPort,
      httpsPort: servers.httpsPort,
      certificate: agent.served?.info ?? null,
      error: agent.error,
      loading: agent.loading,
      checking: scheduler.running,
      lastCheck: scheduler.lastCheck,
      nextCheck: scheduler.nextCheckAt,
      now: clock(),
    });
  }

  async function start(): Promise<{ httpPort: number; httpsPort: number }> {
    if (running) throw new Error("the box is already started");
    await ensureDataDir(paths);
    let config = await loadOrCreateConfig(paths, options.name);
    const patch: Partial<BoxConfig> = {};
    if (options.name !== undefined && options.name !== config.name) patch.name = options.name;
    if (options.logLevel !== undefined && options.logLevel !== config.logLevel) patch.logLevel = options.logLevel;
    if (Object.keys(patch).length > 0) config = await updateConfig(paths, patch);
    const identity = await loadOrCreateIdentity(paths);

    const log = createBoxLog({ file: paths.log, level: config.logLevel, stdout: options.logToStdout ?? false });
    const logger = log.logger.child({ box: config.identifier });
    let client: IssuerClient | null = null;
    try {
      client = createIssuerClient({
        url: options.issuerUrl,
        identity,
        ...(options.issuerCa !== undefined ? { ca: options.issuerCa } : {}),
        ...(options.issuerTimeoutMs !== undefined ? { timeoutMs: options.issuerTimeoutMs } : {}),
      });
      if (client.plaintext) {
        logger.warn({ event: "issuer_plaintext", issuer: client.url.origin }, "the issuer URL is http://: requests are not encrypted (tests and private networks only)");
      }

      const file = await readCertificateFile(paths.https);
      const saved = file.kind === "present" ? file.certificate : null;
      if (file.kind === "unreadable") logger.error({ event: "certificate_unreadable", detail: file.error }, "https.pem cannot be used");
      if (await finishInterruptedSave(paths.pendingKey, saved)) {
        await removePendingKey(paths);
        logger.info({ event: "pending_key_removed" }, "removed the pending TLS key left by an interrupted save");
      }

      let servers: BoxServers | null = null;
      const agent = new BoxAgent({
        paths,
        config,
        identity,
        client,
        clock,
        logger,
        served: saved,
        serve: (certificate) => servers?.setCertificate({ keyPem: certificate.key.pem, chainPem: certificate.chainPem }),
        onLogLevel: (changed) => {
          // A pino child keeps the level it was made with: set it on the one the box logs through. The line
          // goes out under whichever of the two levels shows info, so a change to "warning" is logged too.
          const apply = (): void => {
            logger.level = pinoLevel(changed.logLevel);
          };
          const tell = (): void => logger.info({ event: "log_level", level: changed.logLevel }, "log level changed");
          if (logger.isLevelEnabled("info")) {
            tell();
            apply();
          } else {
            apply();
            tell();
          }
        },
      });
      const scheduler = new RenewalScheduler({
        check: (trigger) => agent.check(trigger),
        clock,
        timers,
        ...(options.checkIntervalMs !== undefined ? { intervalMs: options.checkIntervalMs } : {}),
        ...(options.random ? { random: options.random } : {}),
        onCrash: (err) => logger.error({ event: "check_crashed", err }, "the certificate check crashed"),
      });
      const routeState = newRouteState(clock);
      servers = await startServers({
        host: options.host,
        httpPort: options.httpPort,
        httpsPort: options.httpsPort,
        logger,
        certificate: saved ? { keyPem: saved.key.pem, chainPem: saved.chainPem } : null,
        routes: (app, scheme) =>
          registerRoutes(
            app,
            {
              status,
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
              served: () => agent.served,
              diagnostics,
            },
            scheme,
            routeState,
          ),
      });
      running = { log, logger, client, agent, scheduler, servers };
      logger.info(
        {
          event: "started",
          ip,
          httpPort: servers.httpPort,
          httpsPort: servers.httpsPort,
          issuer: client.url.origin,
          checkIntervalMs: options.checkIntervalMs ?? CHECK_INTERVAL_MS,
          certificate: saved ? saved.info.serial : null,
        },
        "box started",
      );
      scheduler.start();
      return { httpPort: servers.httpPort, httpsPort: servers.httpsPort };
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
    await current.servers.close();
    current.client.close();
    current.logger.info({ event: "stopped" }, "box stopped");
    running = null;
    current.log.close();
  }

  async function checkNow(trigger: CheckTrigger = "demand"): Promise<BoxStatus> {
    if (!running) throw new Error("the box is not started");
    await running.scheduler.run(trigger);
    return status();
  }

  return { start, stop, checkNow, status };
}
