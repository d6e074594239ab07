/**
 * What chain the box saves (issue 10): with trust anchors (--issuer-ca, the system's roots) a chain must
 * verify from the leaf to one of them, for an https:// issuer or when --issuer-ca is given; an http://
 * issuer without --issuer-ca (tests only) is not verified, and the box says so once at start.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { readFile, stat } from "node:fs/promises";
import { chainTrust, pemCertificates, verifyChain } from "../src/certificate/chain-trust.ts";
import { newTlsKey } from "../src/certificate/tls-key.ts";
import { readCertificateFile } from "../src/certificate/certificate-file.ts";
import { issueLeaf, makeCa } from "./helpers/pki.ts";
import type { TestCa } from "./helpers/pki.ts";
import { startTestIssuer } from "./helpers/test-issuer.ts";
import type { TestIssuer } from "./helpers/test-issuer.ts";
import { connectedDir, startBox } from "./helpers/fixture.ts";

const DAY = 86400_000;

function cert(pem: string): X509Certificate {
  return new X509Certificate(pem);
}

/** A leaf for a fresh key issued by `ca`. */
async function leafOf(ca: TestCa): Promise<X509Certificate> {
  return cert(await issueLeaf(ca, { publicKey: newTlsKey().privateKey, names: ["a.example.test"] }));
}

test("verifyChain: leaf, intermediates, up to a trusted root; each link signed, each issuer a CA and valid now", async () => {
  const root = await makeCa("Test Root");
  const intermediate = await makeCa("Test Intermediate", root);
  const leaf = await leafOf(intermediate);
  const trust = chainTrust(root.pem);
  const now = Date.now();

  assert.equal(verifyChain([leaf, cert(intermediate.pem)], trust, now), null);
  assert.equal(verifyChain([leaf, cert(intermediate.pem), cert(root.pem)], trust, now), null, "a chain may carry its root");
  assert.equal(verifyChain([await leafOf(root)], trust, now), null, "a leaf the root issued directly");
  // The chain goes on past the trusted root's intermediate with a cross-signed copy of the root.
  const crossSigner = await makeCa("Old Root");
  const crossSigned = await makeCa("Test Root", crossSigner);
  assert.equal(verifyChain([leaf, cert(intermediate.pem), cert(crossSigned.pem)], trust, now), null);

  assert.match(verifyChain([leaf], trust, now) ?? "", /its last certificate \(issued by CN=Test Intermediate\) was not issued by a trusted root/);
  assert.match(verifyChain([leaf, cert(intermediate.pem)], chainTrust(), now) ?? "", /was not issued by a trusted root/, "the system's roots alone");
  // Ten years on, the intermediate has expired (the injected time is what counts, not the machine's).
  assert.match(verifyChain([leaf, cert(intermediate.pem)], trust, now + 11 * 365 * DAY) ?? "", /certificate 2 of the chain \(CN=Test Intermediate\) is not valid now/);
  // A root that expired anchors nothing: a leaf it issued directly, checked after its end.
  const shortRoot = await makeCa("Short Root", undefined, { notAfter: new Date(now + DAY) });
  assert.match(verifyChain([await leafOf(shortRoot)], chainTrust(shortRoot.pem), now + 2 * DAY) ?? "", /not issued by a trusted root valid now/);

  // Same names, other keys: names are not enough.
  const impostorRoot = await makeCa("Test Root");
  const impostor = await makeCa("Test Intermediate", impostorRoot);
  assert.match(verifyChain([await leafOf(impostor), cert(impostor.pem)], trust, now) ?? "", /was not issued by a trusted root/);
  assert.match(verifyChain([leaf, cert(impostor.pem)], trust, now) ?? "", /certificate 2 did not sign certificate 1/);

  const expired = await makeCa("Expired Intermediate", root, { notBefore: new Date(now - 30 * DAY), notAfter: new Date(now - DAY) });
  assert.match(verifyChain([await leafOf(expired), cert(expired.pem)], trust, now) ?? "", /certificate 2 of the chain \(CN=Expired Intermediate\) is not valid now/);
  const future = await makeCa("Future Intermediate", root, { notBefore: new Date(now + DAY), notAfter: new Date(now + 30 * DAY) });
  assert.match(verifyChain([await leafOf(future), cert(future.pem)], trust, now) ?? "", /is not valid now/);
  const notCa = await makeCa("Not A CA", root, { ca: false });
  assert.match(verifyChain([await leafOf(notCa), cert(notCa.pem)], trust, now) ?? "", /certificate 2 of the chain \(CN=Not A CA\) is not a CA certificate/);
});

test("trust anchors: the --issuer-ca text may hold several certificates; one that cannot be parsed is named", async () => {
  const one = await makeCa("One Root");
  const two = await makeCa("Two Root");
  const trust = chainTrust(`# a comment\n${one.pem}${two.pem}`);
  const { bySubject, fingerprints } = trust.anchors();
  assert.ok(bySubject.has("CN=One Root") && bySubject.has("CN=Two Root"));
  assert.equal(verifyChain([await leafOf(two)], trust, Date.now()), null);
  assert.ok(fingerprints.size > 2, "the system's roots are there too");
  assert.equal(pemCertificates(one.pem + two.pem, "x").length, 2);
  const broken = `${one.pem}-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n`;
  assert.throws(() => chainTrust(broken), /the extra CA file \(--issuer-ca\): certificate 2 cannot be parsed/);
});

type After = { after: (fn: () => Promise<void>) => void };

async function boxAgainst(t: After, issuer: TestIssuer, options: { issuerUrl?: string; issuerCa?: string } = {}) {
  const temp = await connectedDir();
  const fixture = await startBox({ issuerUrl: options.issuerUrl ?? issuer.url, ...(options.issuerCa ? { issuerCa: options.issuerCa } : {}) }, temp.dir);
  t.after(async () => {
    await fixture.stop();
    await temp.cleanup();
  });
  return fixture;
}

/** A CA with the names of the test issuer's, but other keys: what a spoofed issuer could sign with. */
async function impostor(): Promise<TestCa> {
  return makeCa("Test Intermediate", await makeCa("Test Root"));
}

test("with --issuer-ca, a chain that verifies is saved; one signed by another CA is refused and https.pem is left as it was", async (t) => {
  const issuer = await startTestIssuer();
  t.after(() => issuer.close());
  const spoofed = await impostor();
  const { box, paths } = await boxAgainst(t, issuer, { issuerCa: issuer.ca.pem });

  issuer.signer = spoofed;
  let status = await box.checkNow();
  assert.equal(status.certificate.status, "error");
  assert.equal(status.certificate.errorCode, "ERR_IOT_HTTPS_LOAD_REQUEST_STATUS 200");
  assert.match(status.certificate.detail ?? "", /^the chain does not verify: .*not issued by a trusted root/);
  await assert.rejects(stat(paths.https), { code: "ENOENT" });

  issuer.signer = issuer.intermediate;
  issuer.revokeAll();
  status = await box.checkNow();
  assert.equal(status.certificate.status, "ok", status.certificate.detail ?? "");
  const saved = await readFile(paths.https, "utf8");
  const file = await readCertificateFile(paths.https);
  assert.ok(file.kind === "present" && file.certificate.info.issuer === "Test Intermediate");

  // A refresh answered with another chain for the same key, from the impostor: not saved, still served.
  issuer.signer = spoofed;
  issuer.revokeAll();
  status = await box.checkNow("periodic");
  assert.equal(status.certificate.status, "renewing");
  assert.match(status.certificate.detail ?? "", /^the chain does not verify/);
  assert.equal(await readFile(paths.https, "utf8"), saved, "https.pem changed");
  assert.equal(status.certificate.notAfter, new Date(file.certificate.info.notAfter).toISOString());
});

test("an https issuer's chains are verified even when --issuer-ca holds only its TLS root", async (t) => {
  const tlsCa = await makeCa("Issuer TLS CA");
  const key = newTlsKey();
  const issuer = await startTestIssuer({ tls: { key: key.pem, cert: await issueLeaf(tlsCa, { publicKey: key.privateKey, names: ["localhost"], ips: ["127.0.0.1"] }) } });
  t.after(() => issuer.close());
  const { box, paths } = await boxAgainst(t, issuer, { issuerCa: tlsCa.pem });
  const status = await box.checkNow();
  assert.equal(status.certificate.errorCode, "ERR_IOT_HTTPS_LOAD_REQUEST_STATUS 200");
  assert.match(status.certificate.detail ?? "", /the chain does not verify: its last certificate \(issued by CN=Test Root\) was not issued by a trusted root/);
  await assert.rejects(stat(paths.https), { code: "ENOENT" });
});

test("an http issuer without --issuer-ca: chains are saved unverified, and the box says so once at start", async (t) => {
  const issuer = await startTestIssuer();
  t.after(() => issuer.close());
  issuer.signer = await impostor();
  const { box, paths } = await boxAgainst(t, issuer);
  assert.equal((await box.checkNow()).certificate.status, "ok");
  assert.equal((await box.checkNow("periodic")).certificate.status, "ok");
  const lines = (await readFile(paths.log, "utf8")).split("\n").filter((line) => line.includes('"event":"chain_unverified"'));
  assert.equal(lines.length, 1);
  assert.match(lines[0] as string, /"level":40/);
});
