import { test } from "node:test";
import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import { BOX_ERROR_CODES, certificateNames } from "@boxcert/shared";
import { certificateStatus, decideCheck, displayCode } from "../src/certificate/check.ts";
import type { CheckInput } from "../src/certificate/check.ts";
import type { CertificateFile, CertificateInfo, StoredCertificate } from "../src/certificate/certificate-file.ts";
import { tlsKeyFromPem } from "../src/certificate/tls-key.ts";

const DAY = 86_400_000;
const NOW = Date.parse("2025-03-01T12:00:00Z");
const LABEL = "abcdefghijklmnop";
const ZONE = "boxcert.test";

function info(overrides: Partial<CertificateInfo> = {}): CertificateInfo {
  return {
    subject: `*.${LABEL}.${ZONE}`,
    issuer: "Test CA",
    names: certificateNames(LABEL, ZONE),
    serial: "01",
    notBefore: NOW - 30 * DAY,
    notAfter: NOW + 60 * DAY,
    renewAfter: NOW + 30 * DAY,
    ...overrides,
  };
}

const key = tlsKeyFromPem(generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey.export({ type: "pkcs8", format: "pem" }) as string);

function present(i: CertificateInfo = info()): CertificateFile {
  const certificate: StoredCertificate = { key, chainPem: "", info: i };
  return { kind: "present", certificate };
}

function input(overrides: Partial<CheckInput> = {}): CheckInput {
  return {
    server: "https://erp.example/",
    dbUuid: "db-1",
    enterpriseCode: "M1234",
    label: LABEL,
    zone: ZONE,
    enrolledFor: "db-1",
    file: { kind: "absent" },
    now: NOW,
    trigger: "demand",
    failing: false,
    ...overrides,
  };
}

function failCode(i: CheckInput): string {
  const decision = decideCheck(i);
  assert.equal(decision.action, "fail", JSON.stringify(decision));
  return decision.action === "fail" ? decision.error.code : "";
}

test("no server comes first, before an unreadable file and missing credentials", () => {
  const everythingWrong = input({ server: null, file: { kind: "unreadable", error: "boom" }, dbUuid: null, enterpriseCode: null });
  assert.equal(failCode(everythingWrong), "ERR_IOT_HTTPS_CHECK_NO_SERVER");
  assert.equal(failCode(input({ server: null, file: present() })), "ERR_IOT_HTTPS_CHECK_NO_SERVER");
});

test("an unreadable certificate file is reported with its error, before credentials", () => {
  const decision = decideCheck(input({ file: { kind: "unreadable", error: "/d/https.pem: bad PEM" }, dbUuid: null }));
  assert.deepEqual(decision, {
    action: "fail",
    error: { code: "ERR_IOT_HTTPS_CHECK_CERT_READ_EXCEPTION", detail: "/d/https.pem: bad PEM" },
  });
});

test("a valid certificate before its renewAfter needs nothing, even without credentials", () => {
  assert.equal(decideCheck(input({ file: present() })).action, "keep");
  assert.equal(decideCheck(input({ file: present(), dbUuid: null, enterpriseCode: null })).action, "keep");
});

test("a periodic check refreshes a valid certificate before its renewAfter; on demand it does not", () => {
  const file = present();
  const certificate = file.kind === "present" ? file.certificate : null;
  assert.deepEqual(decideCheck(input({ file, trigger: "periodic" })), { action: "refresh", certificate });
  assert.deepEqual(decideCheck(input({ file, trigger: "demand" })), { action: "keep", certificate });
});

test("on demand, a box that shows an error retries: a refresh for a valid certificate", () => {
  const file = present();
  assert.equal(decideCheck(input({ file, trigger: "demand", failing: true })).action, "refresh");
  assert.equal(decideCheck(input({ file, trigger: "periodic", failing: true })).action, "refresh");
});

test("no refresh without a credential: the valid certificate is kept, no error", () => {
  for (const trigger of ["periodic", "demand"] as const) {
    for (const missing of [{ dbUuid: null }, { enterpriseCode: null }]) {
      assert.equal(decideCheck(input({ file: present(), trigger, failing: true, ...missing })).action, "keep");
    }
  }
});

test("a refresh is only for a valid certificate of the current connection, before its renewAfter", () => {
  const periodic = { trigger: "periodic" as const };
  assert.deepEqual(decideCheck(input({ ...periodic, file: present(info({ renewAfter: NOW })) })), { action: "load", reason: "due" });
  assert.deepEqual(decideCheck(input({ ...periodic, file: present(info({ notAfter: NOW, renewAfter: NOW - DAY })) })), { action: "load", reason: "expired" });
  assert.deepEqual(decideCheck(input({ ...periodic, file: present(info({ notBefore: NOW + 1 })) })), { action: "load", reason: "due" });
  assert.deepEqual(decideCheck(input({ ...periodic, file: present(), dbUuid: "db-2" })), { action: "load", reason: "credential changed" });
  assert.deepEqual(decideCheck(input({ ...periodic, file: present(info({ renewAfter: NOW })), dbUuid: null })), {
    action: "fail",
    error: { code: "ERR_IOT_HTTPS_LOAD_NO_CREDENTIAL", detail: "missing: database UUID" },
  });
});

test("the trigger changes nothing before the certificate: no server, unreadable file, missing", () => {
  for (const trigger of ["periodic", "demand"] as const) {
    assert.equal(failCode(input({ trigger, server: null, file: present() })), "ERR_IOT_HTTPS_CHECK_NO_SERVER");
    assert.equal(failCode(input({ trigger, file: { kind: "unreadable", error: "x" } })), "ERR_IOT_HTTPS_CHECK_CERT_READ_EXCEPTION");
    assert.deepEqual(decideCheck(input({ trigger })), { action: "load", reason: "missing" });
  }
});

test("renewAfter is honoured to the millisecond", () => {
  const renewAfter = NOW + 1000;
  assert.equal(decideCheck(input({ file: present(info({ renewAfter })), now: renewAfter - 1 })).action, "keep");
  assert.deepEqual(decideCheck(input({ file: present(info({ renewAfter })), now: renewAfter })), { action: "load", reason: "due" });
});

test("missing or due certificates without credentials fail with NO_CREDENTIAL, naming what is missing", () => {
  const noUuid = decideCheck(input({ dbUuid: null }));
  assert.deepEqual(noUuid, { action: "fail", error: { code: "ERR_IOT_HTTPS_LOAD_NO_CREDENTIAL", detail: "missing: database UUID" } });
  const neither = decideCheck(input({ dbUuid: null, enterpriseCode: null, file: present(info({ renewAfter: NOW - 1 })) }));
  assert.equal(neither.action === "fail" && neither.error.detail, "missing: database UUID and subscription code");
  assert.equal(failCode(input({ enterpriseCode: null })), "ERR_IOT_HTTPS_LOAD_NO_CREDENTIAL");
});

test("load reasons: missing, due, expired, not yet valid, credential changed", () => {
  assert.deepEqual(decideCheck(input()), { action: "load", reason: "missing" });
  assert.deepEqual(decideCheck(input({ file: present(info({ notAfter: NOW, renewAfter: NOW - DAY })) })), { action: "load", reason: "expired" });
  assert.deepEqual(decideCheck(input({ file: present(info({ notBefore: NOW + 1 })) })), { action: "load", reason: "due" });
  assert.deepEqual(decideCheck(input({ file: present(), dbUuid: "db-2" })), { action: "load", reason: "credential changed" });
  const otherLabel = info({ names: certificateNames("zzzzzzzzzzzzzzzz", ZONE) });
  assert.deepEqual(decideCheck(input({ file: present(otherLabel) })), { action: "load", reason: "credential changed" });
});

test("the codes are reached in the catalogue's order", () => {
  const reached = [
    failCode(input({ server: null, file: { kind: "unreadable", error: "x" }, dbUuid: null })),
    failCode(input({ file: { kind: "unreadable", error: "x" }, dbUuid: null })),
    failCode(input({ dbUuid: null })),
  ];
  assert.deepEqual(reached, BOX_ERROR_CODES.slice(0, 3));
});

test("displayCode adds the HTTP status to REQUEST_STATUS only", () => {
  assert.equal(displayCode({ code: "ERR_IOT_HTTPS_LOAD_REQUEST_STATUS", status: 404, detail: "" }), "ERR_IOT_HTTPS_LOAD_REQUEST_STATUS 404");
  assert.equal(displayCode({ code: "ERR_IOT_HTTPS_LOAD_REQUEST_NO_RESULT", detail: "" }), "ERR_IOT_HTTPS_LOAD_REQUEST_NO_RESULT");
});

test("certificate status: ok, renewing, error, missing", () => {
  const error = { code: "ERR_IOT_HTTPS_LOAD_REQUEST_EXCEPTION" as const, detail: "connection refused" };
  const valid = info();
  const expired = info({ notAfter: NOW - 1 });
  assert.equal(certificateStatus({ certificate: valid, error: null, loading: false, now: NOW }), "ok");
  assert.equal(certificateStatus({ certificate: valid, error: null, loading: true, now: NOW }), "renewing");
  assert.equal(certificateStatus({ certificate: valid, error, loading: false, now: NOW }), "renewing");
  assert.equal(certificateStatus({ certificate: null, error, loading: false, now: NOW }), "error");
  assert.equal(certificateStatus({ certificate: expired, error, loading: false, now: NOW }), "error");
  assert.equal(certificateStatus({ certificate: null, error: null, loading: false, now: NOW }), "missing");
  assert.equal(certificateStatus({ certificate: null, error: null, loading: true, now: NOW }), "missing");
});
