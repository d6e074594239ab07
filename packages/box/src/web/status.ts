/**
 * GET /api/status (DESIGN.md "Box"): what the box is, where it answers, and its certificate. Built by a
 * pure function from the agent's state so the homepage and the API say the same thing.
 */
import { isIPv6 } from "node:net";
import { boxHostname } from "@boxcert/shared";
import type { BoxError, CertificateStatus } from "../certificate/check.ts";
import { certificateStatus, displayCode } from "../certificate/check.ts";
import type { CertificateInfo } from "../certificate/certificate-file.ts";
import type { LogLevel } from "../config.ts";

export interface CertificateView {
  status: CertificateStatus;
  /** Exactly as displayed: "ERR_IOT_HTTPS_LOAD_REQUEST_STATUS 404"; null when there is no error. */
  errorCode: string | null;
  detail: string | null;
  /** The issuer's refusal reason (REFUSALS), for ERR_IOT_HTTPS_LOAD_REQUEST_NO_RESULT; null otherwise. */
  reason: string | null;
  subject: string | null;
  names: string[];
  issuer: string | null;
  notBefore: string | null;
  notAfter: string | null;
  renewAfter: string | null;
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
  /** A check runs now. */
  checking: boolean;
  /** When the last check ended, ISO 8601, or null. */
  lastCheck: string | null;
  /** When the next timed check is due, ISO 8601, or null (while one runs). */
  nextCheck: string | null;
  /** Both the database UUID and the subscription code are set (the code itself is never shown). */
  hasCredential: boolean;
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
}

function urlHost(host: string): string {
  return isIPv6(host) ? `[${host}]` : host;
}

function iso(ms: number | null): string | null {
  return ms === null ? null : new Date(ms).toISOString();
}

/** The box's HTTPS address for this certificate: `https://192-168-1-42.<label>.<zone>:8443/`. */
export function httpsUrlFor(ip: string, names: readonly string[], port: number): string | null {
  const wildcard = names.find((name) => name.startsWith("*."));
  if (!wildcard) return null;
  const [label, ...zone] = wildcard.slice(2).split(".");
  if (!label || zone.length === 0) return null;
  let host: string;
  try {
    host = boxHostname(ip, label, zone.join("."));
  } catch {
    return null;
  }
  return `https://${host}${port === 443 ? "" : `:${port}`}/`;
}

export function buildStatus(state: StatusState): BoxStatus {
  const cert = state.certificate;
  return {
    name: state.name,
    identifier: state.identifier,
    ip: state.ip,
    httpUrl: `http://${urlHost(state.ip)}${state.httpPort === 80 ? "" : `:${state.httpPort}`}/`,
    httpsUrl: cert ? httpsUrlFor(state.ip, cert.names, state.httpsPort) : null,
    server: state.server,
    logLevel: state.logLevel,
    certificate: {
      status: certificateStatus({ certificate: cert, error: state.error, loading: state.loading, now: state.now }),
      errorCode: state.error ? displayCode(state.error) : null,
      detail: state.error ? state.error.detail : null,
      reason: state.error?.reason ?? null,
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
  };
}
