import { test } from "node:test";
import assert from "node:assert/strict";
import https from "node:https";
import { X509Certificate } from "node:crypto";
import type { TLSSocket } from "node:tls";
import pino from "pino";
import { certificateNames } from "@boxcert/shared";
import { startServers } from "../src/web/server.ts";
import type { TlsMaterial } from "../src/web/server.ts";
import { newTlsKey } from "../src/certificate/tls-key.ts";
import { issueLeaf, makeCa } from "./helpers/pki.ts";

const NAMES = certificateNames("abcdefghijklmnop", "boxcert.test");
const HOST = "127-0-0-1.abcdefghijklmnop.boxcert.test";

interface Seen {
  serial: string;
  reused: boolean;
}

function get(port: number, ca: string, agent: https.Agent | false): Promise<Seen> {
  return new Promise((resolve, reject) => {
    const req = https.get({ host: "127.0.0.1", port, servername: HOST, path: "/api/ping", ca, agent }, (res) => {
      const socket = res.socket as TLSSocket;
      const serial = socket.getPeerCertificate().serialNumber;
      const reused = socket.isSessionReused() || (agent !== false && (req as unknown as { reusedSocket: boolean }).reusedSocket);
      res.resume();
      res.on("end", () => (res.statusCode === 200 ? resolve({ serial, reused }) : reject(new Error(`HTTP ${res.statusCode}`))));
    });
    req.on("error", reject);
  });
}

test("a new certificate is swapped in under load: no failure, new connections get it", async () => {
  const ca = await makeCa("Swap CA");
  const material = async (): Promise<TlsMaterial & { serial: string }> => {
    const key = newTlsKey();
    const leaf = await issueLeaf(ca, { publicKey: key.privateKey, names: NAMES });
    return { keyPem: key.pem, chainPem: leaf, serial: new X509Certificate(leaf).serialNumber };
  };
  const a = await material();
  const b = await material();
  const servers = await startServers({
    host: "127.0.0.1",
    httpPort: 0,
    httpsPort: 0,
    logger: pino({ level: "silent" }),
    certificate: a,
    routes: (app) => {
      app.get("/api/ping", async () => ({ ok: true }));
    },
  });
  const keepAlive = new https.Agent({ keepAlive: true, maxSockets: 1 });
  const failures: unknown[] = [];
  const seen: { fresh: Seen[]; kept: Seen[] } = { fresh: [], kept: [] };
  let swapped = false;
  let stop = false;
  const afterSwap: Seen[] = [];

  const loop = async (agent: https.Agent | false, into: Seen[]): Promise<void> => {
    while (!stop) {
      const wasSwapped = swapped;
      try {
        const result = await get(servers.httpsPort, ca.pem, agent);
        into.push(result);
        if (agent === false && wasSwapped) afterSwap.push(result);
      } catch (err) {
        failures.push(err);
      }
    }
  };
  try {
    const loops = [loop(keepAlive, seen.kept), loop(false, seen.fresh), loop(false, seen.fresh), loop(false, seen.fresh)];
    // Counts, not durations: the machine may be slow; the loops run until each side has seen enough.
    const until = async (done: () => boolean) => {
      const deadline = Date.now() + 30_000;
      while (!done() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    };
    await until(() => seen.fresh.length >= 10 && seen.kept.length >= 10);
    servers.setCertificate(b);
    swapped = true;
    await until(() => afterSwap.length > 20 && seen.kept.length >= 20);
    stop = true;
    await Promise.all(loops);
  } finally {
    keepAlive.destroy();
    await servers.close();
  }
  assert.deepEqual(failures, []);
  assert.ok(seen.fresh.some((s) => s.serial === a.serial), "no connection saw A before the swap");
  assert.ok(afterSwap.length > 10, `only ${afterSwap.length} new connections after the swap`);
  assert.ok(afterSwap.every((s) => s.serial === b.serial), "a new connection after the swap got A");
  assert.ok(seen.kept.length > 10);
  assert.ok(seen.kept.every((s) => s.serial === a.serial), "the kept-alive connection changed certificate");
});

test("before any certificate the HTTPS port is bound but refuses handshakes; it serves once one is set", async () => {
  const ca = await makeCa("Late CA");
  const key = newTlsKey();
  const leaf = await issueLeaf(ca, { publicKey: key.privateKey, names: NAMES });
  const servers = await startServers({
    host: "127.0.0.1",
    httpPort: 0,
    httpsPort: 0,
    logger: pino({ level: "silent" }),
    certificate: null,
    routes: (app) => {
      app.get("/api/ping", async () => ({ ok: true }));
    },
  });
  try {
    assert.equal(servers.hasCertificate, false);
    await assert.rejects(get(servers.httpsPort, ca.pem, false), /handshake failure|EPROTO|alert/i);
    servers.setCertificate({ keyPem: key.pem, chainPem: leaf });
    assert.equal((await get(servers.httpsPort, ca.pem, false)).reused, false);
  } finally {
    await servers.close();
  }
});
