/**
 * `boxcert demo` (what `npm start` runs), all on 127.0.0.1: an issuer with the embedded CA, one
 * subscription in progress with two IoT-box seats, the customer's database (a real `boxcert erp` over
 * HTTPS, which reports itself to the issuer and so becomes the subscription's production database), and
 * one box paired with that database by a connection token. Prints the lines README.md shows once the box
 * serves HTTPS and has registered with the database. A second start reuses the data: same label, no new
 * certificate, the box still paired. With --acme-directory the certificate comes from that ACME CA (Pebble,
 * Let's Encrypt staging) by DNS-01 through the demo's own dns instead of from the embedded CA.
 */
import { mkdirSync, readFileSync } from "node:fs";
import { readFile, rm } from "node:fs/promises";
import { join, resolve } from "node:path";
import { randomBytes } from "node:crypto";
import type { Command} from "commander";
import pino, { type Logger } from "pino";
import { asArgument, writeFileAtomic, isZone, parseHostPort, parsePort, formatHostPort, type HostPort } from "@boxcert/shared";
import { startIssuer, type RunningIssuer } from "@boxcert/issuer";
import { RegistryError } from "@boxcert/store";
import { buildBox, connectionPatch, dataPaths, loadOrCreateConfig, parseConnectionToken, updateConfig, type Box, type BoxConfig, type BoxStatus } from "@boxcert/box";
import { runDns, type RunningDns } from "@boxcert/dns";
import { startErp, type RunningErp } from "@boxcert/erp";
import { loadOrCreateDemoTls, type DemoTls } from "./demo-tls.ts";

export const DEMO_SUBSCRIPTION = "DEMO-0001";

interface DemoOptions {
  dataDir: string;
  /** Where `boxcert dns` listens (UDP and TCP); port 0 picks a free one. */
  dnsListen: HostPort;
  zone: string;
  issuerPort: number;
  httpPort: number;
  httpsPort: number;
  /** The database's HTTPS port (its IoT and POS pages). */
  databasePort: number;
  /** Get the box's certificate from this ACME CA (e.g. Pebble) through the demo's own dns, not the embedded CA. */
  acmeDirectory?: string;
  /** PEM bundle trusted for the ACME directory's own HTTPS (Pebble's test CA). */
  acmeCaBundle?: string;
  /** The ACME CA's root (PEM), for the printed curl line: ACME chains do not carry it. */
  acmeRoot?: string;
}

const port = asArgument(parsePort);
/** --dns-listen: an address (dns binds it) and a port. */
const dnsListen = asArgument((value) => parseHostPort(value));

async function ensureSubscription(issuer: RunningIssuer): Promise<void> {
  try {
    await issuer.operations.addSubscription({ code: DEMO_SUBSCRIPTION, state: "in_progress", seats: 2 });
  } catch (err) {
    if (!(err instanceof RegistryError && err.code === "conflict")) throw err;
  }
}

/**
 * A data folder from the demo before it ran a database holds demo.json with the UUID it added by hand as
 * production: set to duplicate (as an operator would), so the real database's first report becomes the
 * production one instead of a second production claim recorded as duplicate. Done once: the file goes.
 */
async function retireHandAddedDatabase(issuer: RunningIssuer, dataDir: string): Promise<void> {
  const file = join(dataDir, "demo.json");
  let dbUuid: string;
  try {
    dbUuid = (JSON.parse(await readFile(file, "utf8")) as { dbUuid: string }).dbUuid;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return;
    throw err;
  }
  try {
    await issuer.operations.setDatabase(dbUuid, { kind: "duplicate" });
  } catch (err) {
    if (!(err instanceof RegistryError && err.code === "not_found")) throw err;
  }
  await rm(file);
}

/**
 * The database operator's password, made once and kept 0600 in the data folder: a real login rather than
 * --insecure-no-login, because the IoT page shows the subscription code inside its tokens and the demo
 * should show the pages as a customer gets them. Printed, since the demo's user is the operator.
 */
async function demoPassword(dataDir: string): Promise<{ password: string; file: string }> {
  const file = join(dataDir, "database-password");
  try {
    return { password: (await readFile(file, "utf8")).trim(), file };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
  }
  const password = randomBytes(18).toString("base64url");
  await writeFileAtomic(file, password + "\n", 0o600);
  return { password, file };
}

/** `boxcert erp` in-process: its data in the demo's folder (same UUID at every start), HTTPS on 127.0.0.1. */
function startDemoErp(options: DemoOptions, dataDir: string, issuer: RunningIssuer, tls: DemoTls, password: string, logger: Logger): Promise<RunningErp> {
  return startErp({
    dataDir: join(dataDir, "database"),
    issuerUrl: new URL(issuer.url),
    listen: { host: "127.0.0.1", port: options.databasePort },
    tls: { cert: tls.cert, key: tls.key },
    enterpriseCode: DEMO_SUBSCRIPTION,
    kind: "production",
    zone: options.zone,
    password,
    logger: logger.child({ component: "erp" }),
  });
}

/**
 * Waits for the database's first report: until the issuer records it as production, the box's requests
 * are refused (no production database), so the box starts only after it.
 */
async function untilReported(erp: RunningErp): Promise<void> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const { recorded, failure } = erp.reporter.status();
    if (recorded?.kind === "production") return;
    if (recorded) throw new Error(`the issuer records the demo database as ${recorded.kind}, not production`);
    if (failure) throw new Error(`the demo database could not report itself to the issuer: ${failure.detail}`);
    if (Date.now() > deadline) throw new Error("the demo database's report to the issuer had no answer after 15 s");
    await new Promise((done) => setTimeout(done, 50));
  }
}

/**
 * Whether the box is already paired with this database at this address: then a new token would only be one
 * more open secret. At another address (another --database-port) the box pairs again, by the box's own
 * rule that a new origin needs a pairing secret; the database knows the box and leaves that secret unused.
 */
function pairedWith(config: BoxConfig, erp: RunningErp): boolean {
  return config.server === erp.publicUrl.toString() && config.dbUuid === erp.database.record.dbUuid && config.pairedOrigin === erp.publicUrl.origin;
}

/**
 * Connects the box as `boxcert box connect --token` does, with a token from the database's "Connect a
 * box": the box then registers with the database by the token's pairing secret at its first check.
 */
async function pairDemoBox(boxDir: string, erp: RunningErp): Promise<void> {
  const paths = dataPaths(boxDir);
  const config = await loadOrCreateConfig(paths, "demo-box");
  if (pairedWith(config, erp)) return;
  const connection = parseConnectionToken((await erp.connectBox()).token);
  await updateConfig(paths, (current) => connectionPatch(connection, current));
}

/** Flags that are wrong together, and an --acme-root that cannot be read: said before anything starts. */
function checkAcmeOptions(options: DemoOptions): string | null {
  if (options.acmeDirectory && options.dnsListen.port === 0) {
    throw new Error("--acme-directory needs --dns-listen HOST:PORT with a fixed port: the CA validates DNS-01 there (for Pebble, the address of its -dnsserver)");
  }
  if (options.acmeRoot && !options.acmeDirectory) throw new Error("--acme-root goes with --acme-directory");
  if (!options.acmeRoot) return null;
  const acmeRoot = resolve(options.acmeRoot);
  try {
    readFileSync(acmeRoot, "utf8");
  } catch (err) {
    throw new Error(`reading --acme-root: ${(err as Error).message}`, { cause: err });
  }
  return acmeRoot;
}

function startDemoIssuer(options: DemoOptions, storePath: string, logger: Logger): Promise<RunningIssuer> {
  return startIssuer({
    store: storePath,
    zone: options.zone,
    ca: options.acmeDirectory ? "acme" : "embedded",
    ...(options.acmeDirectory
      ? {
          acme: {
            directories: [{ url: options.acmeDirectory }],
            dnsServers: [{ host: options.dnsListen.host, port: options.dnsListen.port }],
            ...(options.acmeCaBundle ? { caBundle: options.acmeCaBundle } : {}),
          },
        }
      : {}),
    listen: { host: "127.0.0.1", port: options.issuerPort },
    plainHttp: true,
    lifetimeMs: 90 * 86_400_000,
    maxCertificatesPerWeek: 10,
    // The demo's dns is told of each enrollment and challenge value at once (DNS NOTIFY), not at its next
    // poll; a dns on port 0 gets its port after the issuer starts, and is left to its poll.
    ...(options.dnsListen.port !== 0 ? { notifyDns: [{ host: options.dnsListen.host, port: options.dnsListen.port }] } : {}),
    logger,
  });
}

/** The demo box, paired with the demo's database, asking the demo's issuer, diagnosing with the demo's dns. */
async function buildDemoBox(options: DemoOptions, dataDir: string, issuer: RunningIssuer, erp: RunningErp, dnsAddress: string, databaseCa: string): Promise<Box> {
  const boxDir = join(dataDir, "box");
  await pairDemoBox(boxDir, erp);
  return buildBox({
    dataDir: boxDir,
    issuerUrl: issuer.url,
    // The database's certificate comes from the demo's own CA, which no bundled root knows.
    databaseCa,
    httpPort: options.httpPort,
    httpsPort: options.httpsPort,
    host: "127.0.0.1",
    ip: "127.0.0.1",
    logToStdout: false,
    // The demo's zone exists only at its own dns: the diagnostics ask it as both the "LAN" resolver and the
    // zone's server (the system resolver has never heard of boxcert.test).
    lanResolvers: [dnsAddress],
    zoneDns: [dnsAddress],
  });
}

/** Checks until the box serves a valid certificate; an error state or 60 s without one stops the demo. */
async function untilServing(box: Box): Promise<BoxStatus & { httpsUrl: string }> {
  let status = box.status();
  const deadline = Date.now() + 60_000;
  while (!status.httpsUrl || status.certificate.status !== "ok") {
    if (Date.now() > deadline) {
      throw new Error(`the demo box has no certificate after 60 s: ${status.certificate.errorCode ?? status.certificate.status} ${status.certificate.detail ?? ""}`);
    }
    status = await box.checkNow();
    if (status.certificate.status === "error") {
      throw new Error(`the demo box could not get its certificate: ${status.certificate.errorCode} ${status.certificate.detail ?? ""}`);
    }
  }
  return status as BoxStatus & { httpsUrl: string };
}

/** Checks until the box has registered with the database; a refusal or 30 s without it stops the demo. */
async function untilRegistered(box: Box): Promise<void> {
  let status = box.status();
  const deadline = Date.now() + 30_000;
  while (!status.database.registered) {
    if (Date.now() > deadline) throw new Error(`the demo box did not register with the demo database in 30 s: ${status.database.error ?? "no answer"}`);
    // checkNow returns after the registration its check started: a second round means it did not succeed.
    await new Promise((done) => setTimeout(done, 200));
    status = await box.checkNow();
  }
}

/** The lines the demo prints once the box serves HTTPS (tests and users copy them). */
function demoLines(options: DemoOptions, httpsUrl: string, ports: { httpPort: number; httpsPort: number }, root: string | null, dnsPort: number, database: DatabaseLines): string[] {
  const host = new URL(httpsUrl).hostname;
  return [
    `homepage: http://127.0.0.1:${ports.httpPort}/`,
    `https: ${httpsUrl}`,
    ...(options.acmeDirectory ? [`ca: ${options.acmeDirectory} (ACME, DNS-01 through ${options.dnsListen.host}:${dnsPort})`] : []),
    root
      ? `root: ${root}`
      : "root: not given: ACME chains do not carry the CA's root; pass --acme-root FILE (for Pebble: curl --cacert <its TLS CA> https://<host>:<management port>/roots/0 > root.pem)",
    root
      ? `curl: curl --cacert ${root} --resolve ${host}:${ports.httpsPort}:127.0.0.1 ${httpsUrl}`
      : `curl: curl --resolve ${host}:${ports.httpsPort}:127.0.0.1 ${httpsUrl} (add --cacert with the CA's root: see root above)`,
    `dig: dig @${options.dnsListen.host} -p ${dnsPort} +norec ${host} A`,
    `database: ${new URL("iot", database.url).toString()}`,
    `pos: ${new URL("pos", database.url).toString()}`,
    `database-root: ${database.rootFile}`,
    `login: ${database.password} (the database's password, kept in ${database.passwordFile})`,
  ];
}

interface DatabaseLines {
  url: URL;
  rootFile: string;
  password: string;
  passwordFile: string;
}

interface DemoDatabase {
  erp: RunningErp;
  tls: DemoTls;
  password: { password: string; file: string };
}

/** The subscription, then the database that reports itself as its production one (the issuer records it). */
async function startDemoDatabase(options: DemoOptions, dataDir: string, issuer: RunningIssuer, logger: Logger): Promise<DemoDatabase> {
  await ensureSubscription(issuer);
  await retireHandAddedDatabase(issuer, dataDir);
  const tls = await loadOrCreateDemoTls(dataDir);
  const password = await demoPassword(dataDir);
  const erp = await startDemoErp(options, dataDir, issuer, tls, password.password, logger);
  try {
    await untilReported(erp);
  } catch (err) {
    await erp.close();
    throw err;
  }
  return { erp, tls, password };
}

export async function runDemo(options: DemoOptions): Promise<{ stop(): Promise<void>; lines: string[] }> {
  const dataDir = resolve(options.dataDir);
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const logger = pino({ level: "info", base: { component: "issuer" } }, pino.destination({ dest: join(dataDir, "issuer.log"), mkdir: true, sync: false }));
  const acmeRoot = checkAcmeOptions(options);
  const storePath = join(dataDir, "issuer", "registry.sqlite");
  const issuer = await startDemoIssuer(options, storePath, logger);
  let box: Box | null = null;
  let dns: RunningDns | null = null;
  let database: DemoDatabase | null = null;
  const stopAll = async (): Promise<void> => {
    await box?.stop();
    await database?.erp.close();
    await dns?.close();
    await issuer.close();
    logger.flush();
  };
  try {
    database = await startDemoDatabase(options, dataDir, issuer, logger);
    dns = await runDns({ zone: options.zone, listen: options.dnsListen, store: storePath, logLevel: "info" }, logger.child({ component: "dns" }));
    box = await buildDemoBox(options, dataDir, issuer, database.erp, formatHostPort({ host: options.dnsListen.host, port: dns.port }), database.tls.rootPem);
    const ports = await box.start();
    const status = await untilServing(box);
    await untilRegistered(box);
    // The box's label may be newer than the dns snapshot's last poll: the printed dig line must work at once.
    await dns.refresh();
    // ACME chains do not carry the root: the curl line needs it from the user (--acme-root).
    const root = options.acmeDirectory ? acmeRoot : join(issuer.ca.folder, "root.pem");
    const { erp, tls, password } = database;
    const lines = demoLines(options, status.httpsUrl, ports, root, dns.port, { url: erp.publicUrl, rootFile: tls.rootFile, password: password.password, passwordFile: password.file });
    return { lines, stop: stopAll };
  } catch (err) {
    await stopAll().catch(() => undefined);
    throw err;
  }
}

export function registerDemoCommand(program: Command): void {
  program
    .command("demo")
    .description("run an issuer, a dns, the customer's database and one box on 127.0.0.1, and print how to reach them over HTTPS")
    .option("--data-dir <dir>", "where the demo keeps its data (reused by the next start)", ".data/demo")
    .option("--zone <zone>", "the DNS zone of box names", "boxcert.test")
    .option("--issuer-port <port>", "issuer port", port, 8700)
    .option("--http-port <port>", "box HTTP port", port, 8069)
    .option("--https-port <port>", "box HTTPS port", port, 8443)
    .option("--database-port <port>", "the database's HTTPS port (its IoT and POS pages)", port, 8071)
    .option("--dns-listen <ip:port>", "where boxcert dns listens, UDP and TCP (port 0: a free port)", dnsListen, parseHostPort("127.0.0.1:0"))
    .option("--acme-directory <url>", "get the certificate from this ACME CA (e.g. Pebble) by DNS-01 through the demo's dns; needs --dns-listen with a fixed port, the CA's DNS server")
    .option("--acme-ca-bundle <file>", "CA bundle (PEM) trusted for the ACME directory's HTTPS (Pebble's test CA)")
    .option("--acme-root <file>", "the ACME CA's root (PEM), for the printed curl line (ACME chains do not carry it)")
    .action(async (opts: DemoOptions) => {
      if (!isZone(opts.zone)) throw new Error(`--zone "${opts.zone}" is not a DNS zone name`);
      const demo = await runDemo(opts);
      process.stdout.write(`boxcert demo: running, data in ${resolve(opts.dataDir)} (Ctrl-C stops it)\n`);
      for (const line of demo.lines) process.stdout.write(line + "\n");
      let stopping = false;
      const stop = () => {
        if (stopping) return;
        stopping = true;
        process.stdout.write("boxcert demo: stopping\n");
        demo.stop().then(
          () => process.exit(0),
          (err: unknown) => {
            process.stderr.write(`boxcert demo: ${(err as Error).message}\n`);
            process.exit(1);
          },
        );
      };
      process.on("SIGINT", stop);
      process.on("SIGTERM", stop);
    });
}
