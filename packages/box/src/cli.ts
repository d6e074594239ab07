/**
 * `boxcert box ...`: flags to options, validated here once, then buildBox(). The only place of the box
 * that touches process (signals, exit codes, stdout).
 *
 *   boxcert box --data-dir DIR --issuer URL [--zone ZONE] [...]  runs the agent
 *   boxcert box connect --data-dir DIR --server URL --db-uuid U --enterprise-code C
 *   boxcert box credential --data-dir DIR --db-uuid U --enterprise-code C | --clear
 *
 * --data-dir belongs to `box` itself, so it is accepted before or after the subcommand's name.
 */
import { readFile } from "node:fs/promises";
import { isIP } from "node:net";
import { resolve } from "node:path";
import { Option } from "commander";
import type { Command } from "commander";
import { buildBox } from "./box.ts";
import { CHECK_INTERVAL_MS } from "./certificate/renewal.ts";
import { asArgument, formatHostPort, isZone, LOG_LEVELS, MAX_TIMER_MS, parseDuration, parseHostPort, parseLogLevel, parsePort, ValueError } from "@boxcert/shared";
import { ConfigError, connectionPatch, parseConnection, parseConnectionToken, parseCredentialField, readConfig, updateConfig, urlSecretProblem, withinZonePin } from "./config.ts";
import type { Connection } from "./config.ts";
import type { LogLevel } from "./config.ts";
import { dataPaths, ensureDataDir } from "./data-dir.ts";

interface BoxFlags {
  dataDir?: string;
  issuer?: string;
  issuerCa?: string;
  databaseCa?: string;
  httpPort: number;
  httpsPort: number;
  ip?: string;
  listenHost: string;
  name?: string;
  logLevel?: LogLevel;
  checkInterval: number;
  resolver: string[];
  zoneDns: string[];
  zone?: string;
}

/** The shortest --check-interval: each periodic check is a request to the issuer. */
export const MIN_CHECK_INTERVAL_MS = 10_000;

const port = asArgument(parsePort);

const logLevel: (value: string) => LogLevel = asArgument(parseLogLevel, (_, value) => `log level must be one of ${LOG_LEVELS.join(", ")}, not "${value}".`);

/** --zone: a DNS zone name, lower-cased as the issuer's --zone is. */
const parseZoneFlag = asArgument((value: string): string => {
  const zone = value.trim().toLowerCase();
  if (!isZone(zone)) throw new ValueError(`--zone must be a DNS zone name such as iot.example.net, not "${value}".`);
  return zone;
});

/**
 * A DNS server for the diagnostics, in the form node's Resolver.setServers takes (`IP:PORT`, `[IPv6]:PORT`):
 * --resolver defaults to port 53, --zone-dns needs one.
 */
export function parseDnsServer(value: string, requirePort: boolean): string {
  const parse = asArgument(
    (text) => parseHostPort(text, { ipOnly: true, minPort: 1, ...(requirePort ? {} : { defaultPort: 53 }) }),
    (message) => `${message}; it must be an IP address${requirePort ? " and a port" : ""}.`,
  );
  return formatHostPort(parse(value));
}

function collect(requirePort: boolean) {
  return (value: string, previous: string[]): string[] => [...previous, parseDnsServer(value, requirePort)];
}

/** `6h`, `30m`, `10s`, `1d`, `1500ms` -> milliseconds; at least MIN_CHECK_INTERVAL_MS, at most a timer's limit. */
export function parseCheckInterval(value: string): number {
  return asArgument(
    (text) => parseDuration(text, { min: MIN_CHECK_INTERVAL_MS, max: MAX_TIMER_MS }),
    (message) => `${message} (it must be a duration such as 6h, 30m or 10s; it must be at least 10s and at most 24d, a timer's limit).`,
  )(value);
}

/** A flag's value that is wrong in a way commander cannot see: one line, exit 1. */
function fail(cmd: Command, message: string): never {
  cmd.error(`error: ${message}`, { exitCode: 1 });
}

function dataDirOf(cmd: Command): string {
  const dir = (cmd.optsWithGlobals() as { dataDir?: string }).dataDir;
  if (!dir) fail(cmd, "required option '--data-dir <dir>' not specified");
  return resolve(dir);
}

function validated<T>(cmd: Command, parse: () => T): T {
  try {
    return parse();
  } catch (err) {
    if (err instanceof ConfigError) fail(cmd, err.message);
    throw err;
  }
}

/** The PEM root(s) of an `--issuer-ca` or `--database-ca` file; a file without one is a usage error. */
async function readCaFile(cmd: Command, flag: string, path: string): Promise<string> {
  let pem: string;
  try {
    pem = await readFile(path, "utf8");
  } catch (err) {
    fail(cmd, `${flag} ${path}: ${(err as Error).message}`);
  }
  if (!pem.includes("-----BEGIN CERTIFICATE-----")) fail(cmd, `${flag} ${path}: no PEM certificate in the file`);
  return pem;
}

async function runAgent(flags: BoxFlags, cmd: Command): Promise<void> {
  const dataDir = dataDirOf(cmd);
  if (!flags.issuer) fail(cmd, "required option '--issuer <url>' not specified");
  let issuerUrl: URL;
  try {
    issuerUrl = new URL(flags.issuer);
  } catch {
    fail(cmd, `--issuer is not a valid URL: "${flags.issuer}"`);
  }
  if (issuerUrl.protocol !== "https:" && issuerUrl.protocol !== "http:") fail(cmd, `--issuer must be an https:// (or http://) URL, not "${issuerUrl.protocol}"`);
  const secret = urlSecretProblem(issuerUrl);
  if (secret) fail(cmd, `--issuer ${secret}`);
  const issuerCa = flags.issuerCa ? await readCaFile(cmd, "--issuer-ca", flags.issuerCa) : undefined;
  const databaseCa = flags.databaseCa ? await readCaFile(cmd, "--database-ca", flags.databaseCa) : undefined;
  if (flags.ip !== undefined && isIP(flags.ip) === 0) fail(cmd, `--ip is not an IP address: "${flags.ip}"`);
  if (flags.name !== undefined && flags.name.trim() === "") fail(cmd, "--name must not be empty");

  const box = buildBox({
    dataDir,
    issuerUrl: issuerUrl.toString(),
    ...(issuerCa !== undefined ? { issuerCa } : {}),
    ...(databaseCa !== undefined ? { databaseCa } : {}),
    httpPort: flags.httpPort,
    httpsPort: flags.httpsPort,
    host: flags.listenHost,
    ...(flags.ip !== undefined ? { ip: flags.ip } : {}),
    ...(flags.name !== undefined ? { name: flags.name.trim() } : {}),
    ...(flags.zone !== undefined ? { zone: flags.zone } : {}),
    ...(flags.logLevel !== undefined ? { logLevel: flags.logLevel } : {}),
    checkIntervalMs: flags.checkInterval,
    lanResolvers: flags.resolver,
    zoneDns: flags.zoneDns,
    logToStdout: true,
  });
  try {
    await box.start();
  } catch (err) {
    fail(cmd, (err as Error).message);
  }
  const status = box.status();
  console.log(`box ${status.name} at ${status.httpUrl}${status.httpsUrl ? ` and ${status.httpsUrl}` : ""}`);

  await new Promise<void>((done) => {
    const onSignal = (signal: NodeJS.Signals): void => {
      process.off("SIGINT", onSignal);
      process.off("SIGTERM", onSignal);
      // Should something hold the loop open after close, do not hang forever.
      setTimeout(() => process.exit(process.exitCode ?? 0), 10_000).unref();
      console.log(`${signal}: stopping`);
      box.stop().then(done, (err: unknown) => {
        console.error(`error while stopping: ${(err as Error).message}`);
        process.exitCode = 1;
        done();
      });
    };
    process.on("SIGINT", onSignal);
    process.on("SIGTERM", onSignal);
  });
}

type ConnectFlags = { token?: string; server?: string; dbUuid?: string; enterpriseCode?: string };

function connectionOf(flags: ConnectFlags, cmd: Command): Connection {
  const fields = [flags.server, flags.dbUuid, flags.enterpriseCode];
  if (flags.token !== undefined) {
    if (fields.some((f) => f !== undefined)) fail(cmd, "--token cannot be combined with --server, --db-uuid or --enterprise-code");
    return validated(cmd, () => parseConnectionToken(flags.token as string));
  }
  if (fields.some((f) => f === undefined)) fail(cmd, "give --token, or all of --server, --db-uuid and --enterprise-code");
  return validated(cmd, () =>
    parseConnection({ server: flags.server as string, dbUuid: flags.dbUuid as string, enterpriseCode: flags.enterpriseCode as string }),
  );
}

/**
 * Writes the connection, unless its token names another zone than the pin: `--zone` given here (it belongs
 * to `box`, like --data-dir), else the agent's, saved in config.json at its last start.
 */
async function connect(flags: ConnectFlags, cmd: Command): Promise<void> {
  const paths = dataPaths(dataDirOf(cmd));
  const connection = connectionOf(flags, cmd);
  try {
    await ensureDataDir(paths);
    const pin = (cmd.optsWithGlobals() as { zone?: string }).zone ?? (await readConfig(paths))?.zonePin ?? null;
    const pinned = withinZonePin(connection, pin);
    await updateConfig(paths, (current) => connectionPatch(pinned, current));
  } catch (err) {
    fail(cmd, (err as Error).message);
  }
  if (new URL(connection.server).protocol === "http:") {
    console.error(`warning: ${connection.server} is http://: what the box and the database say to each other travels unencrypted`);
  }
  const zone = connection.expectedZone ? `, zone ${connection.expectedZone}` : "";
  const registers = connection.pairingSecret ? " and registers with the database" : "";
  console.log(`connected to ${connection.server} (database ${connection.dbUuid}${zone}); the running box picks it up${registers} at its next check or when its homepage is opened`);
}

async function credential(flags: { dbUuid?: string; enterpriseCode?: string; clear?: boolean }, cmd: Command): Promise<void> {
  const paths = dataPaths(dataDirOf(cmd));
  let patch: { dbUuid: string | null; enterpriseCode: string | null };
  if (flags.clear) {
    if (flags.dbUuid !== undefined || flags.enterpriseCode !== undefined) fail(cmd, "--clear cannot be combined with --db-uuid or --enterprise-code");
    patch = { dbUuid: null, enterpriseCode: null };
  } else {
    if (flags.dbUuid === undefined || flags.enterpriseCode === undefined) {
      fail(cmd, "give both --db-uuid and --enterprise-code, or --clear");
    }
    patch = {
      dbUuid: validated(cmd, () => parseCredentialField("database UUID", flags.dbUuid as string)),
      enterpriseCode: validated(cmd, () => parseCredentialField("subscription code", flags.enterpriseCode as string)),
    };
  }
  try {
    await ensureDataDir(paths);
    await updateConfig(paths, patch);
  } catch (err) {
    fail(cmd, (err as Error).message);
  }
  console.log(flags.clear ? "credential cleared" : `credential set (database ${patch.dbUuid})`);
}

export function registerBoxCommands(program: Command): void {
  const box = program
    .command("box")
    .description("run the IoT box agent: HTTP and HTTPS homepage, certificate from the issuer")
    .option("--data-dir <dir>", "the box's data folder (configuration, keys, certificate, logs)")
    .option("--issuer <url>", "the certificate issuer's URL (https://; http:// only for tests)")
    .option("--issuer-ca <file>", "extra CA certificate(s), PEM, to trust for the issuer")
    .option("--database-ca <file>", "extra CA certificate(s), PEM, to trust for the database the box registers with")
    .option("--http-port <port>", "HTTP port", port, 8069)
    .option("--https-port <port>", "HTTPS port", port, 8443)
    .option("--ip <address>", "the LAN address to advertise (default: detected)")
    .option("--listen-host <host>", "address to listen on", "0.0.0.0")
    .option("--name <name>", "the box's name (saved)")
    .option("--zone <zone>", "the zone the box must be enrolled in (the vendor's pin): an issuer enrolling it elsewhere is refused, and so is a connection token for another zone", parseZoneFlag)
    .option("--log-level <level>", "debug, info, warning or error (saved)", logLevel)
    .addOption(
      new Option(
        "--check-interval <duration>",
        "how often to ask the issuer whether the certificate still holds (revoked? new renewal date?), e.g. 6h, 30m; at least 10s; shorter than 6h is for tests and operators",
      )
        .argParser(parseCheckInterval)
        .default(CHECK_INTERVAL_MS, "6h"),
    )
    .option("--resolver <ip[:port]>", "a LAN resolver the diagnostics ask for the box's name (repeatable; default: the system's)", collect(false), [])
    .option("--zone-dns <ip:port>", "an authoritative server of the zone for the diagnostics (repeatable; default: the zone's NS records)", collect(true), [])
    .configureHelp({ showGlobalOptions: true })
    .action(runAgent);

  box
    .command("connect")
    .description("connect the box to a database: a connection token, or the ERP server URL and credential")
    .option("--token <token>", "the connection token from the database's IoT page (boxcert1....)")
    .option("--server <url>", "the ERP server's URL")
    .option("--db-uuid <uuid>", "the database UUID")
    .option("--enterprise-code <code>", "the subscription code")
    .action(connect);

  box
    .command("credential")
    .description("set or clear the database UUID and subscription code")
    .option("--db-uuid <uuid>", "the database UUID")
    .option("--enterprise-code <code>", "the subscription code")
    .option("--clear", "remove both")
    .action(credential);
}
