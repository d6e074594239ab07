/** The connection token (docs/erp.md "The connection token"): its format, read back, and its secrets. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { formatConnectionToken, isPairingSecret, newPairingSecret, pairingHash, parseConnectionToken } from "../src/pairing.ts";

const FIELDS = { server: "https://erp.example/", dbUuid: "7c1f6a2e-3b7d-4e39-9a52-0c8e4d1f2b3a", enterpriseCode: "SUB-42" };

test("a token is boxcert1. and the base64url of the JSON, in the documented order, and reads back", () => {
  const pairing = newPairingSecret();
  const token = formatConnectionToken({ ...FIELDS, zone: "boxcert.example", pairing });
  assert.match(token, /^boxcert1\.[A-Za-z0-9_-]+$/);
  const json = Buffer.from(token.slice("boxcert1.".length), "base64url").toString("utf8");
  assert.equal(json, JSON.stringify({ ...FIELDS, zone: "boxcert.example", pairing }));
  assert.deepEqual(parseConnectionToken(token), { ...FIELDS, zone: "boxcert.example", pairing });
  // Without a zone (the database was not told one), the field is absent, not null.
  const noZone = formatConnectionToken({ ...FIELDS, pairing });
  assert.ok(!Buffer.from(noZone.slice(9), "base64url").toString("utf8").includes("zone"));
  assert.deepEqual(parseConnectionToken(` ${noZone}\n`), { ...FIELDS, pairing });
});

test("pairing secrets: 32 random bytes in base64url, each new, stored only as their hash", () => {
  const secrets = new Set(Array.from({ length: 100 }, () => newPairingSecret()));
  assert.equal(secrets.size, 100);
  for (const secret of secrets) {
    assert.ok(isPairingSecret(secret));
    assert.equal(Buffer.from(secret, "base64url").length, 32);
  }
  const [one] = secrets;
  assert.equal(pairingHash(one!), pairingHash(one!));
  assert.notEqual(pairingHash(one!), one);
  for (const bad of ["", "A".repeat(42), "A".repeat(44), `${"A".repeat(42)}=`, `${"A".repeat(42)}+`, 42, null]) assert.ok(!isPairingSecret(bad), String(bad));
});

test("what is not a token is refused with a reason", () => {
  assert.throws(() => parseConnectionToken("boxcert2.e30"), /starts with "boxcert1\."/);
  assert.throws(() => parseConnectionToken("boxcert1.%%%"), /not base64url JSON/);
  assert.throws(() => parseConnectionToken(`boxcert1.${Buffer.from(JSON.stringify(FIELDS)).toString("base64url")}`), /lacks .* the pairing secret/);
  assert.throws(() => parseConnectionToken(`boxcert1.${Buffer.from(JSON.stringify({ ...FIELDS, pairing: newPairingSecret(), zone: 7 })).toString("base64url")}`), /lacks/);
});
