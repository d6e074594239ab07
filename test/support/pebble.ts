/**
 * Debian's `pebble` (an ACME test server) for system tests: its own HTTPS listener gets a certificate made
 * here with openssl, it validates DNS-01 against boxcert dns (`-dnsserver`, TCP only), without its random
 * validation delay and without rejecting good nonces. Its roots change at every start.
 */
import { writeFileSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { Agent, request } from "node:https";
import { ensureDebianPackage, freePort, makeServerTls, spawnProcess, StopWaiting, tempDir, waitFor } from "./processes.ts";

export interface Pebble {
  directoryUrl: string;
  /** The CA that signed Pebble's own HTTPS certificate (for --acme-ca-bundle). */
  tlsCaFile: string;
  /** Pebble's root and intermediate of this run (ACME chains carry no root). */
  rootPem: string;
  intermediatePem: string;
  output(): string;
  stop(): Promise<void>;
}

function get(url: string, agent: Agent): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { agent, timeout: 2000 }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => (body += d));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", reject);
    req.end();
  });
}

export interface PebbleOptions {
  /** Where boxcert dns listens (UDP and TCP). */
  dnsServer: string;
  /** Reuse these ports (to restart "the same" CA at the same address). */
  ports?: { listen: number; management: number };
  /** Reuse this HTTPS certificate (a restarted Pebble the issuer already trusts). */
  tls?: { ca: string; cert: string; key: string };
  /** Require external account binding, with these key IDs and base64url HMAC keys. */
  eab?: Record<string, string>;
}

export interface StartedPebble extends Pebble {
  ports: { listen: number; management: number };
  tls: { ca: string; cert: string; key: string };
}

export async function startPebble(options: PebbleOptions): Promise<StartedPebble> {
  ensureDebianPackage("pebble", "pebble");
  const dir = tempDir("boxcert-pebble-");
  const tls = options.tls ?? (await makeServerTls(dir));
  const ports = options.ports ?? { listen: await freePort(), management: await freePort() };
  const config = join(dir, "pebble-config.json");
  writeFileSync(
    config,
    JSON.stringify({
      pebble: {
        listenAddress: `127.0.0.1:${ports.listen}`,
        managementListenAddress: `127.0.0.1:${ports.management}`,
        certificate: tls.cert,
        privateKey: tls.key,
        // Unused (DNS-01 only), but Pebble wants them; ports nobody listens on.
        httpPort: 5002,
        tlsPort: 5001,
        ocspResponderURL: "",
        externalAccountBindingRequired: options.eab !== undefined,
        ...(options.eab ? { externalAccountMACKeys: options.eab } : {}),
      },
    }),
  );
  const proc = spawnProcess("pebble", ["-config", config, "-dnsserver", options.dnsServer], {
    cwd: dir,
    env: { ...process.env, PEBBLE_VA_NOSLEEP: "1", PEBBLE_WFE_NONCEREJECT: "0" },
  });
  const { child, stop } = proc;
  const output = () => proc.output();
  const agent = new Agent({ ca: readFileSync(tls.ca, "utf8") });
  const directoryUrl = `https://127.0.0.1:${ports.listen}/dir`;
  try {
    await waitFor("pebble's directory", async () => {
      if (child.exitCode !== null) throw new StopWaiting(`pebble exited with ${child.exitCode}:\n${output()}`);
      return (await get(directoryUrl, agent)).status === 200;
    }, 30_000);
    const fetchPem = async (path: string) => {
      const answer = await get(`https://127.0.0.1:${ports.management}${path}`, agent);
      if (answer.status !== 200) throw new Error(`pebble ${path}: ${answer.status}`);
      return answer.body;
    };
    const rootPem = await waitFor("pebble's root", () => fetchPem("/roots/0"), 10_000);
    const intermediatePem = await fetchPem("/intermediates/0");
    return { directoryUrl, tlsCaFile: tls.ca, rootPem, intermediatePem, output, stop, ports, tls };
  } catch (err) {
    await stop();
    throw err;
  } finally {
    agent.destroy();
  }
}
