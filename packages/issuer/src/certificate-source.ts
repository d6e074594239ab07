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
}

export interface IssuedCertificate {
  /** PEM chain, leaf first, then intermediates; never the root. */
  chainPem: string;
  /** Serial number, lowercase hex without leading zero bytes. */
  serial: string;
  notBefore: Date;
  notAfter: Date;
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
  issue(request: IssueRequest): Promise<IssuedCertificate>;
}
