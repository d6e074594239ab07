/**
 * What the box is, where it answers, and its certificate: built by a pure function from the agent's state
 * so the homepage and the status API say the same thing.
 *
 * The view keeps its data structured (the error as code, HTTP status and detail; the HTTPS name as label,
 * zone and host); display strings are made where they are shown: the pages (homepage.ts) and the
 * GET /api/status serializer below, whose JSON is a contract (`certificate.errorCode` is exactly
 * "ERR_IOT_HTTPS_LOAD_REQUEST_STATUS 404").
 */
import { isIP, isIPv6 } from "node:net";
import { boxHostname, decodeAddress, formatErrorCode } from "@boxcert/shared";
import type { BoxErrorCode, LogLevel, RefusalReason } from "@boxcert/shared";
import type { BoxError, CertificateStatus } from "../certificate/check.ts";
import { certificateStatus } from "../certificate/check.ts";
import type { CertificateInfo } from "../certificate/certificate-file.ts";
import { describeProblem } from "../database/registration.ts";
import type { RegistrationView } from "../database/registration.ts";

/** The last check's error, as fields. */
export interface ShownError {
  code: BoxErrorCode;
  /** The issuer's HTTP status, for ERR_IOT_HTTPS_LOAD_REQUEST_STATUS; null otherwise. */
  httpStatus: number | null;
  /** The explanation: the exception, or the issuer's message. */
  detail: string;
  /** The issuer's refusal reason, for ERR_IOT_HTTPS_LOAD_REQUEST_NO_RESULT; null otherwise. */
  reason: RefusalReason | null;
}

/** Where the served certificate makes the box answer over HTTPS: its wildcard name `*.<label>.<zone>`. */
export interface HttpsName {
  label: string;
  zone: string;
  /** `192-168-1-42.<label>.<zone>`; null when the box's address cannot be put in a name. */
  host: string | null;
  port: number;
}

export interface BoxView {
  name: string;
  identifier: string;
  ip: string;
  httpUrl: string;
  /** null until there is a certificate with a wildcard name. */
  https: HttpsName | null;
  server: string | null;
  logLevel: LogLevel;
  certificate: CertificateFields & {
    status: CertificateStatus;
    error: ShownError | null;
  };
  /** A check runs now. */
  checking: boolean;
  /** When the last check ended, ISO 8601, or null. */
  lastCheck: string | null;
  /** When the next timed check is due, ISO 8601, or null (while one runs). */
  nextCheck: string | null;
  /** Both the database UUID and the subscription code are set (the code itself is never shown). */
  hasCredential: boolean;
  /** The registration with the database (database/registration.ts). */
  database: RegistrationView;
}

/** What the view and the API both say of the served certificate (null, and no names, when there is none). */
export interface CertificateFields {
  subject: string | null;
  names: string[];
  issuer: string | null;
  notBefore: string | null;
  notAfter: string | null;
  renewAfter: string | null;
}

/** GET /api/status, field for field (docs/box.md "HTTP API"). */
export interface CertificateView extends CertificateFields {
  status: CertificateStatus;
  /** Exactly as displayed: "ERR_IOT_HTTPS_LOAD_REQUEST_STATUS 404"; null when there is no error. */
  errorCode: string | null;
  detail: string | null;
  /** The issuer's refusal reason (REFUSALS), for ERR_IOT_HTTPS_LOAD_REQUEST_NO_RESULT; null otherwise. */
  reason: string | null;
}

export interface BoxStatus {
  name: string;
  identifier: string;
  ip: string;
  httpUrl: string;
  /** null until there is a certificate. */
  httpsUrl: string | null;
  server: string | null;
  logLevel: LogLevel;
  certificate: CertificateView;
  checking: boolean;
  lastCheck: string | null;
  nextCheck: string | null;
  hasCredential: boolean;
  database: DatabaseStatus;
}

/** GET /api/status's `database` (docs/box.md). */
export interface DatabaseStatus {
  /** The box registered with the database of the server it is connected to. */
  registered: boolean;
  /** When it last did, ISO 8601, or null. */
  registeredAt: string | null;
  /** Why the last registration failed or why the box cannot register (in English), or null. */
  error: string | null;
}

export interface StatusState {
  name: string;
  identifier: string;
  ip: string;
  server: string | null;
  hasCredential: boolean;
  logLevel: LogLevel;
  httpPort: number;
  httpsPort: number;
  certificate: CertificateInfo | null;
  error: BoxError | null;
  loading: boolean;
  checking: boolean;
  lastCheck: number | null;
  nextCheck: number | null;
  now: number;
  database: RegistrationView;
}

function urlHost(host: string): string {
  return isIPv6(host) ? `[${host}]` : host;
}

function iso(ms: number | null): string | null {
  return ms === null ? null : new Date(ms).toISOString();
}

/** The HTTPS name a certificate gives the box at this address, from its wildcard name; null without one. */
export function httpsNameFor(ip: string, names: readonly string[], port: number): HttpsName | null {
  const wildcard = names.find((name) => name.startsWith("*."));
  if (!wildcard) return null;
  const [label, ...zone] = wildcard.slice(2).split(".");
  if (!label || zone.length === 0) return null;
  let host: string | null;
  try {
    host = boxHostname(ip, label, zone.join("."));
  } catch {
    host = null;
  }
  return { label, zone: zone.join("."), host, port };
}

/** An address in one spelling, so `fd00::1` and `fd00:0:0:0:0:0:0:1` compare equal. */
function canonicalAddress(ip: string): string {
  return isIPv6(ip) ? new URL(`http://[${ip}]/`).hostname.slice(1, -1) : ip;
}

/**
 * Whether `host` is one of the box's own HTTPS names: exactly `<one of its addresses, encoded>.<label>.<zone>`
 * (the Host allowlist; request-guard.ts). Not any name under the wildcard: the issuer's zone may not be
 * ours to trust (docs/box.md "Which names the box answers to").
 */
export function isBoxHostName(host: string, https: HttpsName | null, addresses: readonly string[]): boolean {
  if (!https) return false;
  const suffix = `.${https.label}.${https.zone}`.toLowerCase();
  const lower = host.toLowerCase();
  if (!lower.endsWith(suffix)) return false;
  const first = lower.slice(0, -suffix.length);
  const ip = first.includes(".") ? null : decodeAddress(first);
  return ip !== null && addresses.some((address) => isIP(address) !== 0 && canonicalAddress(address) === canonicalAddress(ip));
}

/** `https://192-168-1-42.<label>.<zone>:8443`, or null when the box has no HTTPS name. */
export function httpsOrigin(https: HttpsName | null): string | null {
  if (!https?.host) return null;
  return `https://${https.host}${https.port === 443 ? "" : `:${https.port}`}`;
}

/** The box's HTTPS address: `https://192-168-1-42.<label>.<zone>:8443/`. */
export function httpsUrl(https: HttpsName | null): string | null {
  const origin = httpsOrigin(https);
  return origin === null ? null : `${origin}/`;
}

function shownError(error: BoxError | null): ShownError | null {
  if (!error) return null;
  return { code: error.code, httpStatus: error.status ?? null, detail: error.detail, reason: error.reason ?? null };
}

export function buildView(state: StatusState): BoxView {
  const cert = state.certificate;
  return {
    name: state.name,
    identifier: state.identifier,
    ip: state.ip,
    httpUrl: `http://${urlHost(state.ip)}${state.httpPort === 80 ? "" : `:${state.httpPort}`}/`,
    https: cert ? httpsNameFor(state.ip, cert.names, state.httpsPort) : null,
    server: state.server,
    logLevel: state.logLevel,
    certificate: {
      status: certificateStatus({ certificate: cert, error: state.error, loading: state.loading, now: state.now }),
      error: shownError(state.error),
      subject: cert?.subject ?? null,
      names: cert ? [...cert.names] : [],
      issuer: cert?.issuer ?? null,
      notBefore: iso(cert?.notBefore ?? null),
      notAfter: iso(cert?.notAfter ?? null),
      renewAfter: iso(cert?.renewAfter ?? null),
    },
    checking: state.checking,
    lastCheck: iso(state.lastCheck),
    nextCheck: iso(state.nextCheck),
    hasCredential: state.hasCredential,
    database: state.database,
  };
}

/** The GET /api/status JSON: where the error code becomes its display string. */
export function toApiStatus(view: BoxView): BoxStatus {
  const { error, ...certificate } = view.certificate;
  return {
    name: view.name,
    identifier: view.identifier,
    ip: view.ip,
    httpUrl: view.httpUrl,
    httpsUrl: httpsUrl(view.https),
    server: view.server,
    logLevel: view.logLevel,
    certificate: {
      status: certificate.status,
      errorCode: error ? formatErrorCode(error.code, error.httpStatus ?? undefined) : null,
      detail: error ? error.detail : null,
      reason: error?.reason ?? null,
      subject: certificate.subject,
      names: certificate.names,
      issuer: certificate.issuer,
      notBefore: certificate.notBefore,
      notAfter: certificate.notAfter,
      renewAfter: certificate.renewAfter,
    },
    checking: view.checking,
    lastCheck: view.lastCheck,
    nextCheck: view.nextCheck,
    hasCredential: view.hasCredential,
    database: {
      registered: view.database.registered,
      registeredAt: view.database.registeredAt,
      error: view.database.problem ? describeProblem(view.database.problem) : null,
    },
  };
}
