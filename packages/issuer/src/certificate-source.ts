/**
 * What can issue a certificate for a box: the embedded CA or an ACME CA. The issuer does not know which one
 * served a box, and neither does the box. A source is a name and issue(); what only some sources can do is
 * a small capability interface of its own (ExclusivePerBox, ReplacesPrevious, RenewalInfoSource), detected
 * with its type guard, so the embedded CA carries no flags it does not need.
 */
import type { VerifiedCsr } from "./csr.ts";

export interface IssueRequest {
  label: string;
  zone: string;
  /** `*.<label>.<zone>` and `<label>.<zone>`, in that order; already checked against the CSR. */
  names: string[];
  /** The box's CSR, signature and key policy already verified. The leaf certifies its public key. */
  csr: VerifiedCsr;
  /** How long the certificate lives (the embedded CA honours it; a public CA decides for itself). */
  lifetimeMs: number;
  now: Date;
  /** The box's latest certificate, for sources that ask (an ACME renewal names the one it replaces, RFC 9773). */
  previous?: { chainPem: string; source: string };
}

export interface RenewalWindow {
  start: Date;
  end: Date;
}

/** A point in the window picked by `random` in [0, 1), never before `now` (a window in the past means now). */
export function pickInWindow(window: RenewalWindow, random: number, now: Date): Date {
  const start = window.start.getTime();
  return new Date(Math.max(now.getTime(), start + (window.end.getTime() - start) * random));
}

export interface IssuedCertificate {
  /** PEM chain, leaf first, then intermediates; never the root. */
  chainPem: string;
  /** Serial number, lowercase hex without leading zero bytes. */
  serial: string;
  notBefore: Date;
  notAfter: Date;
  /** Which source issued it, stored with it (e.g. "acme:acme-v02.api.letsencrypt.org"); default: the source's name. */
  source?: string;
  /** When the CA wants it renewed (ACME: its renewal information, or two-thirds of the lifetime); renewAfter is picked inside. */
  renewalWindow?: RenewalWindow;
}

export interface CertificateSource {
  /** Short name stored with each certificate, e.g. "embedded". */
  readonly name: string;
  /** Throws SourceUnavailableError (try again later) or SourceRefusedError (the CA said no). */
  issue(request: IssueRequest): Promise<IssuedCertificate>;
}

/**
 * A source whose requests for one box must not overlap, across issuer processes too: the issuer holds a
 * store lock around reading the box's certificates, issuing and storing. An ACME order is slow and counts
 * against the CA's limits, so a second request waits and gets the first one's certificate.
 */
export interface ExclusivePerBox {
  readonly exclusivePerBox: true;
}

/** The store lock a box's requests to an ExclusivePerBox source run under (one per label). */
export function boxLockName(label: string): string {
  return `box:${label.toLowerCase()}`;
}

export function isExclusivePerBox(source: CertificateSource): source is CertificateSource & ExclusivePerBox {
  return (source as Partial<ExclusivePerBox>).exclusivePerBox === true;
}

/** A source that names the certificate a new one replaces (an ACME renewal, RFC 9773): issue() gets IssueRequest.previous. */
export interface ReplacesPrevious {
  readonly replacesPrevious: true;
}

export function replacesPrevious(source: CertificateSource): source is CertificateSource & ReplacesPrevious {
  return (source as Partial<ReplacesPrevious>).replacesPrevious === true;
}

/** A source whose CA publishes when it wants its certificates renewed, and may move that window (RFC 9773). */
export interface RenewalInfoSource {
  /**
   * The CA's current renewal window for a certificate this source issued, when it is time to ask again;
   * null when not due, not known or not offered. Boxes refresh every few hours: a CA that moves the window
   * earlier (a mass revocation) reaches them then.
   */
  updatedRenewalWindow(certificate: { chainPem: string; source: string }): Promise<RenewalWindow | null>;
}

export function hasRenewalInfo(source: CertificateSource): source is CertificateSource & RenewalInfoSource {
  return typeof (source as Partial<RenewalInfoSource>).updatedRenewalWindow === "function";
}

/** The certificate source cannot answer now (CA unreachable, slow, 5xx, rate limited): the box retries later. */
export class SourceUnavailableError extends Error {
  override name = "SourceUnavailableError";
  constructor(message: string, readonly retryAfterSeconds: number, options?: ErrorOptions) {
    super(message, options);
  }
}

/** The CA refused the order for a reason of its own (rejectedIdentifier, caa, unauthorized, ...). */
export class SourceRefusedError extends Error {
  override name = "SourceRefusedError";
  constructor(message: string, readonly problemType: string, options?: ErrorOptions) {
    super(message, options);
  }
}
