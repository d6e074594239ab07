/**
 * `boxcert demo` (what `npm start` runs): an issuer with the embedded CA, one subscription in progress with
 * two IoT-box seats and its production database, and one box connected to it, all on 127.0.0.1. Prints the
 * lines README.md shows once the box serves HTTPS. A second start reuses the data: same label, no new
 * certificate. With --acme-directory the certificate comes from that ACME CA (Pebble, Let's Encrypt
 * staging) by DNS-01 through the demo's own dns instead of from the embedded CA.
 */
import { mkdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { randomUUID } from "node:crypto";
import type { Command} from "commander";
import pino, { type Logger } from "pino";
import { asArgument, writeFileAtomic, isZone, parseHostPort, parsePort, formatHostPort, type HostPort } from "@boxcert/shared";
import { startIssuer, type RunningIssuer } from "@boxcert/issuer";
import { RegistryError } from "@boxcert/store";
import { buildBox, dataPaths, loadOrCreateConfig, updateConfig, type Box, type BoxStatus } from "@boxcert/box";
import { runDns, type RunningDns } from "@boxcert/dns";

export const DEMO_SUBSCRIPTION = "DEMO-0001";
const DEMO_ERP = "http://127.0.0.1:8070/";

interface DemoOptions {
  dataDir: string;
  /** Where `boxcert dns` listens (UDP and TCP); port 0 picks a free one. */
  dnsListen: HostPort;
  zone: string;
  issuerPort: number;
  httpPort: number;
  httpsPort: number;
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

/** The demo's database UUID, made once and kept with the data so a second start finds the same customer. */
async function demoDatabaseUuid(dataDir: string): Promise<string> {
  const file = join(dataDir, "demo.json");
  try {
    return (JSON.parse(readFileSync(file, "utf8")) as { dbUuid: string }).dbUuid;
  } catch {
    const dbUuid = randomUUID();
    await writeFileAtomic(file, JSON.stringify({ dbUuid }, null, 2) + "\n", 0o600);
    return dbUuid;
  }
}

async function ensureCustomer(issuer: RunningIssuer, dbUuid: string): Promise<void> {
  const registry = issuer.operations;
  try {
    await registry.addSubscription({ code: DEMO_SUBSCRIPTION, state: "in_progress", seats: 2 });
  } catch (err) {
    if (!(err instanceof RegistryError && err.code === "conflict")) throw err;
  }
  try {
    await registry.addDatabase({ uuid: dbUuid, subscription: DEMO_SUBSCRIPTION, kind: "production" });
  } catch (err) {
    if (!(err instanceof RegistryError && err.code === "conflict")) throw err;
  }
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
    logger,
  });
}

/** The demo box, connected to the demo's database, asking the demo's issuer, diagnosing with the demo's dns. */
async function buildDemoBox(options: DemoOptions, dataDir: string, issuer: RunningIssuer, dnsAddress: string): Promise<Box> {
  const dbUuid = await demoDatabaseUuid(dataDir);
  await ensureCustomer(issuer, dbUuid);
  const boxDir = join(dataDir, "box");
  const paths = dataPaths(boxDir);
  await loadOrCreateConfig(paths, "demo-box");
  await updateConfig(paths, { server: DEMO_ERP, dbUuid, enterpriseCode: DEMO_SUBSCRIPTION });
  return buildBox({
    dataDir: boxDir,
    issuerUrl: issuer.url,
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

/** The lines the demo prints once the box serves HTTPS (tests and users copy them). */
function demoLines(options: DemoOptions, httpsUrl: string, ports: { httpPort: number; httpsPort: number }, root: string | null, dnsPort: number): string[] {
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
  ];
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
  try {
    dns = await runDns({ zone: options.zone, listen: options.dnsListen, store: storePath, logLevel: "info" }, logger.child({ component: "dns" }));
    box = await buildDemoBox(options, dataDir, issuer, formatHostPort({ host: options.dnsListen.host, port: dns.port }));
    const ports = await box.start();
    const status = await untilServing(box);
    // The box's label may be newer than the dns snapshot's last poll: the printed dig line must work at once.
    await dns.refresh();
    // ACME chains do not carry the root: the curl line needs it from the user (--acme-root).
    const root = options.acmeDirectory ? acmeRoot : join(issuer.ca.folder, "root.pem");
    const lines = demoLines(options, status.httpsUrl, ports, root, dns.port);
    const running = box;
    const runningDns = dns;
    return {
      lines,
      async stop() {
        await running.stop();
        await runningDns.close();
        await issuer.close();
        logger.flush();
      },
    };
  } catch (err) {
    await box?.stop().catch(() => undefined);
    await dns?.close().catch(() => undefined);
    await issuer.close();
    throw err;
  }
}

export function registerDemoCommand(program: Command): void {
  program
    .command("demo")
    .description("run an issuer and one box on 127.0.0.1, and print how to reach the box over HTTPS")
    .option("--data-dir <dir>", "where the demo keeps its data (reused by the next start)", ".data/demo")
    .option("--zone <zone>", "the DNS zone of box names", "boxcert.test")
    .option("--issuer-port <port>", "issuer port", port, 8700)
    .option("--http-port <port>", "box HTTP port", port, 8069)
    .option("--https-port <port>", "box HTTPS port", port, 8443)
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
