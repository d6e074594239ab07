/**
 * The compiled programs (`npm run build`, scripts/build.ts), run by node itself as a vendor runs them: no
 * tsx, no TypeScript. The rest of the suite runs the sources; this file is what proves the bundles work:
 * the `boxcert` bundle's issuer (better-sqlite3 and its migrations from node_modules), admin, dns and
 * database (its pages' files embedded, @boxcert/web found), and the box's own bundle, which enrols, makes a
 * CSR (@peculiar/x509 in its lazy chunk), saves and serves a certificate that verifies, and serves its
 * homepage with its stylesheet from inside the bundle.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { randomUUID } from "node:crypto";
import { connect as tlsConnect } from "node:tls";
import { promisify } from "node:util";
import { ensureBuild } from "../scripts/ensure-build.ts";
import { freePort, portOpen, ROOT, spawnProcess, tempDir, waitFor, type Proc } from "./support/processes.ts";

const run = promisify(execFile);
const BOXCERT = join(ROOT, "packages/cli/dist/boxcert.js");
const BOX = join(ROOT, "packages/box/dist/boxcert-box.js");
const ZONE = "boxcert.test";

const procs: Proc[] = [];
const dir = tempDir("boxcert-compiled-");
let issuerUrl = "";
let store = "";
let keysDir = "";

async function compiled(program: string, ...args: string[]): Promise<string> {
  try {
    return (await run(process.execPath, [program, ...args], { cwd: dir })).stdout;
  } catch (err) {
    const e = err as { message: string; stderr?: string };
    throw new Error(`${program} ${args.join(" ")}: ${e.stderr ?? e.message}`, { cause: err });
  }
}

function start(program: string, args: string[]): Proc {
  const proc = spawnProcess(process.execPath, [program, ...args], { cwd: dir });
  procs.push(proc);
  return proc;
}

before(async () => {
  ensureBuild();
  const port = await freePort();
  store = join(dir, "issuer", "registry.sqlite");
  keysDir = join(dir, "issuer", "keys");
  const issuer = start(BOXCERT, ["issuer", "--zone", ZONE, "--store", store, "--keys-dir", keysDir, "--listen", `127.0.0.1:${port}`, "--plain-http", "--cert-lifetime", "1h"]);
  await waitFor("the compiled issuer's port", async () => {
    if (issuer.child.exitCode !== null) throw new Error(`the compiled issuer exited:\n${issuer.output()}`);
    return portOpen(port);
  });
  issuerUrl = `http://127.0.0.1:${port}`;
});

after(async () => {
  await Promise.all(procs.map((p) => p.stop()));
  rmSync(dir, { recursive: true, force: true });
});

test("the box's bundle, run by node: enrols, makes its CSR, saves a certificate that verifies, serves it and its homepage", async () => {
  const code = `COMPILED-${randomUUID().slice(0, 8)}`;
  const dbUuid = randomUUID();
  await compiled(BOXCERT, "admin", "subscription", "add", code, "--state", "in_progress", "--seats", "1", "--store", store);
  await compiled(BOXCERT, "admin", "database", "add", dbUuid, "--subscription", code, "--kind", "production", "--store", store);
  const dataDir = join(dir, "box");
  await compiled(BOX, "box", "connect", "--data-dir", dataDir, "--server", "https://erp.example.test/", "--db-uuid", dbUuid, "--enterprise-code", code);
  const rootFile = join(keysDir, "embedded-ca", "root.pem");
  const [httpPort, httpsPort] = [await freePort(), await freePort()];
  const box = start(BOX, ["box", "--data-dir", dataDir, "--issuer", issuerUrl, "--issuer-ca", rootFile, "--http-port", String(httpPort), "--https-port", String(httpsPort), "--ip", "127.0.0.1", "--listen-host", "127.0.0.1"]);
  const status = await waitFor("the compiled box's certificate", async () => {
    if (box.child.exitCode !== null) throw new Error(`the compiled box exited:\n${box.output()}`);
    const res = await fetch(`http://127.0.0.1:${httpPort}/api/status`).catch(() => null);
    const body = res?.ok ? ((await res.json()) as { httpsUrl: string | null; certificate: { status: string; errorCode: string | null; detail: string | null } }) : null;
    if (body?.certificate.errorCode) throw new Error(`${body.certificate.errorCode}: ${body.certificate.detail}\n${box.output()}`);
    return body?.certificate.status === "ok" && body.httpsUrl ? body : null;
  }, 60_000);
  const name = new URL(status.httpsUrl!).hostname;
  assert.match(name, new RegExp(`^127-0-0-1\\.[a-z0-9]+\\.${ZONE.replace(".", "\\.")}$`));

  // Served over TLS with the box's name, verified against the issuer's root (never turned off).
  const peer = await new Promise<{ subject: string; authorized: boolean }>((resolve, reject) => {
    const socket = tlsConnect({ host: "127.0.0.1", port: httpsPort, servername: name, ca: readFileSync(rootFile) }, () => {
      const cert = socket.getPeerCertificate();
      resolve({ subject: cert.subjectaltname ?? "", authorized: socket.authorized });
      socket.end();
    });
    socket.once("error", reject);
  });
  assert.equal(peer.authorized, true);
  const wildcard = `DNS:*.${name.split(".").slice(1).join(".")}`;
  assert.ok(peer.subject.split(", ").includes(wildcard), `${peer.subject} covers ${name}`);

  // The homepage and its stylesheet, which the bundle carries inside it.
  const page = await (await fetch(`http://127.0.0.1:${httpPort}/`)).text();
  const css = /href="(\/static\/box\.css\?v=[0-9a-f]+)"/.exec(page)?.[1];
  assert.ok(css, "the homepage links its stylesheet");
  const served = await fetch(`http://127.0.0.1:${httpPort}${css}`);
  assert.equal(served.status, 200);
  assert.equal(await served.text(), readFileSync(join(ROOT, "packages/box/static/box.css"), "utf8"));
  assert.match(readFileSync(join(dataDir, "https.csr.json"), "utf8"), /BEGIN CERTIFICATE REQUEST/, "the CSR kept for refreshes");
});

test("the boxcert bundle's dns answers from the issuer's store; its database serves its pages and @boxcert/web", async () => {
  const dnsPort = await freePort();
  const dns = start(BOXCERT, ["dns", "--zone", ZONE, "--store", store, "--listen", `127.0.0.1:${dnsPort}`, "--ns", `ns1.${ZONE}=127.0.0.1`]);
  const soa = await waitFor("the compiled dns's SOA", async () => {
    if (dns.child.exitCode !== null) throw new Error(`the compiled dns exited:\n${dns.output()}`);
    const { stdout } = await run("dig", ["+short", "+time=1", "+tries=1", "-p", String(dnsPort), "@127.0.0.1", "SOA", ZONE]).catch(() => ({ stdout: "" }));
    return stdout.trim() || null;
  });
  assert.match(soa, new RegExp(`^ns1\\.${ZONE.replace(".", "\\.")}\\. `));

  const erpPort = await freePort();
  const erp = start(BOXCERT, ["erp", "--data-dir", join(dir, "erp"), "--issuer", issuerUrl, "--listen", `127.0.0.1:${erpPort}`, "--plain-http", "--insecure-no-login", "--enterprise-code", "COMPILED-ERP", "--zone", ZONE]);
  const pos = await waitFor("the compiled database's POS page", async () => {
    if (erp.child.exitCode !== null) throw new Error(`the compiled database exited:\n${erp.output()}`);
    const res = await fetch(`http://127.0.0.1:${erpPort}/pos`).catch(() => null);
    return res?.ok ? res.text() : null;
  });
  for (const [file, source] of [["erp.css", "packages/erp/static/erp.css"], ["boxcert-web.js", "packages/web/src/boxcert-web.js"]] as const) {
    const link = new RegExp(`/static/${file.replace(".", "\\.")}\\?v=[0-9a-f]+`).exec(pos)?.[0] ?? `/static/${file}`;
    const res = await fetch(`http://127.0.0.1:${erpPort}${link}`);
    assert.equal(res.status, 200, `${link}: ${res.status}`);
    assert.equal(await res.text(), readFileSync(join(ROOT, source), "utf8"), file);
  }
});
