/**
 * Every error code reached the way a user reaches it: real issuer and box processes on loopback.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { boxcert, freePort, makeServerTls, tempDir } from "./support/processes.ts";
import { admin, connect, customer, startBox, startIssuerProcess, type Box, type Issuer } from "./support/system.ts";

let issuer: Issuer;
const boxes: Box[] = [];
const servers: Server[] = [];

before(async () => {
  issuer = await startIssuerProcess();
});
after(async () => {
  await Promise.all(boxes.map((b) => b.proc.stop()));
  await issuer.proc.stop();
  for (const s of servers) s.close();
});

async function box(options: Parameters<typeof startBox>[0]): Promise<Box> {
  const b = await startBox(options);
  boxes.push(b);
  return b;
}

test("ERR_IOT_HTTPS_CHECK_NO_SERVER: a box that was never connected", async () => {
  const b = await box({ issuer: issuer.url });
  const s = await b.until("NO_SERVER", (s) => s.certificate.errorCode !== null);
  assert.equal(s.certificate.errorCode, "ERR_IOT_HTTPS_CHECK_NO_SERVER");
  assert.equal(s.certificate.status, "error");
  assert.equal(s.server, null);
  assert.equal(s.httpsUrl, null);
});

test("ERR_IOT_HTTPS_LOAD_NO_CREDENTIAL: connected, credentials cleared", async () => {
  const dataDir = tempDir("boxcert-box-");
  await connect(dataDir, "00000000-0000-4000-8000-000000000000", "X");
  const cleared = await boxcert(["box", "credential", "--data-dir", dataDir, "--clear"]);
  assert.equal(cleared.code, 0, cleared.stderr);
  const b = await box({ issuer: issuer.url, dataDir });
  const s = await b.until("NO_CREDENTIAL", (s) => s.certificate.errorCode !== null);
  assert.equal(s.certificate.errorCode, "ERR_IOT_HTTPS_LOAD_NO_CREDENTIAL");
});

test("ERR_IOT_HTTPS_CHECK_CERT_READ_EXCEPTION: a corrupt certificate file, left untouched", async () => {
  const dataDir = tempDir("boxcert-box-");
  await connect(dataDir, "00000000-0000-4000-8000-000000000000", "X");
  writeFileSync(join(dataDir, "https.pem"), "-----BEGIN CERTIFICATE-----\ngarbage\n-----END CERTIFICATE-----\n", { mode: 0o600 });
  const b = await box({ issuer: issuer.url, dataDir });
  const s = await b.until("CERT_READ_EXCEPTION", (s) => s.certificate.errorCode !== null);
  assert.equal(s.certificate.errorCode, "ERR_IOT_HTTPS_CHECK_CERT_READ_EXCEPTION");
  assert.ok(s.certificate.detail);
});

test("ERR_IOT_HTTPS_LOAD_REQUEST_EXCEPTION: issuer down, wrong port, unknown host, untrusted TLS", async () => {
  const uuid = await customer(issuer.store, "EXC-1", "in_progress", 5);
  const closedPort = await freePort();
  const tls = await makeServerTls(tempDir("boxcert-tls-"));
  const tlsIssuer = await startIssuerProcess({ dir: tempDir("boxcert-issuer-"), tls });
  try {
    const cases: Array<[string, RegExp]> = [
      [`http://127.0.0.1:${closedPort}`, /refused/i],
      [`http://no-such-issuer.invalid:${closedPort}`, /not resolved|ENOTFOUND|resolve/i],
      [tlsIssuer.url, /certificate|trust/i],
    ];
    await Promise.all(
      cases.map(async ([url, detail]) => {
        const dataDir = tempDir("boxcert-box-");
        await connect(dataDir, uuid, "EXC-1");
        const b = await box({ issuer: url, dataDir });
        const s = await b.until(`REQUEST_EXCEPTION for ${url}`, (s) => s.certificate.errorCode !== null);
        assert.equal(s.certificate.errorCode, "ERR_IOT_HTTPS_LOAD_REQUEST_EXCEPTION", url);
        assert.match(s.certificate.detail ?? "", detail, url);
      }),
    );
  } finally {
    await tlsIssuer.proc.stop();
  }
});

test("ERR_IOT_HTTPS_LOAD_REQUEST_STATUS: an issuer URL answering 404 and 500", async () => {
  const uuid = await customer(issuer.store, "STATUS-1", "in_progress", 5);
  const failing = createServer((req, res) => {
    res.writeHead(500, { "content-type": "text/html" });
    res.end("<h1>Internal Server Error</h1>");
  });
  servers.push(failing);
  const port = await freePort();
  await new Promise<void>((r) => failing.listen(port, "127.0.0.1", r));
  const cases: Array<[string, string]> = [
    [`${issuer.url}/wrong-prefix`, "ERR_IOT_HTTPS_LOAD_REQUEST_STATUS 404"],
    [`http://127.0.0.1:${port}`, "ERR_IOT_HTTPS_LOAD_REQUEST_STATUS 500"],
  ];
  await Promise.all(
    cases.map(async ([url, code]) => {
      const dataDir = tempDir("boxcert-box-");
      await connect(dataDir, uuid, "STATUS-1");
      const b = await box({ issuer: url, dataDir });
      const s = await b.until(code, (s) => s.certificate.errorCode !== null);
      assert.equal(s.certificate.errorCode, code);
    }),
  );
});

test("ERR_IOT_HTTPS_LOAD_REQUEST_NO_RESULT: each refusal reason, with the issuer's reason shown", async () => {
  const ok = await customer(issuer.store, "NR-OK", "in_progress", 1);
  const staging = await customer(issuer.store, "NR-STAGING", "in_progress", 1, "staging");
  const duplicate = await customer(issuer.store, "NR-DUP", "in_progress", 1, "duplicate");
  const paused = await customer(issuer.store, "NR-PAUSED", "paused", 1);
  const closed = await customer(issuer.store, "NR-CLOSED", "closed", 1);
  const noLine = await customer(issuer.store, "NR-NOLINE", "in_progress", 0);
  const full = await customer(issuer.store, "NR-FULL", "in_progress", 1);
  // The only seat of NR-FULL is taken by a first box.
  const first = tempDir("boxcert-box-");
  await connect(first, full, "NR-FULL");
  const firstBox = await box({ issuer: issuer.url, dataDir: first });
  await firstBox.until("first box certificate", (s) => s.certificate.status === "ok");

  const cases: Array<[string, string, RegExp]> = [
    ["11111111-2222-4333-8444-555555555555", "NR-OK", /not known/],
    [ok, "WRONG-CODE", /does not match/],
    [staging, "NR-STAGING", /staging/],
    [duplicate, "NR-DUP", /duplicate/],
    [paused, "NR-PAUSED", /paused/],
    [closed, "NR-CLOSED", /closed/],
    [noLine, "NR-NOLINE", /no IoT-box line/],
    [full, "NR-FULL", /seat/],
  ];
  await Promise.all(
    cases.map(async ([uuid, code, reason]) => {
      const dataDir = tempDir("boxcert-box-");
      await connect(dataDir, uuid, code);
      const b = await box({ issuer: issuer.url, dataDir });
      const s = await b.until(`NO_RESULT ${reason}`, (s) => s.certificate.errorCode !== null);
      assert.equal(s.certificate.errorCode, "ERR_IOT_HTTPS_LOAD_REQUEST_NO_RESULT", String(reason));
      assert.match(s.certificate.detail ?? "", reason);
      const page = await (await fetch(b.httpUrl + "/")).text();
      assert.ok(page.includes("ERR_IOT_HTTPS_LOAD_REQUEST_NO_RESULT"));
    }),
  );
});

test("the original page's case: the IoT-box line added after connecting; reloading the homepage brings the certificate", async () => {
  const uuid = await customer(issuer.store, "LATE-1", "in_progress", 0);
  const dataDir = tempDir("boxcert-box-");
  await connect(dataDir, uuid, "LATE-1");
  const b = await box({ issuer: issuer.url, dataDir });
  const refused = await b.until("no IoT-box line", (s) => s.certificate.errorCode !== null);
  assert.equal(refused.certificate.errorCode, "ERR_IOT_HTTPS_LOAD_REQUEST_NO_RESULT");
  await admin(issuer.store, "subscription", "set", "LATE-1", "--seats", "1");
  // The homepage check is rate-limited to once a minute; the first one ran at start, so wait it out.
  const since = Date.now();
  let status = await b.status();
  while (status.certificate.status !== "ok" && Date.now() - since < 90_000) {
    await fetch(b.httpUrl + "/");
    await new Promise((r) => setTimeout(r, 1000));
    status = await b.status();
  }
  assert.equal(status.certificate.status, "ok", JSON.stringify(status.certificate));
  assert.equal(status.certificate.errorCode, null);
  assert.match(status.httpsUrl ?? "", /^https:\/\/127-0-0-1\.[a-z2-7]{16}\.boxcert\.test:\d+\/$/);
});
