/** Pebble validating against boxcert dns, an issuer ordering from it, dns serving the issuer's store. */
import type { X509Certificate } from "node:crypto";
import { connect as tlsConnect } from "node:tls";
import { freePort, startBoxcert, tempDir, type Proc } from "./processes.ts";
import { connect, customer, startBox, startIssuerProcess, ZONE, type Box, type Issuer } from "./system.ts";
import { startPebble, type PebbleOptions, type StartedPebble } from "./pebble.ts";

export interface AcmeSystem {
  pebble: StartedPebble;
  issuer: Issuer;
  dns: Proc;
  dnsPort: number;
  /** Stops everything started, last first. */
  stop(): Promise<void>;
  /** A new eligible box of a new customer, connected and started. */
  box(code: string, extra?: string[]): Promise<Box>;
  output(box?: Box): string;
}

export interface AcmeSystemOptions {
  pebble?: Omit<PebbleOptions, "dnsServer">;
  /** The issuer's ACME flags given Pebble's directory (default: that directory alone). */
  acmeFlags?: (pebble: StartedPebble) => string[] | Promise<string[]>;
  /** Extra flags for dns. */
  dnsFlags?: string[];
}

export async function startAcmeSystem(options: AcmeSystemOptions = {}): Promise<AcmeSystem> {
  const stops: Array<() => Promise<void>> = [];
  const stop = async () => {
    for (const s of stops.reverse()) await s();
  };
  try {
    const dnsPort = await freePort();
    const pebble = await startPebble({ ...options.pebble, dnsServer: `127.0.0.1:${dnsPort}` });
    stops.push(() => pebble.stop());
    const acmeFlags = options.acmeFlags ? await options.acmeFlags(pebble) : ["--acme-directory", pebble.directoryUrl];
    const issuer = await startIssuerProcess({
      extra: ["--ca", "acme", ...acmeFlags, "--acme-ca-bundle", pebble.tls.ca, "--acme-contact", "ops@example.net", "--acme-dns-server", `127.0.0.1:${dnsPort}`],
    });
    stops.push(() => issuer.proc.stop());
    const dns = await startBoxcert(["dns", "--zone", ZONE, "--listen", `127.0.0.1:${dnsPort}`, "--store", issuer.store, ...(options.dnsFlags ?? [])], (out) => out.includes("dns listening"));
    stops.push(() => dns.stop());
    const system: AcmeSystem = {
      pebble,
      issuer,
      dns,
      dnsPort,
      stop,
      async box(code: string, extra: string[] = []) {
        const uuid = await customer(issuer.store, code, "in_progress", 2);
        const dataDir = tempDir("boxcert-box-");
        await connect(dataDir, uuid, code);
        const box = await startBox({ issuer: issuer.url, dataDir, extra });
        stops.push(() => box.proc.stop());
        return box;
      },
      output(box?: Box) {
        return [`pebble:\n${pebble.output().slice(-3000)}`, `issuer:\n${issuer.proc.output().slice(-4000)}`, box ? `box:\n${box.proc.output().slice(-2000)}` : ""].join("\n");
      },
    };
    return system;
  } catch (err) {
    await stop();
    throw err;
  }
}

/** The chain the box serves for `servername`, verified by node against `ca` (Pebble's root + intermediate). */
export function servedChain(port: number, servername: string, ca: string[]): Promise<X509Certificate> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host: "127.0.0.1", port, servername, ca }, () => {
      const peer = socket.getPeerX509Certificate();
      socket.end();
      if (!socket.authorized) reject(new Error(`not authorized: ${socket.authorizationError}`));
      else resolve(peer!);
    });
    socket.once("error", reject);
  });
}

/** The first certificate of a PEM file's text. */
export function leafPem(pem: string): string {
  return pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/)![0];
}
