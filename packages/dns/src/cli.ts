/** `boxcert dns`: wires the flags (options.ts) to the zone loader, the DNS sockets and the metrics endpoint. */
import type { Command } from "commander";
import { Option } from "commander";
import pino, { type Logger } from "pino";
import { DEFAULT_TCP_LIMITS, startDnsServer, startMetricsEndpoint, type RunningDnsServer, type RunningMetricsEndpoint } from "./server.ts";
import { openDnsZone, POLL_INTERVAL_MS } from "./zone-loader.ts";
import { prometheusText, recordAnswer, recordTcpClose } from "./metrics.ts";
import { asArgument, formatHostPort, LOG_LEVELS, parseLogLevel, pinoLevel } from "@boxcert/shared";
import {
  buildDnsConfig,
  buildTcpLimits,
  collect,
  parseAddressPort,
  parseAllow,
  parseCidr,
  parseConnectionCount,
  parseDomainName,
  parseIdleTimeout,
  parseNameServer,
  parsePollInterval,
  parseZone,
  type DnsFlags,
} from "./options.ts";

export interface RunningDns {
  port: number;
  metricsPort: number | null;
  /** Re-reads the store now rather than at the next poll. */
  refresh(): Promise<void>;
  close(): Promise<void>;
}

/** Starts everything `boxcert dns` runs; undoes what was started when a later step fails. */
export async function runDns(flags: DnsFlags, logger: Logger): Promise<RunningDns> {
  const config = buildDnsConfig(flags);
  const tcp = buildTcpLimits(flags);
  const zone = await openDnsZone(flags.store, logger, flags.pollInterval ?? POLL_INTERVAL_MS);
  let server: RunningDnsServer | null = null;
  let metrics: RunningMetricsEndpoint | null = null;
  try {
    server = await startDnsServer({
      host: flags.listen.host,
      port: flags.listen.port,
      config,
      zone,
      logger,
      metrics: { recordAnswer, recordTcpClose },
      tcp,
      onNotify: () => void zone.refresh(),
    });
    if (flags.metrics) {
      metrics = await startMetricsEndpoint({ host: flags.metrics.host, port: flags.metrics.port, text: prometheusText, logger });
    }
  } catch (err) {
    await server?.close();
    await zone.close();
    throw err;
  }
  logger.info(
    {
      listen: formatHostPort({ host: flags.listen.host, port: server.port }),
      zone: config.zone,
      nameServers: config.nameServers,
      caa: config.caa,
      allow: config.allow,
      allowNotify: config.allowNotify,
      zoneChanges: zone.listening,
      pollMs: flags.pollInterval ?? POLL_INTERVAL_MS,
      tcp,
      metrics: metrics ? formatHostPort({ host: flags.metrics!.host, port: metrics.port }) : null,
    },
    "dns listening (UDP and TCP)",
  );
  const running = server;
  const endpoint = metrics;
  return {
    port: running.port,
    metricsPort: endpoint?.port ?? null,
    refresh: () => zone.refresh(),
    async close() {
      await Promise.all([running.close(), endpoint?.close()]);
      await zone.close();
    },
  };
}

export function registerDnsCommand(program: Command): void {
  program
    .command("dns")
    .description("run the authoritative DNS server of the zone (UDP and TCP on one port)")
    .requiredOption("--zone <zone>", "the zone this server is authoritative for, e.g. iot.example.net", parseZone)
    .requiredOption("--listen <ip:port>", "address for UDP and TCP, e.g. 0.0.0.0:53 or 127.0.0.1:5353", asArgument(parseAddressPort))
    .requiredOption("--store <url>", "the issuer's store: SQLite file path, or postgres://...")
    .option("--ns <name=ip>", "a name server of the zone, with its address (repeatable; default: ns1.<zone>=<listen address>)", collect(parseNameServer))
    .option("--caa <domain>", "a CA allowed to issue for the zone (repeatable; default: letsencrypt.org)", collect((v: string) => parseDomainName(v, "CA domain")))
    .option("--allow <ranges>", "comma-separated CIDR ranges encoded addresses must fall in (replaces the private-range default)", parseAllow)
    .option("--allow-notify <cidr>", "a range DNS NOTIFY is accepted from, e.g. 10.0.0.0/8 (repeatable; default: 127.0.0.0/8 and ::1)", collect(parseCidr))
    .option("--hostmaster <name>", "SOA mailbox as a domain name (default: hostmaster.<zone>)", (v: string) => parseDomainName(v, "hostmaster name"))
    .option("--metrics <ip:port>", "serve GET /metrics (Prometheus text) on this address", asArgument(parseAddressPort))
    .option("--poll-interval <duration>", `read the store's zone version this often, the safety net beside NOTIFY and PostgreSQL LISTEN, 50ms to 10m (default: ${POLL_INTERVAL_MS}ms)`, asArgument(parsePollInterval))
    .option("--tcp-max-connections <n>", `TCP connections open at once, all clients together (default: ${DEFAULT_TCP_LIMITS.maxConnections})`, asArgument(parseConnectionCount))
    .option("--tcp-max-per-client <n>", `TCP connections open at once from one IPv4 address or IPv6 /64 (default: ${DEFAULT_TCP_LIMITS.maxPerClient}, or the cap if lower)`, asArgument(parseConnectionCount))
    .option("--tcp-idle-timeout <duration>", `close a TCP connection idle this long, 1s to 2m (default: ${DEFAULT_TCP_LIMITS.idleTimeoutMs / 1000}s)`, asArgument(parseIdleTimeout))
    .addOption(new Option("--log-level <level>", `${LOG_LEVELS.join(", ")}; debug logs one line per query`).argParser(asArgument(parseLogLevel)).default("info"))
    .action(async (flags: DnsFlags) => {
      const logger = pino({ level: pinoLevel(flags.logLevel), base: { component: "dns" } });
      const dns = await runDns(flags, logger);
      const stop = (signal: string) => {
        logger.info({ signal }, "dns stopping");
        dns.close().then(
          () => process.exit(0),
          (err: unknown) => {
            logger.error({ err }, "dns did not stop cleanly");
            process.exit(1);
          },
        );
      };
      process.once("SIGINT", stop);
      process.once("SIGTERM", stop);
    });
}
