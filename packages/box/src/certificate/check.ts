/**
 * The certificate check, as pure decisions (no I/O): what the box does at each check, in the order of the
 * contract (docs/errors.md; the original page checks, then loads):
 *
 *   1. no server URL                             -> ERR_IOT_HTTPS_CHECK_NO_SERVER
 *   2. https.pem there but unreadable            -> ERR_IOT_HTTPS_CHECK_CERT_READ_EXCEPTION (stop; never overwrite)
 *   3. a valid certificate, before its renewAfter -> on demand (homepage, "Check again") with no error:
 *                                                   nothing to do; at start, on the timer, or while the
 *                                                   box shows an error: refresh it (below), when the
 *                                                   credential is there (else nothing to do)
 *   4. no database UUID or subscription code     -> ERR_IOT_HTTPS_LOAD_NO_CREDENTIAL
 *   5. load from the issuer (load.ts)            -> REQUEST_EXCEPTION | REQUEST_STATUS <n> | REQUEST_NO_RESULT
 *
 * A refresh asks the issuer again for the key the box serves (not a new key): the issuer answers with the
 * same certificate (its renewAfter may have changed), or with a new one when an operator revoked it. So a
 * revocation or a changed renewal window reaches the box within one check interval (6 hours), while opening
 * the homepage never makes a request for a certificate that is fine.
 */
import { certificateNames, formatErrorCode, sameNames } from "@boxcert/shared";
import type { BoxErrorCode, RefusalReason } from "@boxcert/shared";
import type { CertificateFile, CertificateInfo, StoredCertificate } from "./certificate-file.ts";

export interface BoxError {
  code: BoxErrorCode;
  /** The HTTP status, for ERR_IOT_HTTPS_LOAD_REQUEST_STATUS. */
  status?: number;
  /** The explanation: the exception, or the issuer's message. */
  detail: string;
  /** The issuer's refusal reason, for ERR_IOT_HTTPS_LOAD_REQUEST_NO_RESULT. */
  reason?: RefusalReason;
}

/** The code exactly as displayed: "ERR_IOT_HTTPS_LOAD_REQUEST_STATUS 404". */
export function displayCode(error: BoxError): string {
  return formatErrorCode(error.code, error.status);
}

export interface CheckInput {
  server: string | null;
  dbUuid: string | null;
  enterpriseCode: string | null;
  /** The enrollment the box holds: label and zone, and the database it was made for. */
  label: string | null;
  zone: string | null;
  enrolledFor: string | null;
  file: CertificateFile;
  now: number;
  /** Why the check runs: "periodic" (at start and on the timer) or "demand" (homepage, "Check again"). */
  trigger: CheckTrigger;
  /** The last check failed: the box shows an error (a check on demand then retries). */
  failing: boolean;
}

/**
 * "periodic": the check at start and the timed ones (renewAfter, every 6 hours, backoff retries); they
 * contact the issuer even for a valid certificate. "demand": the homepage or "Check again"; no request
 * for a valid certificate that is not due, unless the box shows an error.
 */
export type CheckTrigger = "periodic" | "demand";

export type LoadReason = "missing" | "expired" | "due" | "credential changed";

export type CheckDecision =
  | { action: "fail"; error: BoxError }
  | { action: "keep"; certificate: StoredCertificate }
  /** Ask the issuer again for the certificate of the served key (see the top of this file). */
  | { action: "refresh"; certificate: StoredCertificate }
  | { action: "load"; reason: LoadReason };

export function isValidAt(info: CertificateInfo, now: number): boolean {
  return info.notBefore <= now && now < info.notAfter;
}

/**
 * The certificate still belongs to the box's current connection: when the database changed since the
 * enrollment, or the enrollment's names differ from the certificate's, a new certificate is owed.
 */
function belongsToConnection(input: CheckInput, info: CertificateInfo): boolean {
  if (input.dbUuid === null || input.enrolledFor === null) return true;
  if (input.enrolledFor !== input.dbUuid) return false;
  if (input.label === null || input.zone === null) return true;
  return sameNames(info.names, certificateNames(input.label, input.zone));
}

function missingCredential(input: CheckInput): string[] {
  return [input.dbUuid ? null : "database UUID", input.enterpriseCode ? null : "subscription code"].filter(
    (field): field is string => field !== null,
  );
}

export function decideCheck(input: CheckInput): CheckDecision {
  if (!input.server) {
    return {
      action: "fail",
      error: { code: "ERR_IOT_HTTPS_CHECK_NO_SERVER", detail: "no server is configured: the box is not connected to a database" },
    };
  }
  if (input.file.kind === "unreadable") {
    return { action: "fail", error: { code: "ERR_IOT_HTTPS_CHECK_CERT_READ_EXCEPTION", detail: input.file.error } };
  }
  let reason: LoadReason = "missing";
  if (input.file.kind === "present") {
    const { certificate } = input.file;
    const connected = belongsToConnection(input, certificate.info);
    if (isValidAt(certificate.info, input.now) && input.now < certificate.info.renewAfter && connected) {
      const refresh = (input.trigger === "periodic" || input.failing) && missingCredential(input).length === 0;
      return { action: refresh ? "refresh" : "keep", certificate };
    }
    reason = !connected ? "credential changed" : input.now >= certificate.info.notAfter ? "expired" : "due";
  }
  const missing = missingCredential(input);
  if (missing.length > 0) {
    return { action: "fail", error: { code: "ERR_IOT_HTTPS_LOAD_NO_CREDENTIAL", detail: `missing: ${missing.join(" and ")}` } };
  }
  return { action: "load", reason };
}

export type CertificateStatus = "ok" | "renewing" | "error" | "missing";

export interface StatusInput {
  /** The certificate the box serves, if any. */
  certificate: CertificateInfo | null;
  /** The last check's error, if it failed. */
  error: BoxError | null;
  /** A request to the issuer is running now. */
  loading: boolean;
  now: number;
}

/**
 * "ok" a valid certificate and no error; "renewing" a valid certificate while a renewal runs or
 * after one failed; "error" no valid certificate and an error; "missing" no certificate and no attempt yet.
 */
export function certificateStatus(input: StatusInput): CertificateStatus {
  const valid = input.certificate !== null && isValidAt(input.certificate, input.now);
  if (valid) return input.error || input.loading ? "renewing" : "ok";
  return input.error ? "error" : "missing";
}
