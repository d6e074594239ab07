/**
 * Backpressure: an issuer with as many POSTs in flight as --max-in-flight answers the next one `busy` (503,
 * Retry-After) at once, before reading its body, keeps answering what is not counted (GET /healthz), and
 * takes requests again as soon as one in flight ends, however it ends (here: its client goes away).
 * Requests are held in flight the way a slow client holds them: headers sent, the body not finished.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { CERTIFICATE_PATH } from "@boxcert/shared";
import { startIssuer, type RunningIssuer } from "../src/cli.ts";
import { BUSY_RETRY_AFTER_S } from "../src/app.ts";

const MAX = 3;
let dir: string;
let issuer: RunningIssuer;
const held: Socket[] = [];

before(async () => {
  dir = mkdtempSync(join(tmpdir(), "boxcert-backpressure-"));
  issuer = await startIssuer({
    store: join(dir, "registry.sqlite"),
    zone: "boxcert.test",
    ca: "embedded",
    listen: { host: "127.0.0.1", port: 0 },
    plainHttp: true,
    lifetimeMs: 3600_000,
    maxCertificatesPerWeek: 4,
    maxInFlight: MAX,
    logger: pino({ level: "silent" }),
  });
});

after(async () => {
  for (const socket of held) socket.destroy();
  await issuer?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** A POST whose body never finishes: in flight until its socket is destroyed. */
async function holdInFlight(): Promise<Socket> {
  const socket = connect(issuer.port, "127.0.0.1");
  await new Promise<void>((resolve, reject) => socket.once("connect", resolve).once("error", reject));
  socket.write(`POST ${CERTIFICATE_PATH} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{"dbUuid":`);
  held.push(socket);
  return socket;
}

async function post(): Promise<{ status: number; retryAfter: string | null; code: string | undefined }> {
  const res = await fetch(`${issuer.url}${CERTIFICATE_PATH}`, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" });
  const body = (await res.json()) as { error?: { code?: string } };
  return { status: res.status, retryAfter: res.headers.get("retry-after"), code: body.error?.code };
}

/** The issuer counts a request when its headers arrive: posts until the last one held is counted. */
async function untilBusy(): Promise<Awaited<ReturnType<typeof post>>> {
  let answer = await post();
  for (let tries = 0; answer.status !== 503 && tries < 50; tries++) {
    await new Promise((r) => setTimeout(r, 20));
    answer = await post();
  }
  return answer;
}

test("at --max-in-flight, the next POST is busy at once with Retry-After; a slot freed is taken again", async () => {
  const first = await holdInFlight();
  for (let i = 1; i < MAX; i++) await holdInFlight();
  const busy = await untilBusy();
  assert.deepEqual(busy, { status: 503, retryAfter: String(BUSY_RETRY_AFTER_S), code: "busy" });
  const again = await Promise.all(Array.from({ length: 20 }, post));
  assert.ok(again.every((answer) => answer.code === "busy"), "every request beyond the bound is busy");
  assert.equal((await fetch(`${issuer.url}/healthz`)).status, 200, "a GET is not counted");

  first.destroy();
  let freed = await post();
  for (let tries = 0; freed.status === 503 && tries < 50; tries++) {
    await new Promise((r) => setTimeout(r, 20));
    freed = await post();
  }
  assert.equal(freed.status, 400, "a slot freed: the request is read and judged (an empty body is a bad request)");
  assert.equal(freed.code, "bad_request");
  // That request ended: MAX - 1 are held. One more held fills the issuer again.
  await holdInFlight();
  assert.equal((await untilBusy()).code, "busy");
});
