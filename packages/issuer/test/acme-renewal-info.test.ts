/** RFC 9773 pieces: the certificate ID (the RFC's own example), answer validation, window picking. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { webcrypto } from "node:crypto";
import * as x509 from "@peculiar/x509";
import { certificateId, defaultAcmeWindow, leafOf, parseRenewalInfo, RENEWAL_INFO_RETRY_DEFAULT_MS, RENEWAL_INFO_RETRY_MAX_MS } from "../src/acme-renewal-info.ts";
import { pickInWindow } from "../src/certificate-source.ts";

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

async function certificate(serialHex: string, akiHex: string | null): Promise<string> {
  const alg = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" };
  const keys = await webcrypto.subtle.generateKey(alg, true, ["sign", "verify"]);
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serialHex,
    subject: "CN=leaf",
    issuer: "CN=issuer",
    notBefore: new Date("2026-01-01T00:00:00Z"),
    notAfter: new Date("2026-04-01T00:00:00Z"),
    publicKey: keys.publicKey,
    signingKey: keys.privateKey,
    signingAlgorithm: alg,
    extensions: akiHex ? [new x509.AuthorityKeyIdentifierExtension(akiHex)] : [],
  });
  return cert.toString("pem");
}

test("certificate ID: the example of RFC 9773 §4.1 (serial with its leading zero byte)", async () => {
  const pem = await certificate("0087654321", "69885b6b87464041e1b37b847ba0ae2cde01c8d4");
  assert.equal(certificateId(pem), "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE");
  assert.equal(certificateId(leafOf(`${pem}\n${pem}`)), "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE");
});

test("certificate ID: null without an authority key identifier", async () => {
  assert.equal(certificateId(await certificate("01", null)), null);
});

test("renewal information: a window and the Retry-After, bounded; bad answers are errors", () => {
  const info = parseRenewalInfo({ suggestedWindow: { start: "2026-02-01T00:00:00Z", end: "2026-02-02T00:00:00Z" }, explanationURL: "https://ca.example/why" }, 3600_000);
  assert.deepEqual(info.window, { start: new Date("2026-02-01T00:00:00Z"), end: new Date("2026-02-02T00:00:00Z") });
  assert.equal(info.retryAfterMs, 3600_000);
  assert.equal(info.explanationUrl, "https://ca.example/why");
  assert.equal(parseRenewalInfo({ suggestedWindow: { start: "2026-02-01T00:00:00Z", end: "2026-02-01T00:00:00Z" } }, null).retryAfterMs, RENEWAL_INFO_RETRY_DEFAULT_MS);
  assert.equal(parseRenewalInfo({ suggestedWindow: { start: "2026-02-01T00:00:00Z", end: "2026-02-02T00:00:00Z" } }, 90 * 86_400_000).retryAfterMs, RENEWAL_INFO_RETRY_MAX_MS);
  for (const bad of [null, {}, { suggestedWindow: {} }, { suggestedWindow: { start: "yesterday", end: "2026-02-02T00:00:00Z" } }, { suggestedWindow: { start: "2026-02-03T00:00:00Z", end: "2026-02-02T00:00:00Z" } }, { suggestedWindow: { start: 1, end: 2 } }]) {
    assert.throws(() => parseRenewalInfo(bad, null), /suggestedWindow|ends before/, JSON.stringify(bad));
  }
});

test("a point in the window, never in the past; without ARI two-thirds of the lifetime", () => {
  const window = { start: new Date("2026-02-01T00:00:00Z"), end: new Date("2026-02-02T00:00:00Z") };
  const early = new Date("2026-01-01T00:00:00Z");
  assert.equal(pickInWindow(window, 0, early).toISOString(), "2026-02-01T00:00:00.000Z");
  assert.equal(pickInWindow(window, 0.5, early).toISOString(), "2026-02-01T12:00:00.000Z");
  const late = new Date("2026-03-01T00:00:00Z");
  assert.equal(pickInWindow(window, 0.5, late).toISOString(), late.toISOString());
  const notBefore = new Date("2026-01-01T00:00:00Z");
  const notAfter = new Date("2026-04-01T00:00:00Z"); // 90 days
  const fallback = defaultAcmeWindow(notBefore, notAfter);
  assert.equal(fallback.end.toISOString(), "2026-03-02T00:00:00.000Z"); // day 60
  assert.ok(fallback.start < fallback.end && fallback.start > notBefore);
});
