/**
 * `boxcert erp ...`: flags to typed options, validated here once, then startErp() or duplicateDatabase().
 * The only place of the erp that touches process (signals, exit codes, stdout).
 *
 *   boxcert erp --data-dir DIR --issuer URL --listen HOST:PORT --tls-cert F --tls-key F [...]
 *   boxcert erp duplicate --from DIR --to DIR2
 */
import { readFile } from "node:fs/promises";
import { resolve } from "node:path";
import { Option, type Command } from "commander";
import pino from "pino";
import { asArgument, LOG_LEVELS, parseLogLevel, pinoLevel, ValueError, type HostPort, type LogLevel } from "@boxcert/shared";
import { startErp, type ErpOptions } from "./erp.ts";
import { duplicateDatabase } from "./duplicate.ts";
import { dataPaths } from "./database.ts";
import { parseEnterpriseCode, parseIssuerUrl, parseListen, parsePublicUrl, parseZone } from "./options.ts";
import { passwordProblem } from "./web/login.ts";
import { DECLARED_KINDS, type DatabaseKind } from "./wire.ts";

interface ErpFlags {
  dataDir?: string;
  issuer?: string;
  issuerCa?: string;
  listen?: HostPort;
  tlsCert?: string;
  tlsKey?: string;
  plainHttp?: boolean;
  publicUrl?: string;
  enterpriseCode?: string;
  kind?: DatabaseKind;
  zone?: string;
  passwordFile?: string;
  insecureNoLogin?: boolean;
  logLevel: LogLevel;
}

/** A flag's value that is wrong in a way commander cannot see: one line, exit 1. */
function fail(cmd: Command, message: string): never {
  cmd.error(`error: ${message}`, { exitCode: 1 });
}

function required<T>(cmd: Command, value: T | undefined, flag: string): T {
  if (value === undefined) fail(cmd, `required option '${flag}' not specified`);
  return value;
}

/**
 * A URL flag, parsed here rather than by commander: commander's message repeats the value, and a URL's
 * user name or query may be a secret (ours does not repeat it).
 */
function urlFlag(cmd: Command, parse: (value: string) => URL, value: string): URL {
  try {
    return parse(value);
  } catch (err) {
    if (err instanceof ValueError) fail(cmd, err.message);
    throw err;
  }
}

async function readFlagFile(cmd: Command, flag: string, path: string): Promise<string> {
  try {
    return await readFile(path, "utf8");
  } catch (err) {
    fail(cmd, `${flag} ${path}: ${(err as Error).message}`);
  }
}

async function tlsOf(flags: ErpFlags, cmd: Command): Promise<ErpOptions["tls"]> {
  if (Boolean(flags.tlsCert) !== Boolean(flags.tlsKey)) fail(cmd, "--tls-cert and --tls-key go together");
  if (flags.tlsCert && flags.tlsKey) {
    if (flags.plainHttp) fail(cmd, "--plain-http cannot be combined with --tls-cert and --tls-key");
    return { cert: await readFlagFile(cmd, "--tls-cert", flags.tlsCert), key: await readFlagFile(cmd, "--tls-key", flags.tlsKey) };
  }
  if (!flags.plainHttp) fail(cmd, "give --tls-cert and --tls-key to serve HTTPS, or --plain-http to serve plain HTTP (behind a TLS proxy, tests)");
  return null;
}

/** The operator's password, or null when the pages run without a login (which must be asked for). */
async function passwordOf(flags: ErpFlags, cmd: Command): Promise<string | null> {
  if (flags.passwordFile && flags.insecureNoLogin) fail(cmd, "--password-file and --insecure-no-login exclude each other");
  if (flags.insecureNoLogin) return null;
  if (!flags.passwordFile) fail(cmd, "the pages show the subscription code: give --password-file FILE (the operator's password), or --insecure-no-login (tests only)");
  // One trailing newline is the editor's, not the password's.
  const password = (await readFlagFile(cmd, "--password-file", flags.passwordFile)).replace(/\r?\n$/, "");
  const problem = passwordProblem(password);
  if (problem) fail(cmd, `--password-file ${flags.passwordFile}: ${problem}`);
  return password;
}

async function issuerCaOf(flags: ErpFlags, cmd: Command): Promise<string | undefined> {
  if (!flags.issuerCa) return undefined;
  const pem = await readFlagFile(cmd, "--issuer-ca", flags.issuerCa);
  if (!pem.includes("-----BEGIN CERTIFICATE-----")) fail(cmd, `--issuer-ca ${flags.issuerCa}: no PEM certificate in the file`);
  return pem;
}

async function optionsOf(flags: ErpFlags, cmd: Command): Promise<ErpOptions> {
  const dataDir = resolve(required(cmd, flags.dataDir, "--data-dir <dir>"));
  const issuerUrl = urlFlag(cmd, parseIssuerUrl, required(cmd, flags.issuer, "--issuer <url>"));
  const publicUrl = flags.publicUrl === undefined ? undefined : urlFlag(cmd, parsePublicUrl, flags.publicUrl);
  const listen = required(cmd, flags.listen, "--listen <host:port>");
  const tls = await tlsOf(flags, cmd);
  if (publicUrl?.protocol === "http:" && tls) fail(cmd, "--public-url is http:// but the database serves HTTPS: give its https:// URL");
  const issuerCa = await issuerCaOf(flags, cmd);
  return {
    dataDir,
    issuerUrl,
    ...(issuerCa !== undefined ? { issuerCa } : {}),
    listen,
    tls,
    ...(publicUrl ? { publicUrl } : {}),
    ...(flags.enterpriseCode !== undefined ? { enterpriseCode: flags.enterpriseCode } : {}),
    ...(flags.kind ? { kind: flags.kind } : {}),
    ...(flags.zone ? { zone: flags.zone } : {}),
    password: await passwordOf(flags, cmd),
    logger: pino({ level: pinoLevel(flags.logLevel), base: { component: "erp" }, redact: ["enterpriseCode", "*.enterpriseCode", "password", "pairing"] }),
  };
}

async function runErp(flags: ErpFlags, cmd: Command): Promise<void> {
  const options = await optionsOf(flags, cmd);
  let erp: Awaited<ReturnType<typeof startErp>>;
  try {
    erp = await startErp(options);
  } catch (err) {
    fail(cmd, (err as Error).message);
  }
  await new Promise<void>((done) => {
    const onSignal = (): void => {
      process.off("SIGINT", onSignal);
      process.off("SIGTERM", onSignal);
      // Should something hold the loop open after close, do not hang.
      setTimeout(() => process.exit(process.exitCode ?? 0), 10_000).unref();
      erp.close().then(done, (err: unknown) => {
        console.error(`error while stopping: ${(err as Error).message}`);
        process.exitCode = 1;
        done();
      });
    };
    process.on("SIGINT", onSignal);
    process.on("SIGTERM", onSignal);
  });
}

async function runDuplicate(flags: { from: string; to: string }, cmd: Command): Promise<void> {
  let done: Awaited<ReturnType<typeof duplicateDatabase>>;
  try {
    done = await duplicateDatabase(dataPaths(resolve(flags.from)), dataPaths(resolve(flags.to)), Date.now());
  } catch (err) {
    fail(cmd, (err as Error).message);
  }
  console.log(
    `database ${done.copy.record.dbUuid} (kind duplicate) made in ${resolve(flags.to)} from ${done.original.record.dbUuid}: ${done.boxes} boxes copied, no pairing secret`,
  );
}

export function registerErpCommand(program: Command): void {
  const erp = program
    .command("erp")
    .description("run a customer's database (the ERP side): pairs boxes, reports itself to the issuer, serves the IoT and POS test pages")
    .option("--data-dir <dir>", "the database's folder (identity, key, boxes)")
    .option("--issuer <url>", "the issuer's URL (https://; http:// only for tests)")
    .option("--issuer-ca <file>", "extra CA certificate(s), PEM, to trust for the issuer")
    .option("--listen <host:port>", "address to listen on, e.g. 0.0.0.0:443", asArgument(parseListen))
    .option("--tls-cert <file>", "serve HTTPS with this certificate chain (PEM)")
    .option("--tls-key <file>", "... and this key (PEM)")
    .option("--plain-http", "serve plain HTTP (behind a TLS proxy, or tests)")
    .option("--public-url <url>", "the https URL boxes and browsers use (default: https://<listen>)")
    .option("--enterprise-code <code>", "the subscription code (required when the database is created; stored)", asArgument(parseEnterpriseCode))
    .addOption(new Option("--kind <kind>", "what this database is (stored; production when created)").choices(DECLARED_KINDS))
    .option("--zone <zone>", "the zone of the boxes' names, put in connection tokens", asArgument(parseZone))
    .option("--password-file <file>", "the operator's password for the pages (one line)")
    .option("--insecure-no-login", "serve the pages without a login (tests only: they show the subscription code)")
    .addOption(new Option("--log-level <level>", `${LOG_LEVELS.join(", ")} (warn is read as warning)`).argParser(asArgument(parseLogLevel)).default("info"))
    .action(runErp);

  erp
    .command("duplicate")
    .description("copy a database as a duplicate: a new UUID and key, kind duplicate, the boxes but no pairing secret")
    .requiredOption("--from <dir>", "the data folder of the database to copy")
    .requiredOption("--to <dir>", "a new (or empty) folder for the copy")
    .action(runDuplicate);
}
