/**
 * The ACME source against a scripted ACME server and a scripted DNS server on loopback: how the CA's
 * failures reach the box (503 + Retry-After, or the CA's reason), the account key, the TCP pre-check.
 * The real path with Pebble is in test/acme.test.ts.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, statSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createServer as createTcpServer, type Server as TcpServer, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes, randomUUID, createPrivateKey } from "node:crypto";
import * as dnsPacket from "dns-packet";
import pino from "pino";
import { startIssuer, type RunningIssuer } from "../src/cli.ts";
import { accountKeyPath, type AcmeSource } from "../src/acme.ts";
import { queryTxtOverTcp, waitForTxtValues } from "../src/acme-dns-check.ts";
import { parseDnsServer } from "../src/options.ts";
import { openStore, ZoneRecords } from "@boxcert/store";
import { scriptedBox, enroll, makeTlsKey, makeCsr, requestCertificate } from "../../../test/support/box-client.ts";

const ZONE = "boxcert.test";

interface OrderAnswer {
  status: number;
  type: string;
  detail: string;
  retryAfter?: string;
}
/** What each scripted CA (`/a/...`, `/b/...`) answers to newOrder, and how many orders it got. */
const orderAnswers: Record<string, OrderAnswer> = {};
const ordersSeen: Record<string, number> = {};
let orderAnswer: OrderAnswer = { status: 400, type: "rejectedIdentifier", detail: "" };
let acmeServer: Server;
let acmeBase: string;
let txtAnswers: Map<string, string[]>;
let dnsServer: TcpServer;
let dnsAddress: string;

function listen(server: Server | TcpServer): Promise<number> {
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve((server.address() as { port: number }).port)));
}

function acmeHandler(req: IncomingMessage, res: ServerResponse): void {
  req.resume();
  req.on("end", () => {
    res.setHeader("replay-nonce", randomBytes(16).toString("base64url"));
    const json = (status: number, body: unknown, headers: Record<string, string> = {}) => {
      res.writeHead(status, { "content-type": status >= 400 ? "application/problem+json" : "application/json", ...headers });
      res.end(JSON.stringify(body));
    };
    // `/dir` is the CA of the first tests; `/a/dir`, `/b/dir` two more with their own answers.
    const match = /^(\/[ab])?(\/.*)$/.exec(req.url ?? "/")!;
    const prefix = match[1] ?? "";
    const path = match[2];
    const base = `${acmeBase}${prefix}`;
    if (path === "/dir") return json(200, { newNonce: `${base}/nonce`, newAccount: `${base}/account`, newOrder: `${base}/order`, meta: { caaIdentities: [`ca${prefix.replace("/", "-")}.example`] } });
    if (path === "/nonce") return void res.writeHead(200).end();
    if (path === "/account") return json(201, { status: "valid" }, { location: `${base}/acct/1` });
    if (path === "/order") {
      ordersSeen[prefix] = (ordersSeen[prefix] ?? 0) + 1;
      const { status, type, detail, retryAfter } = orderAnswers[prefix] ?? orderAnswer;
      return json(status, { type: `urn:ietf:params:acme:error:${type}`, detail }, retryAfter ? { "retry-after": retryAfter } : {});
    }
    json(404, { type: "urn:ietf:params:acme:error:malformed", detail: "no such resource" });
  });
}

/** A TCP-only authoritative server answering TXT from `txtAnswers`. */
function dnsHandler(socket: Socket): void {
  let buffer = Buffer.alloc(0);
  socket.on("data", (chunk: Buffer) => {
    buffer = Buffer.concat([buffer, chunk]);
    while (buffer.length >= 2 && buffer.length >= 2 + buffer.readUInt16BE(0)) {
      const length = buffer.readUInt16BE(0);
      const query = dnsPacket.decode(buffer.subarray(2, 2 + length));
      buffer = buffer.subarray(2 + length);
      const question = query.questions![0]!;
      const values = txtAnswers.get(question.name.toLowerCase()) ?? [];
      socket.write(
        dnsPacket.streamEncode({
          type: "response",
          id: query.id,
          flags: dnsPacket.AUTHORITATIVE_ANSWER,
          questions: [question],
          answers: values.map((v) => ({ type: "TXT" as const, name: question.name, ttl: 30, data: v })),
        }),
      );
    }
  });
  socket.on("error", () => socket.destroy());
}

before(async () => {
  acmeServer = createServer(acmeHandler);
  acmeBase = `http://127.0.0.1:${await listen(acmeServer)}`;
  txtAnswers = new Map();
  dnsServer = createTcpServer(dnsHandler);
  dnsAddress = `127.0.0.1:${await listen(dnsServer)}`;
});

after(() => {
  acmeServer.close();
  dnsServer.close();
});

async function acmeIssuer(directoryUrl: string | string[], dir = mkdtempSync(join(tmpdir(), "boxcert-acme-"))): Promise<{ issuer: RunningIssuer; dir: string }> {
  const issuer = await startIssuer({
    store: join(dir, "registry.sqlite"),
    zone: ZONE,
    ca: "acme",
    acme: { directories: [directoryUrl].flat().map((url) => ({ url })), dnsServers: [parseDnsServer(dnsAddress)] },
    listen: { host: "127.0.0.1", port: 0 },
    plainHttp: true,
    lifetimeMs: 3600_000,
    maxCertificatesPerWeek: 10,
    logger: pino({ level: "silent" }),
  });
  return { issuer, dir };
}

/** The issuer's ACME order counts (metrics.ts), as "ca outcome" → count. */
function acmeOrders(issuer: RunningIssuer): Record<string, number> {
  const family = issuer.metrics.snapshot().families.find((f) => f.name === "boxcert_issuer_acme_orders_total");
  assert.ok(family && family.type === "counter");
  return Object.fromEntries(family.samples.map((s) => [`${s.labels["ca"]} ${s.labels["outcome"]}`, s.value]));
}

/** A new eligible box asks for its first certificate. */
async function ask(issuer: RunningIssuer) {
  const code = `ACME-${randomUUID().slice(0, 8)}`;
  await issuer.operations.addSubscription({ code, state: "in_progress", seats: 1 });
  const uuid = randomUUID();
  await issuer.operations.addDatabase({ uuid, subscription: code, kind: "production" });
  const box = scriptedBox(uuid, code);
  const enrolled = (await enroll(issuer.url, box)).json as unknown as { label: string; names: string[] };
  return requestCertificate(issuer.url, box, enrolled.label, await makeCsr(await makeTlsKey(), enrolled.names));
}

test("CA unreachable: 503 ca_unavailable with Retry-After, quickly (no acme-client 5 s retries)", async () => {
  const closed = createServer();
  const port = await listen(closed);
  closed.close();
  const { issuer } = await acmeIssuer(`http://127.0.0.1:${port}/dir`);
  try {
    const started = Date.now();
    const answer = await ask(issuer);
    assert.equal(answer.status, 503, JSON.stringify(answer.json));
    assert.equal(answer.json.error?.code, "ca_unavailable");
    assert.match(answer.json.error!.message, /ECONNREFUSED/);
    assert.equal(answer.headers.get("retry-after"), "60");
    assert.ok(Date.now() - started < 3000, `answered in ${Date.now() - started} ms`);
    assert.deepEqual(acmeOrders(issuer), { [`127.0.0.1:${port} ca_unavailable`]: 1 });
  } finally {
    await issuer.close();
  }
});

test("rateLimited: 503 with the CA's Retry-After, and the CA is not asked again before then", async () => {
  const { issuer } = await acmeIssuer(`${acmeBase}/dir`);
  try {
    orderAnswer = { status: 429, type: "rateLimited", detail: "too many certificates already issued", retryAfter: "3600" };
    const limited = await ask(issuer);
    assert.equal(limited.status, 503, JSON.stringify(limited.json));
    assert.equal(limited.json.error?.code, "ca_unavailable");
    assert.equal(limited.headers.get("retry-after"), "3600");
    assert.match(limited.json.error!.message, /rateLimited: too many certificates/);

    // Until the Retry-After has passed, the CA is not asked again: the box is told how long is left.
    const seen = ordersSeen[""];
    const again = await ask(issuer);
    assert.equal(again.status, 503, JSON.stringify(again.json));
    assert.match(again.json.error!.message, /rate-limited until/);
    assert.ok(Number(again.headers.get("retry-after")) > 3500 && Number(again.headers.get("retry-after")) <= 3600, String(again.headers.get("retry-after")));
    assert.equal(ordersSeen[""], seen);
  } finally {
    await issuer.close();
  }
});

test("rejectedIdentifier: 502 ca_refused with the CA's reason; the account key is 0600", async () => {
  const { issuer, dir } = await acmeIssuer(`${acmeBase}/dir`);
  try {
    orderAnswer = { status: 400, type: "rejectedIdentifier", detail: "the zone is on a blocklist" };
    const refused = await ask(issuer);
    assert.equal(refused.status, 502, JSON.stringify(refused.json));
    assert.equal(refused.json.error?.code, "ca_refused");
    assert.match(refused.json.error!.message, /rejectedIdentifier.*the zone is on a blocklist/);

    // The account key: made once, 0600, where the docs say.
    const keyPath = accountKeyPath(join(dir, "keys"), `${acmeBase}/dir`);
    assert.equal(statSync(keyPath).mode & 0o777, 0o600);
    assert.equal(createPrivateKey(readFileSync(keyPath)).asymmetricKeyDetails?.namedCurve, "prime256v1");
  } finally {
    await issuer.close();
  }
});

test("the account key survives a restart; leftover challenge values are removed at start", async () => {
  const { issuer, dir } = await acmeIssuer(`${acmeBase}/dir`);
  const keyPath = accountKeyPath(join(dir, "keys"), `${acmeBase}/dir`);
  const key = readFileSync(keyPath, "utf8");
  const records = new ZoneRecords(issuer.store.db);
  await records.addChallenge("oldlabel", "a".repeat(43), new Date(Date.now() - 3600_000));
  await records.addChallenge("newlabel", "b".repeat(43));
  await records.addChallenge("freelabel", "c".repeat(43));
  // newlabel's order runs on another machine: its per-box lock is held, unexpired, by a process not seen here.
  await issuer.store.db.insertInto("locks").values({ name: "box:newlabel", owner: "other-host - 1 - order", expires_at: new Date(Date.now() + 60_000).toISOString() }).execute();
  await issuer.close();
  const { issuer: restarted } = await acmeIssuer(`${acmeBase}/dir`, dir);
  try {
    assert.equal(readFileSync(keyPath, "utf8"), key);
    const left = await new ZoneRecords(restarted.store.db).listChallenges();
    assert.deepEqual(left.map((c) => c.label), ["newlabel"], "an order in flight elsewhere keeps its value; a value whose lock is free or stale goes");
  } finally {
    await restarted.close();
  }
});

test("the TCP pre-check waits until every server answers every value", async () => {
  const name = "_acme-challenge.abc.boxcert.test";
  txtAnswers.set(name, ["one"]);
  assert.deepEqual(await queryTxtOverTcp(parseDnsServer(dnsAddress), name), ["one"]);
  setTimeout(() => txtAnswers.set(name, ["one", "two"]), 300);
  const started = Date.now();
  await waitForTxtValues([parseDnsServer(dnsAddress)], name, ["one", "two"], 5000);
  assert.ok(Date.now() - started >= 250);
  await assert.rejects(waitForTxtValues([parseDnsServer(dnsAddress)], name, ["three"], 300), /not served after 300 ms .*does not answer 1 of 1/);
});

test("--acme-dns-server parses HOST:PORT and [IPv6]:PORT", () => {
  assert.deepEqual(parseDnsServer("127.0.0.1:53"), { host: "127.0.0.1", port: 53 });
  assert.deepEqual(parseDnsServer("[::1]:5353"), { host: "::1", port: 5353 });
  assert.throws(() => parseDnsServer("127.0.0.1"), /not HOST:PORT/);
  assert.throws(() => parseDnsServer("127.0.0.1:70000"), /not HOST:PORT/);
});

test("several directories: the next is asked when one rate-limits or refuses; a limited one is skipped; CAA identities published", async () => {
  const { issuer, dir } = await acmeIssuer([`${acmeBase}/a/dir`, `${acmeBase}/b/dir`]);
  try {
    orderAnswers["/a"] = { status: 429, type: "rateLimited", detail: "too many new orders", retryAfter: "600" };
    orderAnswers["/b"] = { status: 403, type: "caa", detail: "CAA forbids us" };
    const before = { a: ordersSeen["/a"] ?? 0, b: ordersSeen["/b"] ?? 0 };
    const first = await ask(issuer);
    // a may work later: 503 with the shortest wait, both reasons in the message.
    assert.equal(first.status, 503, JSON.stringify(first.json));
    assert.equal(first.headers.get("retry-after"), "600");
    assert.match(first.json.error!.message, /too many new orders.*CAA forbids us/);
    assert.deepEqual({ a: ordersSeen["/a"], b: ordersSeen["/b"] }, { a: before.a + 1, b: before.b + 1 });

    // a is skipped while limited; b is asked.
    orderAnswers["/b"] = { status: 400, type: "rejectedIdentifier", detail: "not today" };
    const second = await ask(issuer);
    assert.equal(second.status, 503);
    assert.match(second.json.error!.message, /not today.*rate-limited until/);
    assert.deepEqual({ a: ordersSeen["/a"], b: ordersSeen["/b"] }, { a: before.a + 1, b: before.b + 2 });
    // Counted by the directory's host (both scripted CAs share one); a skipped directory is no order.
    const host = new URL(acmeBase).host;
    assert.deepEqual(acmeOrders(issuer), { [`${host} rate_limited`]: 1, [`${host} ca_refused`]: 2 });

    // The dns component's CAA records name both CAs (meta.caaIdentities, published at start).
    await (issuer.source as AcmeSource).caaPublished;
    const store = await openStore(join(dir, "registry.sqlite"));
    try {
      assert.deepEqual((await new ZoneRecords(store.db).snapshot()).caa, ["ca-a.example", "ca-b.example"]);
    } finally {
      await store.close();
    }
  } finally {
    await issuer.close();
  }
});

test("several directories that all refuse: 502 with every reason", async () => {
  const { issuer } = await acmeIssuer([`${acmeBase}/a/dir`, `${acmeBase}/b/dir`]);
  try {
    orderAnswers["/a"] = { status: 403, type: "unauthorized", detail: "account deactivated" };
    orderAnswers["/b"] = { status: 400, type: "rejectedIdentifier", detail: "blocklisted" };
    const answer = await ask(issuer);
    assert.equal(answer.status, 502, JSON.stringify(answer.json));
    assert.equal(answer.json.error?.code, "ca_refused");
    assert.match(answer.json.error!.message, /account deactivated.*blocklisted/);
  } finally {
    await issuer.close();
  }
});
