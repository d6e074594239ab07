/**
 * POST /api/iot/boxes over real HTTPS (docs/erp.md "The box registers with the database"): a pairing
 * secret pairs one box once, later registrations are authenticated by the recorded key, and every refusal
 * has its code and status and leaves boxes.json exactly as it was.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { issuePairing, PAIRING_VALIDITY_MS } from "../src/pairing.ts";
import { parseConnectionToken } from "../src/pairing.ts";
import { startTestErp, type TestErp } from "./helpers/fixture.ts";
import { FakeBox } from "./helpers/fake-box.ts";

/** A new pairing secret, as "Connect a box" makes one. */
async function newSecret(fixture: TestErp, now: number): Promise<string> {
  const { record } = fixture.erp.database;
  const issued = await issuePairing(fixture.erp.store, { server: fixture.target.url, dbUuid: record.dbUuid, enterpriseCode: record.enterpriseCode }, now);
  return parseConnectionToken(issued.token).pairing;
}

async function storeText(fixture: TestErp): Promise<string> {
  return readFile(join(fixture.dir, "boxes.json"), "utf8");
}

function errorCode(text: string): string {
  return (JSON.parse(text) as { error: { code: string } }).error.code;
}

/** The answer is this refusal, and the store file did not move. */
async function assertRefused(fixture: TestErp, send: () => Promise<{ status: number; text: string }>, status: number, code: string): Promise<void> {
  const before = await storeText(fixture);
  const answer = await send();
  assert.equal(answer.status, status, answer.text);
  assert.equal(errorCode(answer.text), code, answer.text);
  assert.equal(await storeText(fixture), before, `boxes.json changed on a ${code} refusal`);
}

test("a pairing secret pairs one box, once; a second box with it is refused", async (t) => {
  const fixture = await startTestErp();
  t.after(() => fixture.stop());
  const secret = await newSecret(fixture, Date.now());
  const box = new FakeBox();
  const first = await box.send(fixture.target, box.body(Date.now(), { pairing: secret }));
  assert.equal(first.status, 200, first.text);
  assert.deepEqual(JSON.parse(first.text), { registered: true });
  const stored = JSON.parse(await storeText(fixture)) as { boxes: Array<Record<string, unknown>>; pairings: unknown[] };
  assert.equal(stored.boxes.length, 1);
  assert.equal(stored.boxes[0]!.identifier, box.identifier);
  assert.equal(stored.boxes[0]!.identityKey, box.identityKey);
  assert.equal(stored.boxes[0]!.name, "Till 1");
  assert.equal(Object.hasOwn(stored.boxes[0]!, "httpPort"), false, "a box that sends no HTTP port (an older one) is recorded without one");
  assert.deepEqual(stored.pairings, [], "the secret is consumed");
  assert.ok(!(await storeText(fixture)).includes(secret), "the secret itself is never stored");

  const other = new FakeBox();
  await assertRefused(fixture, () => other.send(fixture.target, other.body(Date.now(), { pairing: secret })), 403, "pairing_invalid");
  const unknownSecret = "A".repeat(43);
  await assertRefused(fixture, () => other.send(fixture.target, other.body(Date.now(), { pairing: unknownSecret })), 403, "pairing_invalid");
  assert.ok(fixture.log.lines().some((line) => line.event === "box_registered" && line.first === true && line.identifier === box.identifier));
});

test("an expired pairing secret is refused (the clock moved past 24 hours)", async (t) => {
  let now = Date.now();
  const fixture = await startTestErp({ clock: () => now });
  t.after(() => fixture.stop());
  const secret = await newSecret(fixture, now);
  now += PAIRING_VALIDITY_MS + 1000;
  const box = new FakeBox();
  await assertRefused(fixture, () => box.send(fixture.target, box.body(now, { pairing: secret })), 403, "pairing_invalid");
  // Just inside its day, a secret works.
  const fresh = await newSecret(fixture, now);
  now += PAIRING_VALIDITY_MS - 1000;
  const answer = await box.send(fixture.target, box.body(now, { pairing: fresh }));
  assert.equal(answer.status, 200, answer.text);
});

test("later registrations are authenticated by the recorded key: updated by it, refused with another, unknown boxes refused", async (t) => {
  let now = Date.now();
  const fixture = await startTestErp({ clock: () => now });
  t.after(() => fixture.stop());
  const box = new FakeBox();
  assert.equal((await box.send(fixture.target, box.body(now, { pairing: await newSecret(fixture, now) }))).status, 200);

  now += 3600_000;
  const later = await box.send(fixture.target, box.body(now, { name: "Till 1 (back)", ip: "192.168.1.43", httpsUrl: "https://192-168-1-43.k3vq7mxa2bfnw4ds.boxcert.test:8443/", version: "0.2.0", httpPort: 8069 }));
  assert.equal(later.status, 200, later.text);
  const [stored] = (JSON.parse(await storeText(fixture)) as { boxes: Array<Record<string, unknown>> }).boxes;
  assert.equal(stored!.name, "Till 1 (back)");
  assert.equal(stored!.ip, "192.168.1.43");
  assert.equal(stored!.version, "0.2.0");
  assert.equal(stored!.httpPort, 8069, "the HTTP port, once the box sends it");
  assert.equal(stored!.lastSeen, new Date(now).toISOString());

  // A retried first registration (the answer was lost) carries the used secret: the key is what counts.
  const retried = await box.send(fixture.target, box.body(now, { pairing: "B".repeat(43) }));
  assert.equal(retried.status, 200, retried.text);

  // The same identifier with another key, even signed correctly by that key and with a fresh secret.
  const impostor = new FakeBox();
  const impostorBody = { ...impostor.body(now), identifier: box.identifier };
  await assertRefused(fixture, () => impostor.send(fixture.target, impostorBody), 403, "identity_mismatch");
  const withSecret = { ...impostorBody, pairing: await newSecret(fixture, now) };
  await assertRefused(fixture, () => impostor.send(fixture.target, withSecret), 403, "identity_mismatch");

  const stranger = new FakeBox();
  await assertRefused(fixture, () => stranger.send(fixture.target, stranger.body(now)), 403, "unknown_box");
});

test("a bad signature and a stale timestamp are 401", async (t) => {
  const fixture = await startTestErp();
  t.after(() => fixture.stop());
  const box = new FakeBox();
  const now = Date.now();
  const secret = await newSecret(fixture, now);
  const otherKey = generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey;
  await assertRefused(fixture, () => box.send(fixture.target, box.body(now, { pairing: secret }), { signWith: otherKey }), 401, "bad_signature");
  await assertRefused(fixture, () => box.send(fixture.target, box.body(now, { pairing: secret }), { signature: null }), 401, "bad_signature");
  await assertRefused(fixture, () => box.send(fixture.target, box.body(now, { pairing: secret }), { signature: "not-a-signature" }), 401, "bad_signature");
  await assertRefused(fixture, () => box.send(fixture.target, box.body(now - 11 * 60_000, { pairing: secret })), 401, "stale_request");
  await assertRefused(fixture, () => box.send(fixture.target, box.body(now + 11 * 60_000, { pairing: secret })), 401, "stale_request");
  // A signature over other bytes than those sent (the same JSON, spaced differently).
  const body = box.body(now, { pairing: secret });
  const signedElsewhere = await box.send(fixture.target, JSON.stringify(body, null, 1), {
    signature: (await import("node:crypto")).sign("sha256", Buffer.from(JSON.stringify(body)), { key: box.privateKey, dsaEncoding: "der" }).toString("base64url"),
  });
  assert.equal(signedElsewhere.status, 401);
  // Still usable after all that: nothing was consumed.
  assert.equal((await box.send(fixture.target, box.body(now, { pairing: secret }))).status, 200);
});

test("malformed bodies are 400 (or 415) and write nothing", async (t) => {
  const fixture = await startTestErp();
  t.after(() => fixture.stop());
  const box = new FakeBox();
  const now = Date.now();
  const secret = await newSecret(fixture, now);
  const valid = box.body(now, { pairing: secret });
  const cases: Array<[string, Record<string, unknown> | string, string]> = [
    ["not JSON", "{oops", "bad_json"],
    ["an array", "[]", "bad_request"],
    ["no identifier", { ...valid, identifier: undefined }, "bad_request"],
    ["an uppercase identifier", { ...valid, identifier: box.identifier.toUpperCase() }, "bad_request"],
    ["a number for a name", { ...valid, name: 42 }, "bad_request"],
    ["no httpsUrl field", { ...valid, httpsUrl: undefined }, "bad_request"],
    ["an http:// httpsUrl", { ...valid, httpsUrl: "http://192-168-1-42.x.boxcert.test/" }, "bad_request"],
    ["a javascript: httpsUrl", { ...valid, httpsUrl: "javascript:alert(1)" }, "bad_request"],
    ["an httpsUrl with a path", { ...valid, httpsUrl: "https://192-168-1-42.x.boxcert.test/evil?x" }, "bad_request"],
    ["an ip that is not one", { ...valid, ip: "till.local" }, "bad_request"],
    ["a date that is not one", { ...valid, certificateExpiry: "soon" }, "bad_request"],
    ["a timestamp that is not one", { ...valid, timestamp: "now" }, "bad_request"],
    ["an HTTP port of 0", { ...valid, httpPort: 0 }, "bad_request"],
    ["an HTTP port above 65535", { ...valid, httpPort: 65536 }, "bad_request"],
    ["an HTTP port that is a string", { ...valid, httpPort: "80" }, "bad_request"],
    ["an HTTP port that is not an integer", { ...valid, httpPort: 80.5 }, "bad_request"],
    ["a control character in the name", { ...valid, name: "Till\u00001" }, "bad_request"],
    ["an identity key that is not P-256", { ...valid, identityKey: "bm90IGEga2V5" }, "bad_identity_key"],
  ];
  for (const [what, body, code] of cases) {
    const text = typeof body === "string" ? body : JSON.stringify(body);
    await t.test(what, () => assertRefused(fixture, () => box.send(fixture.target, text), 400, code));
  }
  await assertRefused(fixture, () => box.send(fixture.target, JSON.stringify(valid), { contentType: "text/plain" }), 415, "unsupported_media_type");
  await assertRefused(fixture, () => box.send(fixture.target, JSON.stringify({ ...valid, name: "x".repeat(20_000) })), 413, "body_too_large");
  // The valid one still pairs: no refusal above consumed the secret.
  assert.equal((await box.send(fixture.target, valid)).status, 200);
});

test("registrations at once are applied one at a time: every box is kept", async (t) => {
  const fixture = await startTestErp();
  t.after(() => fixture.stop());
  const now = Date.now();
  const boxes = Array.from({ length: 12 }, () => new FakeBox());
  const secrets = await Promise.all(boxes.map(() => newSecret(fixture, now)));
  const answers = await Promise.all(boxes.map((box, i) => box.send(fixture.target, box.body(now, { pairing: secrets[i] }))));
  assert.deepEqual(answers.map((a) => a.status), boxes.map(() => 200));
  const stored = JSON.parse(await storeText(fixture)) as { boxes: Array<{ identifier: string }>; pairings: unknown[] };
  assert.deepEqual(stored.boxes.map((b) => b.identifier).sort(), boxes.map((b) => b.identifier).sort());
  assert.deepEqual(stored.pairings, []);
});
