/**
 * ACME Renewal Information (RFC 9773): when should a certificate be renewed, according to its CA. No
 * acme-client release speaks it, so the little it takes is here: the certificate ID, one unauthenticated GET
 * and the answer's validation.
 */
import * as x509 from "@peculiar/x509";
import type { RenewalWindow } from "./certificate-source.ts";

export interface RenewalInfo {
  window: RenewalWindow;
  /** When to ask again (the answer's Retry-After), milliseconds from now. */
  retryAfterMs: number;
  explanationUrl?: string;
}

/** How often a certificate's renewal information is asked again at most / at least (RFC 9773 §4.3). */
export const RENEWAL_INFO_RETRY_MIN_MS = 1000;
export const RENEWAL_INFO_RETRY_MAX_MS = 24 * 3600_000;
/** Without a Retry-After: the RFC suggests a few hours; boxes refresh every 6 h. */
export const RENEWAL_INFO_RETRY_DEFAULT_MS = 6 * 3600_000;

function base64url(bytes: ArrayBuffer | Uint8Array): string {
  return Buffer.from(bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes)).toString("base64url");
}

/**
 * `base64url(AKI keyIdentifier) "." base64url(serial)`, the serial being the DER INTEGER's content octets
 * (with its leading zero byte when there is one). Null for a certificate without an AKI key identifier.
 */
export function certificateId(leafPem: string): string | null {
  const cert = new x509.X509Certificate(leafPem);
  const aki = cert.getExtension(x509.AuthorityKeyIdentifierExtension);
  if (!aki?.keyId) return null;
  return `${base64url(Buffer.from(aki.keyId, "hex"))}.${base64url(serialContentOctets(cert.serialNumber))}`;
}

/**
 * A serial's DER INTEGER content octets from its hex value (@peculiar/x509 and node both drop the leading
 * zero byte): serials are positive, so a first byte with its high bit set gets the zero back.
 */
export function serialContentOctets(serialHex: string): Buffer {
  let hex = serialHex.replace(/^(00)+(?=..)/, "");
  if (hex.length % 2 === 1) hex = `0${hex}`;
  const bytes = Buffer.from(hex, "hex");
  return (bytes[0] ?? 0) & 0x80 ? Buffer.concat([Buffer.from([0]), bytes]) : bytes;
}

/** The first certificate of a PEM chain. */
export function leafOf(chainPem: string): string {
  const match = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(chainPem);
  if (!match) throw new Error("the chain holds no certificate");
  return match[0];
}

/** Validates a renewalInfo answer: a suggestedWindow with start before end, both RFC 3339 dates. */
export function parseRenewalInfo(body: unknown, retryAfterMs: number | null): RenewalInfo {
  const window = (body as { suggestedWindow?: { start?: unknown; end?: unknown } } | null)?.suggestedWindow;
  const start = typeof window?.start === "string" ? new Date(window.start) : null;
  const end = typeof window?.end === "string" ? new Date(window.end) : null;
  if (!start || !end || Number.isNaN(start.getTime()) || Number.isNaN(end.getTime())) {
    throw new Error("the renewal information has no suggestedWindow with RFC 3339 start and end");
  }
  if (end.getTime() < start.getTime()) throw new Error("the renewal information's window ends before it starts");
  const explanation = (body as { explanationURL?: unknown }).explanationURL;
  return {
    window: { start, end },
    retryAfterMs: Math.min(RENEWAL_INFO_RETRY_MAX_MS, Math.max(RENEWAL_INFO_RETRY_MIN_MS, retryAfterMs ?? RENEWAL_INFO_RETRY_DEFAULT_MS)),
    ...(typeof explanation === "string" ? { explanationUrl: explanation } : {}),
  };
}

/** Without renewal information: renew by two-thirds of the lifetime, in the last twentieth before it. */
export function defaultAcmeWindow(notBefore: Date, notAfter: Date): RenewalWindow {
  const from = notBefore.getTime();
  const lifetime = notAfter.getTime() - from;
  return { start: new Date(from + lifetime * (2 / 3 - 1 / 20)), end: new Date(from + (lifetime * 2) / 3) };
}
