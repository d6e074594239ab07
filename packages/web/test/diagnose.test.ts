/**
 * The decision of @boxcert/web, a pure function of facts: every combination of what the browser can
 * observe, then the cases a shop meets, named after them. The words are tested in describe.test.ts; the
 * requests that gather the facts in client.test.ts (here) and in a real Chromium (test/web-browser.test.ts).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { diagnose, certificateProblem, type Facts, type Outcome, type Permission, type StatusFacts, type CertificateDetail } from "@boxcert/web";

const HOST = "192-168-1-42.k7fidglmun75foxe.boxcert.example";
const NOW = Date.parse("2026-12-01T10:00:00Z");
const NAMES = ["*.k7fidglmun75foxe.boxcert.example", "k7fidglmun75foxe.boxcert.example"];

/** Statuses the box can report, with what each says of the certificate for HOST at NOW (null: fine). */
const STATUSES: { name: string; status: StatusFacts | null; problem: CertificateDetail | null }[] = [
  { name: "unreadable", status: null, problem: null },
  { name: "ok", status: { status: "ok", names: NAMES, notAfter: "2027-02-24T10:00:00Z", errorCode: null }, problem: null },
  { name: "renewing", status: { status: "renewing", names: NAMES, notAfter: "2026-12-20T10:00:00Z", errorCode: "ERR_IOT_HTTPS_LOAD_REQUEST_EXCEPTION" }, problem: null },
  { name: "expired", status: { status: "error", names: NAMES, notAfter: "2026-11-30T10:00:00Z", errorCode: "ERR_IOT_HTTPS_LOAD_REQUEST_NO_RESULT" }, problem: "expired" },
  { name: "ok but past notAfter", status: { status: "ok", names: NAMES, notAfter: "2026-12-01T09:59:59Z", errorCode: null }, problem: "expired" },
  { name: "missing", status: { status: "missing", names: [], notAfter: null, errorCode: null }, problem: "missing" },
  { name: "error, none", status: { status: "error", names: [], notAfter: null, errorCode: "ERR_IOT_HTTPS_LOAD_NO_CREDENTIAL" }, problem: "missing" },
  { name: "another label", status: { status: "ok", names: ["*.otherlabel.boxcert.example", "otherlabel.boxcert.example"], notAfter: "2027-02-24T10:00:00Z", errorCode: null }, problem: "wrong-name" },
];
const HTTPS: Facts["https"][] = ["ok", "failed", "timeout"];
const OUTCOMES: Outcome[] = ["ok", "failed", "timeout", "not-tried"];
const PERMISSIONS: Permission[] = ["granted", "denied", "prompt", "unknown"];

function facts(over: Partial<Facts>): Facts {
  return { https: "failed", mixedContent: false, httpByName: "failed", ip: "failed", status: null, permission: "granted", hostname: HOST, now: NOW, ...over };
}

function* everyCombination(): Generator<{ f: Facts; problem: CertificateDetail | null; label: string }> {
  for (const https of HTTPS)
    for (const mixedContent of [false, true])
      for (const httpByName of OUTCOMES)
        for (const ip of OUTCOMES)
          for (const { name, status, problem } of STATUSES)
            for (const permission of PERMISSIONS)
              yield {
                f: facts({ https, mixedContent, httpByName, ip, status, permission }),
                problem,
                label: `https=${https} mixed=${mixedContent} byName=${httpByName} ip=${ip} status=${name} permission=${permission}`,
              };
}

test("every combination of facts: the first thing to fix, by the rules of docs/web.md", () => {
  let count = 0;
  for (const { f, problem, label } of everyCombination()) {
    count++;
    const d = diagnose(f);
    const expect = (reason: string | null, ok: boolean, via: string | null, detail: string | null = null) =>
      assert.deepEqual({ reason: d.reason, ok: d.ok, via: d.via, detail: d.detail }, { reason, ok, via, detail }, label);
    if (f.https === "ok") expect(null, true, "https");
    else if (f.mixedContent) expect("mixed-content", false, null);
    else if (f.ip === "ok") {
      // The box answers by IP: the degraded path works, and the reason is why HTTPS does not.
      if (problem && f.status) expect("certificate", true, "ip", problem);
      else if (f.httpByName === "ok") expect("certificate", true, "ip", "untrusted");
      else if (f.httpByName === "not-tried") expect("name-or-certificate", true, "ip");
      else expect("name-not-resolving", true, "ip");
    } else if (f.httpByName === "ok") expect("certificate", false, null, "untrusted");
    else if (f.permission === "denied") expect("lna-denied", false, null);
    else if (f.permission === "prompt") expect("lna-prompt", false, null);
    else if (f.permission === "unknown" && f.https === "failed") expect("name-or-certificate", false, null);
    else expect("unreachable", false, null);
  }
  assert.equal(count, 3 * 2 * 4 * 4 * STATUSES.length * 4);
});

test("every combination: a degraded result always carries a reason; only HTTPS is ok without one", () => {
  for (const { f, label } of everyCombination()) {
    const d = diagnose(f);
    assert.equal(d.reason === null, d.ok && d.via === "https", label);
    assert.equal(d.via === "ip", d.ok && f.https !== "ok", label);
  }
});

test("reached over HTTPS: nothing else matters", () => {
  assert.deepEqual(diagnose(facts({ https: "ok", permission: "denied", ip: "failed" })), {
    ok: true, via: "https", reason: null, detail: null, notAfter: null, errorCode: null,
  });
});

test("a router with DNS rebinding protection: the box answers by IP with a valid certificate, the name does not resolve", () => {
  const d = diagnose(facts({ ip: "ok", status: STATUSES[1]!.status, httpByName: "failed" }));
  assert.deepEqual([d.ok, d.via, d.reason], [true, "ip", "name-not-resolving"]);
});

test("a box whose status this origin may not read (not paired with it) but whose ping answers by IP: the name still decides", () => {
  assert.equal(diagnose(facts({ ip: "ok", status: null, httpByName: "timeout" })).reason, "name-not-resolving");
  assert.deepEqual(diagnose(facts({ ip: "ok", status: null, httpByName: "ok" })).detail, "untrusted");
});

test("a certificate this browser does not accept: the name resolves over plain HTTP, HTTPS fails", () => {
  const degraded = diagnose(facts({ ip: "ok", status: STATUSES[1]!.status, httpByName: "ok" }));
  assert.deepEqual([degraded.ok, degraded.reason, degraded.detail], [true, "certificate", "untrusted"]);
  const noIp = diagnose(facts({ ip: "failed", httpByName: "ok" }));
  assert.deepEqual([noIp.ok, noIp.reason, noIp.detail], [false, "certificate", "untrusted"]);
});

test("an expired certificate: the date and the box's own error code go with it", () => {
  const d = diagnose(facts({ ip: "ok", status: STATUSES[3]!.status, httpByName: "ok" }));
  assert.deepEqual(d, { ok: true, via: "ip", reason: "certificate", detail: "expired", notAfter: "2026-11-30T10:00:00Z", errorCode: "ERR_IOT_HTTPS_LOAD_REQUEST_NO_RESULT" });
});

test("local network access: denied, or the question not answered, when nothing answers", () => {
  assert.equal(diagnose(facts({ permission: "denied", https: "failed" })).reason, "lna-denied");
  assert.equal(diagnose(facts({ permission: "prompt", https: "timeout", ip: "timeout", httpByName: "timeout" })).reason, "lna-prompt");
});

test("Firefox and Safari (permission unknown): a quick failure is a name or a certificate, a silence is an absent box", () => {
  assert.equal(diagnose(facts({ permission: "unknown", https: "failed" })).reason, "name-or-certificate");
  assert.equal(diagnose(facts({ permission: "unknown", https: "timeout" })).reason, "unreachable");
});

test("the box off, with the permission granted: unreachable", () => {
  assert.equal(diagnose(facts({ permission: "granted", https: "timeout", ip: "timeout", httpByName: "timeout" })).reason, "unreachable");
  assert.equal(diagnose(facts({ permission: "granted", https: "failed", ip: "failed", httpByName: "failed" })).reason, "unreachable");
});

test("an http:// box address on an https:// page: mixed content, whatever else failed", () => {
  assert.equal(diagnose(facts({ mixedContent: true, ip: "ok", permission: "denied" })).reason, "mixed-content");
});

test("certificateProblem: a wildcard covers one label, not two; the box's clock is not trusted over notAfter", () => {
  const ok = STATUSES[1]!.status;
  assert.equal(certificateProblem(ok, HOST, NOW), null);
  assert.equal(certificateProblem(ok, HOST.toUpperCase(), NOW), null, "names compare case-insensitively");
  assert.equal(certificateProblem(ok, "k7fidglmun75foxe.boxcert.example", NOW), null, "the bare name");
  assert.deepEqual(certificateProblem(ok, `a.${HOST}`, NOW), { detail: "wrong-name" });
  assert.deepEqual(certificateProblem(ok, "192-168-1-42.other.boxcert.example", NOW), { detail: "wrong-name" });
  assert.equal(certificateProblem(ok, HOST, Date.parse("2027-02-24T09:59:59Z")), null);
  assert.equal(certificateProblem(ok, HOST, Date.parse("2027-02-24T10:00:00Z"))?.detail, "expired");
  assert.equal(certificateProblem(null, HOST, NOW), null, "nothing read, nothing said");
});
