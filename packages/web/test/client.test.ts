/**
 * The thin browser side of @boxcert/web in Node: which requests boxClient() makes, in what order, with
 * which targetAddressSpace and deadline, and what it makes of the answers. fetch and the permissions are
 * stand-ins here (Node has neither LNA nor mixed content); test/web-browser.test.ts runs the same module
 * in Chromium against a fake box.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { boxClient, addressSpace, isMixedContent, BoxUnreachableError, type BoxClientOptions, type PermissionsLike } from "@boxcert/web";

const HTTPS = "https://192-168-1-42.k7fidglmun75foxe.boxcert.example:8443/";
const NAMES = ["*.k7fidglmun75foxe.boxcert.example", "k7fidglmun75foxe.boxcert.example"];
const VALID = { certificate: { status: "ok", names: NAMES, notAfter: "2099-01-01T00:00:00Z", errorCode: null } };

type Answer = "refused" | "hang" | { status: number; body: unknown };
interface Sent {
  url: string;
  targetAddressSpace: string | undefined;
  method: string;
}

/** A fetch answering by URL prefix; "hang" waits for the request's abort signal, as a dropped packet does. */
function fakeFetch(routes: Record<string, Answer>) {
  const sent: Sent[] = [];
  const fetch = (async (input: string | URL | Request, init: RequestInit & { targetAddressSpace?: string } = {}) => {
    const url = String(input);
    sent.push({ url, targetAddressSpace: init.targetAddressSpace, method: init.method ?? "GET" });
    const key = Object.keys(routes).find((prefix) => url.startsWith(prefix));
    const answer = key === undefined ? "refused" : routes[key]!;
    if (answer === "refused") throw new TypeError("Failed to fetch");
    if (answer === "hang") {
      return new Promise<Response>((_resolve, reject) => init.signal?.addEventListener("abort", () => reject(new DOMException("aborted", "AbortError"))));
    }
    return new Response(JSON.stringify(answer.body), { status: answer.status, headers: { "content-type": "application/json" } });
  }) as typeof globalThis.fetch;
  return { fetch, sent };
}

function permissions(states: Record<string, string>): PermissionsLike & { asked: string[] } {
  const asked: string[] = [];
  return {
    asked,
    query: async ({ name }) => {
      asked.push(name);
      if (!Object.hasOwn(states, name)) throw new TypeError(`'${name}' is not a valid enum value of type PermissionName.`);
      return { state: states[name]! };
    },
  };
}

function client(routes: Record<string, Answer>, over: Partial<BoxClientOptions> & { permissions?: ReturnType<typeof permissions> } = {}) {
  const fake = fakeFetch(routes);
  const perms = over.permissions ?? permissions({ "local-network": "granted", "local-network-access": "granted" });
  const box = boxClient({ httpsUrl: HTTPS, ip: "192.168.1.42", fetch: fake.fetch, pageProtocol: "https:", timeoutMs: 200, ...over, permissions: perms });
  return { box, sent: fake.sent, perms };
}

test("reached over HTTPS: one request, no permission asked, and box.fetch goes to the HTTPS address", async () => {
  const { box, sent, perms } = client({ [`${HTTPS}api/ping`]: { status: 200, body: { ok: true } }, [`${HTTPS}api/pos/test`]: { status: 200, body: { ok: true } } });
  assert.deepEqual(await box.reach(), { ok: true, via: "https" });
  assert.deepEqual(sent, [{ url: `${HTTPS}api/ping`, targetAddressSpace: undefined, method: "GET" }]);
  assert.deepEqual(perms.asked, []);
  const res = await box.fetch("/api/pos/test", { method: "POST" });
  assert.equal(res.status, 200);
  assert.deepEqual(sent.at(-1), { url: `${HTTPS}api/pos/test`, targetAddressSpace: undefined, method: "POST" });
});

test("the name does not resolve, the box answers by IP: degraded, and box.fetch goes to http://<ip> declaring the local address space", async () => {
  const { box, sent, perms } = client({ "http://192.168.1.42:8069/api/": { status: 200, body: VALID } });
  const r = await box.reach();
  assert.ok(r.ok && r.via === "ip");
  assert.equal(r.reason, "name-not-resolving");
  assert.equal(r.degraded, true);
  assert.equal(r.permission, "granted");
  assert.match(r.message, /does not resolve on this network/);
  assert.deepEqual(
    sent.map((s) => [s.url, s.targetAddressSpace]),
    [
      [`${HTTPS}api/ping`, undefined],
      ["http://192.168.1.42:8069/api/status", "local"],
      ["http://192-168-1-42.k7fidglmun75foxe.boxcert.example:8069/api/ping", "local"],
    ],
  );
  assert.deepEqual(perms.asked, ["local-network"], "the specific name first");
  await box.fetch("api/pos/test", { method: "POST" });
  assert.deepEqual(sent.at(-1), { url: "http://192.168.1.42:8069/api/pos/test", targetAddressSpace: "local", method: "POST" });
});

test("a box that does not let this origin read its status (CORS) but answers its ping by IP: still degraded", async () => {
  const { box, sent } = client({ "http://192.168.1.42:8069/api/ping": { status: 200, body: { ok: true } } });
  const r = await box.reach();
  assert.ok(r.ok && r.via === "ip");
  assert.equal(r.reason, "name-not-resolving");
  assert.ok(sent.some((s) => s.url === "http://192.168.1.42:8069/api/ping"));
});

test("the status says expired: reason certificate, detail expired, the date in the message", async () => {
  const expired = { certificate: { status: "error", names: NAMES, notAfter: "2026-01-02T03:04:05Z", errorCode: "ERR_IOT_HTTPS_LOAD_REQUEST_EXCEPTION" } };
  const { box } = client({ "http://192.168.1.42:8069/api/status": { status: 200, body: expired } }, { lang: "it" });
  const r = await box.reach();
  assert.ok(r.ok && r.via === "ip");
  assert.deepEqual([r.reason, r.detail], ["certificate", "expired"]);
  assert.match(r.message, /scaduto il 2026-01-02.*ERR_IOT_HTTPS_LOAD_REQUEST_EXCEPTION/);
});

test("silence everywhere: each request ends at the deadline, and the box is unreachable", async () => {
  const { box, sent } = client({ "https://": "hang", "http://": "hang" }, { timeoutMs: 50 });
  const started = Date.now();
  const r = await box.reach();
  assert.deepEqual([r.ok, !r.ok && r.reason], [false, "unreachable"]);
  // The HTTPS ping, then the status by IP and the name in parallel; a timed-out status is not followed by a ping.
  assert.equal(sent.length, 3);
  assert.ok(Date.now() - started < 5000, "bounded by the deadlines, not hanging");
});

test("everything refused with the permission denied: lna-denied; box.fetch throws with the result", async () => {
  const { box } = client({}, { permissions: permissions({ "local-network": "denied", "local-network-access": "denied" }) });
  const r = await box.reach();
  assert.ok(!r.ok);
  assert.equal(r.reason, "lna-denied");
  assert.equal(r.permission, "denied");
  await assert.rejects(box.fetch("/api/status"), (err: unknown) => err instanceof BoxUnreachableError && err.result.reason === "lna-denied");
});

test("a browser without local network access (every permission name throws): unknown, and the HTTPS failure speaks", async () => {
  const { box, perms } = client({}, { permissions: permissions({}) });
  const r = await box.reach();
  assert.ok(!r.ok);
  assert.deepEqual([r.reason, r.permission], ["name-or-certificate", "unknown"]);
  assert.deepEqual(perms.asked, ["local-network", "local-network-access"], "each name tried once");
});

test("a loopback box asks for the loopback permission and declares the loopback space", async () => {
  const { box, sent, perms } = client({ "http://127.0.0.1:8069/api/": { status: 200, body: VALID } }, {
    ip: "127.0.0.1",
    permissions: permissions({ "loopback-network": "granted" }),
  });
  assert.equal((await box.reach()).ok, true);
  assert.deepEqual(perms.asked, ["loopback-network"]);
  assert.equal(sent.find((s) => s.url.startsWith("http://127.0.0.1"))?.targetAddressSpace, "loopback");
});

test("an http:// box address on an https:// page: mixed content, and nothing else is tried", async () => {
  const { box, sent } = client({}, { httpsUrl: "http://192-168-1-42.k7fidglmun75foxe.boxcert.example:8069/" });
  const r = await box.reach();
  assert.ok(!r.ok);
  assert.equal(r.reason, "mixed-content");
  assert.equal(sent.length, 1);
});

test("box.fetch: a network failure forgets the path, so the next call diagnoses again", async () => {
  const routes: Record<string, Answer> = { [`${HTTPS}api/`]: { status: 200, body: { ok: true } } };
  const { box, sent } = client(routes);
  await box.reach();
  routes[`${HTTPS}api/`] = "refused";
  await assert.rejects(box.fetch("/api/status"), TypeError);
  assert.equal(box.last, null);
  await assert.rejects(box.fetch("/api/status"), BoxUnreachableError);
  assert.equal(sent.filter((s) => s.url === `${HTTPS}api/ping`).length, 2, "reach() ran again");
});

test("addressSpace: Chromium's spaces for the box's address", () => {
  const cases: [string, string | null][] = [
    ["127.0.0.1", "loopback"], ["127.9.9.9", "loopback"], ["::1", "loopback"],
    ["192.168.1.42", "local"], ["10.0.0.7", "local"], ["172.16.0.1", "local"], ["172.31.255.254", "local"], ["169.254.3.4", "local"],
    ["fd00::2", "local"], ["fe80::1", "local"],
    ["172.32.0.1", null], ["192.0.2.2", null], ["8.8.8.8", null], ["2001:db8::1", null],
  ];
  for (const [ip, space] of cases) assert.equal(addressSpace(ip), space, ip);
});

test("isMixedContent: plain http:// from https://, except loopback, which browsers count as secure", () => {
  assert.equal(isMixedContent(new URL("http://192-168-1-42.l.zone.example:8069/"), "https:"), true);
  assert.equal(isMixedContent(new URL("http://192.168.1.42:8069/"), "https:"), true);
  assert.equal(isMixedContent(new URL("http://127.0.0.1:8069/"), "https:"), false);
  assert.equal(isMixedContent(new URL("http://[::1]:8069/"), "https:"), false);
  assert.equal(isMixedContent(new URL("http://localhost:8069/"), "https:"), false);
  assert.equal(isMixedContent(new URL("http://192.168.1.42:8069/"), "http:"), false);
  assert.equal(isMixedContent(new URL(HTTPS), "https:"), false);
});

test("an IPv6 box: the address in brackets", async () => {
  const { box, sent } = client({}, { ip: "fd00::2", permissions: permissions({ "local-network": "granted" }) });
  await box.reach();
  assert.ok(sent.some((s) => s.url === "http://[fd00::2]:8069/api/status" && s.targetAddressSpace === "local"));
});
