/**
 * ACME Renewal Information (RFC 9773) with Debian's Pebble, which has no renewalInfo of its own: a small
 * HTTP server here serves Pebble's directory with `renewalInfo` (and `meta.caaIdentities`) added, and
 * answers the renewal window the test chooses. The window steers the box's renewAfter; moved into the past,
 * the box's next check renews, and the new order names the certificate it replaces.
 */
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { Agent, request } from "node:https";
import { join } from "node:path";
import { promisify } from "node:util";
import { certificateId } from "../packages/issuer/src/acme-renewal-info.ts";
import { startAcmeSystem, leafPem, type AcmeSystem } from "./support/acme-system.ts";
import { ZONE } from "./support/system.ts";

const run = promisify(execFile);
let system: AcmeSystem | undefined;
let ari: Server | undefined;
after(async () => {
  await system?.stop();
  ari?.close();
});

function getJson(url: string, ca: string): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    request(url, { agent: new Agent({ ca }) }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => (body += d));
      res.on("end", () => resolve(JSON.parse(body) as Record<string, unknown>));
    })
      .on("error", reject)
      .end();
  });
}

test("ARI: the CA's window steers renewAfter; a window moved into the past renews at the next check, with `replaces`", async () => {
  let window = { start: new Date(Date.now() + 2 * 86_400_000), end: new Date(Date.now() + 2 * 86_400_000 + 3600_000) };
  const asked: string[] = [];
  let pebbleDirectory = "";
  let pebbleCa = "";
  ari = createServer((req, res) => {
    void (async () => {
      if (req.url === "/dir") {
        const dir = await getJson(pebbleDirectory, pebbleCa);
        const meta = (dir["meta"] ?? {}) as Record<string, unknown>;
        res.writeHead(200, { "content-type": "application/json" });
        res.end(JSON.stringify({ ...dir, renewalInfo: `http://127.0.0.1:${port}/renewal-info`, meta: { ...meta, caaIdentities: ["pebble.boxcert.example"] } }));
        return;
      }
      const match = /^\/renewal-info\/([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+)$/.exec(req.url ?? "");
      if (!match) return void res.writeHead(404).end();
      asked.push(match[1]!);
      res.writeHead(200, { "content-type": "application/json", "retry-after": "1" });
      res.end(JSON.stringify({ suggestedWindow: { start: window.start.toISOString(), end: window.end.toISOString() } }));
    })().catch((err: Error) => res.writeHead(500).end(err.message));
  });
  const port = await new Promise<number>((resolve) => ari!.listen(0, "127.0.0.1", () => resolve((ari!.address() as { port: number }).port)));

  system = await startAcmeSystem({
    acmeFlags: (pebble) => {
      pebbleDirectory = pebble.directoryUrl;
      pebbleCa = readFileSync(pebble.tls.ca, "utf8");
      return ["--acme-directory", `http://127.0.0.1:${port}/dir`];
    },
  });
  // Boxes refresh (ask the issuer about the certificate they serve) every 6 h; here every 10 s.
  const box = await system.box("ARI-1", ["--check-interval", "10s"]);
  const first = await box.until("a certificate from Pebble", (s) => s.certificate.status !== "missing" && s.certificate.status !== "renewing", 60_000);
  assert.equal(first.certificate.status, "ok", `${JSON.stringify(first.certificate)}\n${system.output(box)}`);
  const firstId = certificateId(leafPem(readFileSync(join(box.dataDir, "https.pem"), "utf8")))!;
  assert.ok(asked.includes(firstId), `the issuer asked for ${firstId} (asked: ${asked.join(", ")})`);
  const renewAfter = Date.parse(first.certificate.renewAfter!);
  assert.ok(renewAfter >= window.start.getTime() && renewAfter <= window.end.getTime(), `renewAfter ${first.certificate.renewAfter} inside ${JSON.stringify(window)}`);

  // The dns component's CAA records name the directory's CA (published by the issuer).
  const { stdout } = await run("dig", ["+short", "+tcp", "-p", String(system.dnsPort), "@127.0.0.1", ZONE, "CAA"]);
  assert.match(stdout, /0 issue "pebble\.boxcert\.example"/);

  // The CA moves the window into the past (as in a mass revocation): the next check renews at once.
  window = { start: new Date(Date.now() - 2 * 3600_000), end: new Date(Date.now() - 3600_000) };
  // The box's next periodic refresh (within 10 s; the answer's Retry-After of 1 s has passed by then).
  const servedId = () => certificateId(leafPem(readFileSync(join(box.dataDir, "https.pem"), "utf8")));
  const second = await box.until("the replacing certificate", (s) => s.certificate.status === "ok" && servedId() !== firstId, 60_000);
  assert.equal(second.certificate.status, "ok");
  const out = system.issuer.proc.output();
  assert.match(out, /the CA moved the renewal window/);
  assert.match(out, new RegExp(`"replaces":"${firstId.replace(/[.]/g, "\\.")}"`), `the new order names ${firstId}\n${out.slice(-3000)}`);
});
