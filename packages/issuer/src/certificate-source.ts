/**
 * What can issue a certificate for a box: the embedded CA now, ACME later. The issuer does not know which
 * one served a box, and neither does the box (STYLE.md: interfaces named for what they can do).
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
  /**
   * Whether one box's requests must be serialized across issuer processes (a store lock around reading the
   * box's certificates, issuing and storing): an ACME order is slow and counts against the CA's limits,
   * so a second request waits and gets the first one's certificate. The embedded CA does not need it.
   */
  readonly serializePerBox?: boolean;
  /** Whether issue() wants IssueRequest.previous filled. */
  readonly wantsPreviousCertificate?: boolean;
  issue(request: IssueRequest): Promise<IssuedCertificate>;
  /**
   * The CA's current renewal window for a certificate this source issued, when it is time to ask again
   * (RFC 9773 polling); null when not due, not known or not offered. Boxes refresh every few hours: a CA
   * that moves the window earlier (a mass revocation) reaches them then.
   */
  updatedRenewalWindow?(certificate: { chainPem: string; source: string }): Promise<RenewalWindow | null>;
}
