/**
 * The whole first path with real processes: a box gets its certificate from an HTTPS issuer, serves it,
 * renews it before expiry without dropping a request, and never sends its private key.
 */
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { connect as tlsConnect, type TLSSocket } from "node:tls";
import { createServer, connect as netConnect, type Server } from "node:net";
import { request as httpsRequest, Agent } from "node:https";
import { X509Certificate, createPrivateKey } from "node:crypto";
import { execFileSync } from "node:child_process";
import { freePort, makeServerTls, tempDir } from "./support/processes.ts";
import { connect, customer, embeddedRoot, startBox, startIssuerProcess, type Box, type Issuer } from "./support/system.ts";

const stops: Array<() => Promise<void>> = [];
after(async () => {
  await Promise.all(stops.map((s) => s()));
});

async function issuerOf(options: Parameters<typeof startIssuerProcess>[0] = {}): Promise<Issuer> {
  const issuer = await startIssuerProcess(options);
  stops.push(() => issuer.proc.stop());
  return issuer;
}
async function boxOf(options: Parameters<typeof startBox>[0]): Promise<Box> {
  const box = await startBox(options);
  stops.push(() => box.proc.stop());
  return box;
}

function pemBlocks(pem: string, type: string): string[] {
  return pem.match(new RegExp(`-----BEGIN ${type}-----[\\s\\S]+?-----END ${type}-----`, "g")) ?? [];
}

/** The certificate the box presents to a TLS client asking for `servername`, verified against `ca`. */
function servedCertificate(port: number, servername: string, ca: string): Promise<X509Certificate> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host: "127.0.0.1", port, servername, ca, checkServerIdentity: () => undefined }, () => {
      const peer = socket.getPeerX509Certificate();
      socket.end();
      if (!socket.authorized) reject(new Error(`not authorized: ${socket.authorizationError}`));
      else resolve(peer!);
    });
    socket.once("error", reject);
  });
}

test("box → HTTPS issuer → certificate: chain, names, key, served, curl", async () => {
  const tls = await makeServerTls(tempDir("boxcert-tls-"));
  const issuer = await issuerOf({ tls });
  const uuid = await customer(issuer.store, "PATH-1", "in_progress", 2);
  const dataDir = tempDir("boxcert-box-");
  await connect(dataDir, uuid, "PATH-1");
  // The box verifies the chain it is given: --issuer-ca holds the issuer's TLS root and the embedded CA's root.
  const rootPath = embeddedRoot(issuer);
  const box = await boxOf({ issuer: issuer.url, issuerCa: [tls.ca, rootPath], dataDir });
  const status = await box.until("certificate", (s) => s.certificate.status === "ok");
  const label = status.httpsUrl!.match(/^https:\/\/127-0-0-1\.([a-z2-7]+)\.boxcert\.test:(\d+)\/$/)![1]!;
  assert.deepEqual(status.certificate.names, [`*.${label}.boxcert.test`, `${label}.boxcert.test`]);
  assert.equal(status.certificate.subject, `*.${label}.boxcert.test`);

  const file = readFileSync(join(dataDir, "https.pem"), "utf8");
  assert.equal(statSync(join(dataDir, "https.pem")).mode & 0o777, 0o600);
  assert.equal(statSync(join(dataDir, "identity.key")).mode & 0o777, 0o600);
  const [leafPem, intermediatePem] = pemBlocks(file, "CERTIFICATE");
  const root = new X509Certificate(readFileSync(rootPath));
  const leaf = new X509Certificate(leafPem!);
  const intermediate = new X509Certificate(intermediatePem!);
  assert.ok(leaf.verify(intermediate.publicKey) && intermediate.verify(root.publicKey));
  assert.ok(leaf.checkHost(`127-0-0-1.${label}.boxcert.test`));
  const key = createPrivateKey(pemBlocks(file, "PRIVATE KEY")[0]!);
  assert.ok(leaf.checkPrivateKey(key), "the key in https.pem matches its certificate");
  const dir = tempDir("boxcert-verify-");
  writeFileSync(join(dir, "leaf.pem"), leafPem!);
  writeFileSync(join(dir, "intermediate.pem"), intermediatePem!);
  assert.match(execFileSync("openssl", ["verify", "-CAfile", rootPath, "-untrusted", join(dir, "intermediate.pem"), join(dir, "leaf.pem")]).toString(), /OK/);

  const host = `127-0-0-1.${label}.boxcert.test`;
  const served = await servedCertificate(box.httpsPort, host, readFileSync(rootPath, "utf8"));
  assert.equal(served.fingerprint256, leaf.fingerprint256);
  const curl = execFileSync("curl", ["-sS", "--fail", "--cacert", rootPath, "--resolve", `${host}:${box.httpsPort}:127.0.0.1`, `https://${host}:${box.httpsPort}/api/status`]).toString();
  assert.equal(JSON.parse(curl).certificate.status, "ok");
  // TLS policy: no TLS 1.1, no non-AEAD suites.
  assert.throws(() => execFileSync("openssl", ["s_client", "-connect", `127.0.0.1:${box.httpsPort}`, "-tls1_1"], { input: "", stdio: "pipe" }));
  assert.throws(() => execFileSync("openssl", ["s_client", "-connect", `127.0.0.1:${box.httpsPort}`, "-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-SHA256"], { input: "", stdio: "pipe" }));
});

test("renewal before expiry, swapped under a request loop with zero failures", async () => {
  const issuer = await issuerOf({ lifetime: "24s" });
  const uuid = await customer(issuer.store, "RENEW-1", "in_progress", 1);
  const dataDir = tempDir("boxcert-box-");
  await connect(dataDir, uuid, "RENEW-1");
  const box = await boxOf({ issuer: issuer.url, dataDir });
  const first = await box.until("first certificate", (s) => s.certificate.status === "ok");
  const ca = readFileSync(join(issuer.keysDir, "embedded-ca", "root.pem"), "utf8");
  const host = new URL(first.httpsUrl!).hostname;
  const keepAlive = new Agent({ keepAlive: true, ca, servername: host, maxSockets: 2 });
  const fresh = new Agent({ keepAlive: false, ca, servername: host });
  let ok = 0;
  const failures: string[] = [];
  const serials = new Set<string>();
  const one = (agent: Agent) =>
    new Promise<void>((resolve) => {
      const req = httpsRequest({ host: "127.0.0.1", port: box.httpsPort, path: "/api/ping", agent, servername: host, headers: { host } }, (res) => {
        const cert = (res.socket as TLSSocket).getPeerCertificate();
        if (cert?.serialNumber) serials.add(cert.serialNumber);
        res.resume();
        res.on("end", () => {
          if (res.statusCode === 200) ok++;
          else failures.push(`status ${res.statusCode}`);
          resolve();
        });
      });
      req.on("error", (err) => {
        failures.push(err.message);
        resolve();
      });
      req.end();
    });
  const deadline = Date.parse(first.certificate.renewAfter!) + 4000;
  let renewed = first;
  // Loop until the box reports the new certificate, then keep going for a few rounds so requests on new
  // connections after the swap are part of the run.
  let roundsAfterRenewal = 0;
  while (Date.now() < deadline + 6000 && roundsAfterRenewal < 20) {
    await Promise.all([one(keepAlive), one(fresh)]);
    renewed = await box.status();
    if (renewed.certificate.notAfter !== first.certificate.notAfter) roundsAfterRenewal++;
  }
  keepAlive.destroy();
  fresh.destroy();
  assert.notEqual(renewed.certificate.notAfter, first.certificate.notAfter, "renewed");
  assert.ok(Date.now() < Date.parse(first.certificate.notAfter!), "renewed before the first certificate expired");
  assert.equal(renewed.certificate.status, "ok");
  assert.deepEqual(failures, []);
  assert.ok(ok > 20, `only ${ok} requests`);
  assert.ok(serials.size >= 2, "connections saw both certificates");
});

test("no request body the issuer received contains private key material", async () => {
  const issuer = await issuerOf();
  const uuid = await customer(issuer.store, "KEYS-1", "in_progress", 1);
  // A recording TCP proxy between the box and the issuer (plain HTTP, so the bytes are readable).
  const upstream = new URL(issuer.url);
  const received: Buffer[] = [];
  const proxy: Server = createServer((client) => {
    const server = netConnect(Number(upstream.port), upstream.hostname);
    client.on("data", (d: Buffer) => received.push(Buffer.from(d)));
    client.pipe(server).pipe(client);
    client.on("error", () => server.destroy());
    server.on("error", () => client.destroy());
  });
  const port = await freePort();
  await new Promise<void>((r) => proxy.listen(port, "127.0.0.1", r));
  stops.push(() => new Promise((r) => proxy.close(() => r())));
  const dataDir = tempDir("boxcert-box-");
  await connect(dataDir, uuid, "KEYS-1");
  const box = await boxOf({ issuer: `http://127.0.0.1:${port}`, dataDir });
  await box.until("certificate through the proxy", (s) => s.certificate.status === "ok");
  const sent = Buffer.concat(received).toString("latin1");
  assert.match(sent, /POST \/v1\/certificate/);
  assert.doesNotMatch(sent, /PRIVATE KEY/);
  const file = readFileSync(join(dataDir, "https.pem"), "utf8");
  const secrets = [createPrivateKey(pemBlocks(file, "PRIVATE KEY")[0]!), createPrivateKey(readFileSync(join(dataDir, "identity.key")))];
  for (const key of secrets) {
    const d = Buffer.from(key.export({ format: "jwk" }).d!, "base64url");
    for (const form of [d.toString("base64"), d.toString("base64url"), d.toString("hex"), d.toString("latin1")]) {
      assert.ok(!sent.includes(form), "a private scalar was sent");
    }
  }
});
