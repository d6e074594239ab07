/**
 * `npm run bench -- acme`: seconds from a box's first request to HTTPS that verifies against the CA's root,
 * through Debian's Pebble (DNS-01 through boxcert dns), and in the same run `lego` (Debian), the usual
 * command-line ACME client, getting a certificate for the same two names from the same Pebble, its `exec`
 * DNS provider writing the TXT values into the same store through a hook of ours.
 *
 * The issuer, dns and box run in this process (one event loop, as a small deployment would not); lego is
 * a process of its own. One round of each first (account registration), then ROUNDS measured; medians.
 * Target (issue 4): under 2 seconds for boxcert.
 */
import { spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { chmodSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { join } from "node:path";
import { connect as tlsConnect } from "node:tls";
import pino from "pino";
import { startIssuer, type RunningIssuer } from "@boxcert/issuer";
import { ZoneRecords } from "@boxcert/store";
import { buildBox, dataPaths, loadOrCreateConfig, updateConfig } from "@boxcert/box";
import { runDns } from "@boxcert/dns";
import { ensureDebianPackage, freePort, tempDir } from "../test/support/processes.ts";
import { startPebble, type StartedPebble } from "../test/support/pebble.ts";
import { median, resultLine } from "./stats.ts";

const ZONE = "boxcert.test";
const ROUNDS = Number(process.env["BENCH_ACME_ROUNDS"] ?? 5);
const TARGET_SECONDS = 2;

/** Resolves once a TLS handshake to the box for `servername` verifies against `ca`; polls every 10 ms. */
async function untilVerifiedHttps(port: number, servername: string, ca: string[], deadlineMs: number): Promise<void> {
  const attempt = () =>
    new Promise<boolean>((resolve) => {
      const socket = tlsConnect({ host: "127.0.0.1", port, servername, ca, rejectUnauthorized: false }, () => {
        const ok = socket.authorized;
        socket.destroy();
        resolve(ok);
      });
      socket.once("error", () => resolve(false));
    });
  while (!(await attempt())) {
    if (Date.now() > deadlineMs) throw new Error(`no verified HTTPS on port ${port} for ${servername}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** One box, new customer, first start: seconds from start() (its first request) to verified HTTPS. */
async function boxcertRound(issuer: RunningIssuer, pebble: StartedPebble, round: number): Promise<{ seconds: number; label: string }> {
  const code = `BENCH-ACME-${round}-${randomUUID().slice(0, 6)}`;
  await issuer.operations.addSubscription({ code, state: "in_progress", seats: 1 });
  const dbUuid = randomUUID();
  await issuer.operations.addDatabase({ uuid: dbUuid, subscription: code, kind: "production" });
  const dataDir = tempDir("boxcert-bench-acme-box-");
  const paths = dataPaths(dataDir);
  await loadOrCreateConfig(paths, `bench-${round}`);
  await updateConfig(paths, { server: "http://erp.test:8069/", dbUuid, enterpriseCode: code });
  const box = buildBox({ dataDir, issuerUrl: issuer.url, httpPort: 0, httpsPort: 0, host: "127.0.0.1", ip: "127.0.0.1", logToStdout: false, logLevel: "error" });
  const started = performance.now();
  const ports = await box.start();
  try {
    let status = box.status();
    while (!status.httpsUrl) {
      if (status.certificate.status === "error") throw new Error(`box: ${status.certificate.errorCode} ${status.certificate.detail ?? ""}`);
      if (performance.now() - started > 60_000) throw new Error("box: no certificate after 60 s");
      await new Promise((r) => setTimeout(r, 5));
      status = box.status();
    }
    const host = new URL(status.httpsUrl).hostname;
    await untilVerifiedHttps(ports.httpsPort, host, [pebble.rootPem, pebble.intermediatePem], Date.now() + 30_000);
    return { seconds: (performance.now() - started) / 1000, label: host.split(".")[1]! };
  } finally {
    await box.stop();
  }
}

/** The exec provider's hook: `hook.sh present|cleanup FQDN VALUE` → this server → the store dns serves. */
async function startHook(records: ZoneRecords): Promise<{ server: Server; port: number }> {
  const server = createServer((req, res) => {
    let body = "";
    req.setEncoding("utf8");
    req.on("data", (d: string) => (body += d));
    req.on("end", () => {
      void (async () => {
        const params = new URLSearchParams(body);
        const fqdn = (params.get("fqdn") ?? "").toLowerCase().replace(/\.$/, "");
        const value = params.get("value") ?? "";
        const match = new RegExp(`^_acme-challenge\\.([a-z2-7]+)\\.${ZONE.replace(/\./g, "\\.")}$`).exec(fqdn);
        if (!match) return void res.writeHead(400).end(`not a challenge name of the zone: ${fqdn}`);
        if (req.url === "/present") await records.addChallenge(match[1]!, value);
        else if (req.url === "/cleanup") await records.removeChallenge(match[1]!, value);
        else return void res.writeHead(404).end();
        res.writeHead(204).end();
      })().catch((err: Error) => res.writeHead(500).end(err.message));
    });
  });
  const port = await new Promise<number>((resolve) => server.listen(0, "127.0.0.1", () => resolve((server.address() as { port: number }).port)));
  return { server, port };
}

/** One `lego run` for the label's two names, from spawn to exit. */
function legoRound(args: { pebble: StartedPebble; dnsPort: number; hook: string; path: string; label: string }): Promise<number> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    let output = "";
    const child = spawn(
      "lego",
      [
        "--server", args.pebble.directoryUrl, "--accept-tos", "--email", "bench@example.net", "--key-type", "ec256",
        "--dns", "exec", "--dns.resolvers", `127.0.0.1:${args.dnsPort}`, "--dns.disable-cp",
        "--domains", `*.${args.label}.${ZONE}`, "--domains", `${args.label}.${ZONE}`, "--path", args.path, "run",
      ],
      {
        stdio: ["ignore", "pipe", "pipe"],
        env: {
          ...process.env,
          LEGO_CA_CERTIFICATES: args.pebble.tls.ca,
          EXEC_PATH: args.hook,
          // lego's shortest settings (whole seconds): poll every second, one second between the two values.
          EXEC_POLLING_INTERVAL: "1",
          EXEC_PROPAGATION_TIMEOUT: "30",
          EXEC_SEQUENCE_INTERVAL: "1",
        },
      },
    );
    child.stdout.on("data", (d: Buffer) => (output += d.toString()));
    child.stderr.on("data", (d: Buffer) => (output += d.toString()));
    child.once("error", reject);
    child.once("exit", (code) => {
      if (process.env["BENCH_ACME_LEGO_LOG"]) writeFileSync(`${process.env["BENCH_ACME_LEGO_LOG"]}.${args.label}`, output);
      if (code === 0) resolve((performance.now() - started) / 1000);
      else reject(new Error(`lego exited with ${code}:\n${output.slice(-3000)}`));
    });
  });
}

export async function benchAcme(): Promise<void> {
  ensureDebianPackage("pebble", "pebble");
  ensureDebianPackage("lego", "lego");
  const dir = tempDir("boxcert-bench-acme-");
  const dnsPort = await freePort();
  const pebble = await startPebble({ dnsServer: `127.0.0.1:${dnsPort}` });
  const logger = pino({ level: "silent" });
  const store = join(dir, "registry.sqlite");
  let issuer: RunningIssuer | undefined;
  let dns: Awaited<ReturnType<typeof runDns>> | undefined;
  let hook: { server: Server; port: number } | undefined;
  try {
    issuer = await startIssuer({
      store,
      zone: ZONE,
      ca: "acme",
      acme: { directories: [{ url: pebble.directoryUrl }], caBundle: pebble.tls.ca, dnsServers: [{ host: "127.0.0.1", port: dnsPort }] },
      // The dns is told of each challenge value by DNS NOTIFY (an --acme-dns-server is notified anyway; said here too).
      notifyDns: [{ host: "127.0.0.1", port: dnsPort }],
      listen: { host: "127.0.0.1", port: 0 },
      plainHttp: true,
      lifetimeMs: 90 * 86_400_000,
      maxCertificatesPerWeek: 10,
      logger,
    });
    dns = await runDns({ zone: ZONE, listen: { host: "127.0.0.1", port: dnsPort }, store, logLevel: "error" }, logger);
    const { db } = issuer.store;
    hook = await startHook(new ZoneRecords(db));
    const hookScript = join(dir, "hook.sh");
    writeFileSync(hookScript, `#!/bin/sh\nexec curl -sf -X POST "http://127.0.0.1:${hook.port}/$1" --data-urlencode "fqdn=$2" --data-urlencode "value=$3"\n`);
    chmodSync(hookScript, 0o700);
    const legoPath = join(dir, "lego");

    const boxcertSeconds: number[] = [];
    const legoSeconds: number[] = [];
    let cold = { boxcert: 0, lego: 0 };
    for (let round = 0; round <= ROUNDS; round++) {
      const b = await boxcertRound(issuer, pebble, round);
      const l = await legoRound({ pebble, dnsPort, hook: hookScript, path: legoPath, label: b.label });
      if (round === 0) {
        cold = { boxcert: b.seconds, lego: l };
        console.log(`warm-up (account registration): boxcert ${b.seconds.toFixed(3)} s, lego ${l.toFixed(3)} s`);
        continue;
      }
      boxcertSeconds.push(b.seconds);
      legoSeconds.push(l);
      console.log(`round ${round}: boxcert ${b.seconds.toFixed(3)} s (box ${b.label}), lego ${l.toFixed(3)} s`);
    }
    const boxcert = median(boxcertSeconds);
    const lego = median(legoSeconds);
    console.log(`boxcert: box first request → verified HTTPS through Pebble, median ${boxcert.toFixed(3)} s over ${ROUNDS} boxes (target < ${TARGET_SECONDS} s)`);
    console.log(`lego 4.9 (exec DNS provider, 1 s polling): one certificate for the same names, median ${lego.toFixed(3)} s`);
    console.log(
      resultLine("acme", {
        boxcert_seconds: boxcert.toFixed(3),
        lego_seconds: lego.toFixed(3),
        ratio_vs_lego: boxcert / lego,
        boxcert_cold_seconds: cold.boxcert.toFixed(3),
        lego_cold_seconds: cold.lego.toFixed(3),
        rounds: ROUNDS,
        target_seconds: TARGET_SECONDS,
        met: boxcert < TARGET_SECONDS ? "yes" : "no",
      }),
    );
  } finally {
    hook?.server.close();
    await dns?.close();
    await issuer?.close();
    await pebble.stop();
  }
}
