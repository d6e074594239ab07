/** The issuer over real HTTP on loopback: the whole request path, refusals and bad input. */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomUUID, X509Certificate, createPublicKey } from "node:crypto";
import { execFileSync } from "node:child_process";
import pino from "pino";
import { CERTIFICATE_PATH, ENROLL_PATH, SIGNATURE_HEADER } from "@boxcert/shared";
import { startIssuer, type RunningIssuer } from "../src/cli.ts";
import {
  scriptedBox,
  enroll,
  makeTlsKey,
  makeCsr,
  requestCertificate,
  credentials,
  signBody,
  post,
  type ScriptedBox,
} from "../../../test/support/box-client.ts";

const ZONE = "boxcert.test";
let issuer: RunningIssuer;
let dir: string;
const dbs: Record<string, string> = {};

async function snapshot(): Promise<string> {
  const db = issuer.store.db;
  const tables = await Promise.all(
    (["subscriptions", "databases", "boxes", "certificates"] as const).map((t) => db.selectFrom(t).selectAll().execute()),
  );
  return JSON.stringify(tables);
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), "boxcert-api-"));
  issuer = await startIssuer({
    store: join(dir, "registry.sqlite"),
    zone: ZONE,
    ca: "embedded",
    listen: { host: "127.0.0.1", port: 0 },
    plainHttp: true,
    lifetimeMs: 3600_000,
    maxCertificatesPerWeek: 4,
    logger: pino({ level: "silent" }),
  });
  const r = issuer.operations;
  await r.addSubscription({ code: "OK-1", state: "in_progress", seats: 10 });
  await r.addSubscription({ code: "FULL-1", state: "in_progress", seats: 1 });
  await r.addSubscription({ code: "PAUSED-1", state: "paused", seats: 2 });
  await r.addSubscription({ code: "CLOSED-1", state: "closed", seats: 2 });
  await r.addSubscription({ code: "NOLINE-1", state: "in_progress", seats: 0 });
  for (const [name, code, kind] of [
    ["ok", "OK-1", "production"],
    ["staging", "OK-1", "staging"],
    ["duplicate", "OK-1", "duplicate"],
    ["full", "FULL-1", "production"],
    ["paused", "PAUSED-1", "production"],
    ["closed", "CLOSED-1", "production"],
    ["noline", "NOLINE-1", "production"],
  ] as const) {
    dbs[name] = randomUUID();
    await r.addDatabase({ uuid: dbs[name]!, subscription: code, kind });
  }
});

after(async () => {
  await issuer.close();
});

async function enrolled(box: ScriptedBox): Promise<{ label: string; names: string[] }> {
  const answer = await enroll(issuer.url, box);
  assert.equal(answer.status, 200, JSON.stringify(answer.json));
  return answer.json as unknown as { label: string; names: string[] };
}

test("enroll then certificate: chain verifies, names and key are right", async () => {
  const box = scriptedBox(dbs.ok!, "OK-1");
  const { label, names } = await enrolled(box);
  assert.match(label, /^[a-z2-7]{16}$/);
  assert.deepEqual(names, [`*.${label}.${ZONE}`, `${label}.${ZONE}`]);
  const key = await makeTlsKey();
  const asked = Date.now();
  const answer = await requestCertificate(issuer.url, box, label, await makeCsr(key, names));
  assert.equal(answer.status, 200, JSON.stringify(answer.json));
  const body = answer.json as unknown as { chain: string; notBefore: string; notAfter: string; renewAfter: string; reused: boolean };
  assert.equal(body.reused, false);
  const pems = body.chain.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g)!;
  assert.equal(pems.length, 2, "leaf and intermediate, no root");
  const leaf = new X509Certificate(pems[0]!);
  const intermediate = new X509Certificate(pems[1]!);
  const root = new X509Certificate(issuer.ca.rootPem());
  assert.ok(leaf.checkIssued(intermediate) && leaf.verify(intermediate.publicKey));
  assert.ok(intermediate.verify(root.publicKey));
  assert.match(leaf.subject, new RegExp(`CN=\\*\\.${label}\\.${ZONE.replace(".", "\\.")}`));
  assert.equal(leaf.subjectAltName, `DNS:*.${label}.${ZONE}, DNS:${label}.${ZONE}`);
  assert.ok(leaf.publicKey.export({ type: "spki", format: "der" }).equals(createPublicKey({ key: key.spkiDer, format: "der", type: "spki" }).export({ type: "spki", format: "der" })));
  const remaining = Date.parse(body.notAfter) - asked;
  const at = (Date.parse(body.renewAfter) - asked) / remaining;
  assert.ok(at >= 0.59 && at <= 0.71, `renewAfter at ${at} of the lifetime`);
  writeFileSync(join(dir, "root.pem"), issuer.ca.rootPem());
  writeFileSync(join(dir, "chain.pem"), body.chain);
  writeFileSync(join(dir, "leaf.pem"), pems[0]!);
  writeFileSync(join(dir, "intermediate.pem"), pems[1]!);
  const out = execFileSync("openssl", ["verify", "-CAfile", join(dir, "root.pem"), "-untrusted", join(dir, "intermediate.pem"), join(dir, "leaf.pem")]).toString();
  assert.match(out, /leaf\.pem: OK/);

  // Idempotent: the same key before renewAfter gets the same certificate; a new key a new one.
  const again = await requestCertificate(issuer.url, box, label, await makeCsr(key, names));
  assert.equal(again.json.serial, answer.json.serial);
  assert.equal(again.json.reused, true);
  const other = await requestCertificate(issuer.url, box, label, await makeCsr(await makeTlsKey("P-384"), names));
  assert.equal(other.status, 200);
  assert.notEqual(other.json.serial, answer.json.serial);
  const rsa = await requestCertificate(issuer.url, box, label, await makeCsr(await makeTlsKey("RSA-2048"), names));
  assert.equal(rsa.status, 200, JSON.stringify(rsa.json));
});

test("every eligibility refusal is distinct and says which", async () => {
  const cases: Array<[string, string, string, RegExp]> = [
    [randomUUID(), "OK-1", "unknown_database", /not known/],
    [dbs.ok!, "WRONG", "code_mismatch", /does not match/],
    [dbs.staging!, "OK-1", "database_not_production", /staging/],
    [dbs.duplicate!, "OK-1", "database_not_production", /duplicate/],
    [dbs.paused!, "PAUSED-1", "subscription_not_in_progress", /paused/],
    [dbs.closed!, "CLOSED-1", "subscription_not_in_progress", /closed/],
    [dbs.noline!, "NOLINE-1", "no_iot_box_line", /no IoT-box line/],
  ];
  for (const [uuid, code, reason, message] of cases) {
    const answer = await enroll(issuer.url, scriptedBox(uuid, code));
    assert.equal(answer.status, 403, reason);
    assert.equal(answer.json.refusal?.reason, reason);
    assert.match(answer.json.refusal!.message, message);
  }
  await enrolled(scriptedBox(dbs.full!, "FULL-1"));
  const full = await enroll(issuer.url, scriptedBox(dbs.full!, "FULL-1"));
  assert.equal(full.json.refusal?.reason, "no_free_seat");
});

test("identity: another key for an enrolled box is refused until freed", async () => {
  const box = scriptedBox(dbs.ok!, "OK-1");
  const { label } = await enrolled(box);
  const impostor = scriptedBox(dbs.ok!, "OK-1", box.identifier);
  const answer = await enroll(issuer.url, impostor);
  assert.equal(answer.json.refusal?.reason, "identity_mismatch");
  const csr = await makeCsr(await makeTlsKey(), [`*.${label}.${ZONE}`, `${label}.${ZONE}`]);
  assert.equal((await requestCertificate(issuer.url, impostor, label, csr)).json.refusal?.reason, "identity_mismatch");
  await issuer.operations.freeBox(label);
  const after = await enrolled(impostor);
  assert.notEqual(after.label, label);
});

test("signatures: wrong, missing and stale are 401", async () => {
  const box = scriptedBox(dbs.ok!, "OK-1");
  const body = JSON.stringify(credentials(box));
  const other = scriptedBox(dbs.ok!, "OK-1");
  assert.equal((await post(issuer.url + ENROLL_PATH, body, { [SIGNATURE_HEADER]: signBody(other, body) })).json.error?.code, "bad_signature");
  assert.equal((await post(issuer.url + ENROLL_PATH, body)).status, 401);
  const stale = await enroll(issuer.url, box, new Date(Date.now() - 3600_000));
  assert.equal(stale.status, 401);
  assert.equal(stale.json.error?.code, "stale_request");
});

test("CSR names other than the box's are refused; rate limit per label", async () => {
  const box = scriptedBox(dbs.ok!, "OK-1");
  const { label, names } = await enrolled(box);
  const foreign = await requestCertificate(issuer.url, box, label, await makeCsr(await makeTlsKey(), ["*.evil.test", "evil.test"]));
  assert.equal(foreign.status, 403);
  assert.equal(foreign.json.refusal?.reason, "csr_names_mismatch");
  const partial = await requestCertificate(issuer.url, box, label, await makeCsr(await makeTlsKey(), [names[1]!]));
  assert.equal(partial.json.refusal?.reason, "csr_names_mismatch");
  for (let i = 0; i < 4; i++) {
    assert.equal((await requestCertificate(issuer.url, box, label, await makeCsr(await makeTlsKey(), names))).status, 200);
  }
  const limited = await requestCertificate(issuer.url, box, label, await makeCsr(await makeTlsKey(), names));
  assert.equal(limited.status, 429);
  assert.equal(limited.json.error?.code, "rate_limited");
  const retryAfter = Number(limited.headers.get("retry-after"));
  assert.ok(retryAfter > 6 * 86400 && retryAfter <= 7 * 86400, `Retry-After ${retryAfter}`);
});

test("parallel requests of one box: one certificate per key, and the weekly limit holds", async () => {
  const box = scriptedBox(dbs.ok!, "OK-1");
  const { label, names } = await enrolled(box);
  const csr = await makeCsr(await makeTlsKey(), names);
  const same = await Promise.all(Array.from({ length: 4 }, () => requestCertificate(issuer.url, box, label, csr)));
  assert.deepEqual(same.map((a) => a.status), [200, 200, 200, 200]);
  assert.equal(new Set(same.map((a) => a.json.serial)).size, 1, "the same key gets the same certificate");
  assert.equal(same.filter((a) => a.json.reused === false).length, 1);
  const csrs = await Promise.all(Array.from({ length: 6 }, async () => makeCsr(await makeTlsKey(), names)));
  const others = await Promise.all(csrs.map((other) => requestCertificate(issuer.url, box, label, other)));
  assert.deepEqual(others.map((a) => a.status).sort(), [200, 200, 200, 429, 429, 429], "4 a week, the first included");
});

test("bad input gets a clear 4xx, the issuer keeps serving, the store is unchanged", async () => {
  const box = scriptedBox(dbs.ok!, "OK-1");
  const { label, names } = await enrolled(box);
  const before = await snapshot();
  const signed = (extra: Record<string, unknown>) => {
    const body = JSON.stringify({ ...credentials(box), label, ...extra });
    return post(issuer.url + CERTIFICATE_PATH, body, { [SIGNATURE_HEADER]: signBody(box, body) });
  };
  const goodCsr = await makeCsr(await makeTlsKey(), names);
  const derB64 = goodCsr.replace(/-----[^-]+-----|\s/g, "");
  const der = Buffer.from(derB64, "base64");
  der[der.length - 5] = der[der.length - 5]! ^ 0xff;
  const badSignatureCsr = `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString("base64")}\n-----END CERTIFICATE REQUEST-----\n`;
  const cases: Array<[string, () => Promise<{ status: number; json: { error?: { code: string; message: string } } }>, number, RegExp]> = [
    ["invalid JSON", () => post(issuer.url + CERTIFICATE_PATH, "{not json"), 400, /not valid JSON/],
    ["wrong types", () => signed({ csr: 42 }), 400, /csr/],
    ["missing fields", () => post(issuer.url + ENROLL_PATH, JSON.stringify({ dbUuid: dbs.ok })), 400, /required/],
    ["10 MB body", () => post(issuer.url + CERTIFICATE_PATH, JSON.stringify({ csr: "A".repeat(10 * 1024 * 1024) })), 413, /too large/i],
    ["garbage CSR", () => signed({ csr: "hello" }), 400, /CSR/],
    ["RSA-1024 CSR", async () => signed({ csr: await makeCsr(await makeTlsKey("RSA-1024"), names) }), 400, /1024/],
    ["CSR with a bad signature", () => signed({ csr: badSignatureCsr }), 400, /signature/i],
    ["not JSON content type", () => fetch(issuer.url + ENROLL_PATH, { method: "POST", body: "x", headers: { "content-type": "text/plain" } }).then(async (r) => ({ status: r.status, json: (await r.json()) as { error?: { code: string; message: string } } })), 415, /./],
    ["unknown path", () => post(issuer.url + "/v1/nope", "{}"), 404, /no such endpoint/],
  ];
  for (const [name, run, status, message] of cases) {
    const answer = await run();
    assert.equal(answer.status, status, `${name}: ${JSON.stringify(answer.json)}`);
    assert.match(answer.json.error?.message ?? "", message, name);
  }
  assert.equal(await snapshot(), before);
  assert.equal((await fetch(issuer.url + "/healthz")).status, 200);
});

test("a box identifier is a lowercase UUID: anything else is a 400 and takes no seat", async () => {
  const before = await snapshot();
  const hostile = ["' OR 1=1 --", "NaN", "box-1", "", randomUUID().toUpperCase(), `${randomUUID()}\n`, `${randomUUID()}x`, "a".repeat(36)];
  for (const identifier of hostile) {
    const answer = await enroll(issuer.url, scriptedBox(dbs.ok!, "OK-1", identifier));
    assert.equal(answer.status, 400, `${JSON.stringify(identifier)}: ${JSON.stringify(answer.json)}`);
    assert.match((answer.json as { error?: { message: string } }).error?.message ?? "", /identifier/, JSON.stringify(identifier));
  }
  assert.equal(await snapshot(), before, "no seat taken, nothing written");
  assert.equal((await enroll(issuer.url, scriptedBox(dbs.ok!, "OK-1", randomUUID()))).status, 200, "a box's own identifier is taken");
});

test("a revoked box is refused until an operator frees it; its certificates are revoked", async () => {
  const box = scriptedBox(dbs.ok!, "OK-1");
  const { label, names } = await enrolled(box);
  const issued = await requestCertificate(issuer.url, box, label, await makeCsr(await makeTlsKey(), names));
  assert.equal(issued.status, 200);
  await issuer.operations.revokeBox(label);
  await assert.rejects(issuer.operations.revokeBox(label), /already revoked/);
  const certs = await issuer.operations.listCertificates({ label });
  assert.ok(certs.length > 0 && certs.every((c) => c.revokedAt !== null));
  assert.equal((await enroll(issuer.url, box)).json.refusal?.reason, "box_revoked");
  const again = await requestCertificate(issuer.url, box, label, await makeCsr(await makeTlsKey(), names));
  assert.equal(again.status, 403);
  assert.equal(again.json.refusal?.reason, "box_revoked");
  await issuer.operations.freeBox(label);
  assert.notEqual((await enrolled(box)).label, label);
});
