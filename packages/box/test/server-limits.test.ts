/**
 * The listeners' limits over real sockets (docs/box.md "Limits"): a request trickling its body or its
 * headers, a connection that sends nothing, an idle keep-alive connection and a TLS handshake that never
 * starts are ended; a client over
 * its connection cap has the extra connections closed at once, while another address is still served.
 * The timeouts are shortened and the caps lowered through createServers' limits, the production
 * defaults (SERVER_LIMITS) being too long to wait for.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { connect as tcpConnect } from "node:net";
import type { Socket } from "node:net";
import { connect as tlsConnect } from "node:tls";
import pino from "pino";
import { certificateNames } from "@boxcert/shared";
import { DEADLINE_CHECK_INTERVAL_MS, startServers } from "../src/web/server.ts";
import type { BoxServers, ServerLimits } from "../src/web/server.ts";
import { newTlsKey } from "../src/certificate/tls-key.ts";
import { issueLeaf, makeCa } from "./helpers/pki.ts";

const HOST = "127-0-0-1.abcdefghijklmnop.boxcert.test";

interface Listeners {
  servers: BoxServers;
  caPem: string;
}

async function startListeners(limits: Partial<ServerLimits>): Promise<Listeners> {
  const ca = await makeCa("Limits CA");
  const key = newTlsKey();
  const leaf = await issueLeaf(ca, { publicKey: key.privateKey, names: certificateNames("abcdefghijklmnop", "boxcert.test") });
  const servers = await startServers({
    host: "127.0.0.1",
    httpPort: 0,
    httpsPort: 0,
    logger: pino({ level: "silent" }),
    certificate: { keyPem: key.pem, chainPem: leaf },
    limits,
    routes: (app) => {
      app.get("/api/ping", async () => ({ ok: true }));
      app.post("/echo", async (request) => ({ length: String(request.body).length }));
    },
  });
  return { servers, caPem: ca.pem };
}

type Scheme = "http" | "https";

/** A connected socket to one listener, from localAddress (127.0.0.1 unless given); TLS handshake done for https. */
function open(listeners: Listeners, scheme: Scheme, localAddress = "127.0.0.1"): Promise<Socket> {
  const { servers, caPem } = listeners;
  return new Promise((resolve, reject) => {
    const tcp = tcpConnect({ host: "127.0.0.1", port: scheme === "http" ? servers.httpPort : servers.httpsPort, localAddress });
    const socket = scheme === "http" ? tcp : tlsConnect({ socket: tcp, servername: HOST, ca: caPem });
    socket.once(scheme === "http" ? "connect" : "secureConnect", () => resolve(socket));
    socket.once("error", reject);
  });
}

interface Ending {
  /** Milliseconds from the start of the watch to the close, or null when the deadline came first. */
  afterMs: number | null;
  /** What the server sent before closing. */
  received: string;
}

/** Resolves when socket closes, or at deadlineMs with afterMs null (the socket is then destroyed). */
function watchClose(socket: Socket, deadlineMs: number): Promise<Ending> {
  const start = Date.now();
  let received = "";
  socket.on("data", (chunk: Buffer) => (received += chunk.toString("latin1")));
  socket.on("error", () => {});
  return new Promise((resolve) => {
    const deadline = setTimeout(() => {
      resolve({ afterMs: null, received });
      socket.destroy();
    }, deadlineMs);
    socket.once("close", () => {
      clearTimeout(deadline);
      resolve({ afterMs: Date.now() - start, received });
    });
  });
}

/** Writes one byte a second from `bytes` until the socket closes or they run out. */
function trickle(socket: Socket, bytes: string): void {
  let next = 0;
  const timer = setInterval(() => {
    if (socket.destroyed || next >= bytes.length) clearInterval(timer);
    else socket.write(bytes[next++]!);
  }, 1_000);
  socket.once("close", () => clearInterval(timer));
}

/** GET /api/ping over socket, or over a new connection from localAddress closed after the answer. */
async function ping(listeners: Listeners, scheme: Scheme, localAddress: string, socket?: Socket): Promise<string> {
  const s = socket ?? (await open(listeners, scheme, localAddress));
  if (!socket) s.once("data", () => s.end());
  const answer = new Promise<string>((resolve, reject) => {
    let text = "";
    s.on("data", (chunk: Buffer) => {
      text += chunk.toString("latin1");
      if (text.includes("\r\n\r\n") && text.endsWith("}")) resolve(text);
    });
    s.once("error", reject);
    s.once("close", () => reject(new Error(`closed before an answer from ${scheme} for ${localAddress}: ${JSON.stringify(text)}`)));
  });
  s.write(`GET /api/ping HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`);
  return answer;
}

/** Apart enough that each ending can only be the timeout under test. */
const TIMEOUTS = { requestTimeoutMs: 4_000, headersTimeoutMs: 3_000, keepAliveTimeoutMs: 500, tlsHandshakeTimeoutMs: 500 };
/**
 * Node checks the request and headers deadlines every DEADLINE_CHECK_INTERVAL_MS and keeps an idle
 * keep-alive connection a second past its timeout; a margin for a busy machine on top.
 */
const SLACK_MS = 2 * DEADLINE_CHECK_INTERVAL_MS + 2_000;

test("slow clients are cut off on both listeners: a trickled body, trickled headers, silence, an idle keep-alive, no TLS handshake", async (t) => {
  const listeners = await startListeners(TIMEOUTS);
  t.after(() => listeners.servers.close());

  async function trickledBody(scheme: Scheme): Promise<void> {
    const socket = await open(listeners, scheme);
    socket.write("POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n");
    trickle(socket, "x".repeat(100));
    const ending = await watchClose(socket, TIMEOUTS.requestTimeoutMs + SLACK_MS);
    assert.notEqual(ending.afterMs, null, `${scheme}: a body sent one byte a second is still open after ${TIMEOUTS.requestTimeoutMs + SLACK_MS} ms`);
    assert.match(ending.received, /^HTTP\/1\.1 408 /, `${scheme}: the request timeout answers 408`);
  }

  async function trickledHeaders(scheme: Scheme): Promise<void> {
    const socket = await open(listeners, scheme);
    trickle(socket, "GET /api/ping HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + "y".repeat(100));
    const ending = await watchClose(socket, TIMEOUTS.headersTimeoutMs + SLACK_MS);
    assert.notEqual(ending.afterMs, null, `${scheme}: headers sent one byte a second are still open after ${TIMEOUTS.headersTimeoutMs + SLACK_MS} ms`);
    assert.match(ending.received, /^HTTP\/1\.1 408 /, `${scheme}: the headers timeout answers 408`);
  }

  async function silent(scheme: Scheme): Promise<void> {
    const socket = await open(listeners, scheme);
    const ending = await watchClose(socket, TIMEOUTS.headersTimeoutMs + SLACK_MS);
    assert.notEqual(ending.afterMs, null, `${scheme}: a connection that sends nothing is still open after ${TIMEOUTS.headersTimeoutMs + SLACK_MS} ms`);
    assert.match(ending.received, /^HTTP\/1\.1 408 /, `${scheme}: the headers timeout answers 408`);
  }

  async function idleKeepAlive(scheme: Scheme): Promise<void> {
    const socket = await open(listeners, scheme);
    assert.match(await ping(listeners, scheme, "127.0.0.1", socket), /^HTTP\/1\.1 200 /);
    const ending = await watchClose(socket, TIMEOUTS.keepAliveTimeoutMs + SLACK_MS);
    assert.notEqual(ending.afterMs, null, `${scheme}: an idle keep-alive connection is still open after ${TIMEOUTS.keepAliveTimeoutMs + SLACK_MS} ms`);
    assert.ok(ending.afterMs! < TIMEOUTS.headersTimeoutMs, `${scheme}: closed by the keep-alive timeout, not a later one (${ending.afterMs} ms)`);
  }

  async function noHandshake(): Promise<void> {
    const socket = tcpConnect({ host: "127.0.0.1", port: listeners.servers.httpsPort });
    const ending = await watchClose(socket, TIMEOUTS.tlsHandshakeTimeoutMs + SLACK_MS);
    assert.notEqual(ending.afterMs, null, `a TCP connection that never starts TLS is still open after ${TIMEOUTS.tlsHandshakeTimeoutMs + SLACK_MS} ms`);
    assert.ok(ending.afterMs! < TIMEOUTS.headersTimeoutMs, `closed by the handshake timeout, not a later one (${ending.afterMs} ms)`);
  }

  const checks = await Promise.allSettled([
    trickledBody("http"),
    trickledBody("https"),
    trickledHeaders("http"),
    trickledHeaders("https"),
    silent("http"),
    silent("https"),
    idleKeepAlive("http"),
    idleKeepAlive("https"),
    noHandshake(),
  ]);
  // Every check's failure, not only the first.
  assert.deepEqual(checks.flatMap((c) => (c.status === "rejected" ? [(c.reason as Error).message] : [])), []);
});

test("connections over a client's cap are closed at once, on both listeners; another address still gets /api/ping", async (t) => {
  const perClient = 4;
  const listeners = await startListeners({ connectionsPerClient: perClient });
  const kept: Socket[] = [];
  t.after(async () => {
    for (const socket of kept) socket.destroy();
    await listeners.servers.close();
  });
  // The cap counts both listeners together: two on each fill it.
  for (const scheme of ["http", "https", "http", "https"] as const) kept.push(await open(listeners, scheme));
  const extraHttp = tcpConnect({ host: "127.0.0.1", port: listeners.servers.httpPort, localAddress: "127.0.0.1" });
  const extraHttps = tcpConnect({ host: "127.0.0.1", port: listeners.servers.httpsPort, localAddress: "127.0.0.1" });
  const endings = await Promise.all([watchClose(extraHttp, 5_000), watchClose(extraHttps, 5_000)]);
  assert.deepEqual(
    endings.map((e) => [e.afterMs !== null, e.received]),
    [
      [true, ""],
      [true, ""],
    ],
    "the fifth and sixth connections are closed before a byte is exchanged",
  );
  assert.match(await ping(listeners, "http", "127.0.0.2"), /^HTTP\/1\.1 200 /, "another address, HTTP");
  assert.match(await ping(listeners, "https", "127.0.0.2"), /^HTTP\/1\.1 200 /, "another address, HTTPS");
  for (const [i, socket] of kept.entries()) assert.match(await ping(listeners, i % 2 === 0 ? "http" : "https", "127.0.0.1", socket), /^HTTP\/1\.1 200 /, `kept connection ${i}`);
  // A closed connection frees its place.
  kept.pop()?.destroy();
  await until(async () => (await ping(listeners, "http", "127.0.0.1").then(() => true, () => false)));
});

test("connections over a listener's total cap are closed, whichever address they come from", async (t) => {
  const listeners = await startListeners({ connections: 2 });
  const kept = [await open(listeners, "http", "127.0.0.1"), await open(listeners, "http", "127.0.0.2")];
  t.after(async () => {
    for (const socket of kept) socket.destroy();
    await listeners.servers.close();
  });
  const third = tcpConnect({ host: "127.0.0.1", port: listeners.servers.httpPort, localAddress: "127.0.0.3" });
  const ending = await watchClose(third, 5_000);
  assert.notEqual(ending.afterMs, null, "a third connection is still open");
  assert.match(await ping(listeners, "http", "127.0.0.1", kept[0]), /^HTTP\/1\.1 200 /);
});

/** Polls condition until it holds (never a fixed sleep); fails after 5 s. */
async function until(condition: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 5_000;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error("condition not met within 5 s");
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
