/**
 * Whether a chain the issuer hands out leads to a root the box trusts: the system's roots (node's
 * tls.rootCertificates) plus the --issuer-ca file, the same anchors that verify the issuer's TLS. Without
 * this, a spoofed issuer could make the box save and serve any chain for its key.
 *
 *   leaf -> certificate 2 -> ... -> a trusted root (which signed the last one used, or is that one)
 *
 * Each certificate must be signed by the next; the walk ends at the first one a trusted root issued (or
 * that is a trusted root), so a chain that goes on with a cross-signed copy of its root still verifies,
 * as it does in a browser. Every issuer on the way must be a CA and valid now, the root included.
 *
 * Node's X509Certificate (checkIssued, verify) does it synchronously with OpenSSL; @peculiar/x509's chain
 * builder would go through WebCrypto for the same answer.
 */
import { X509Certificate } from "node:crypto";
import tls from "node:tls";

export interface TrustAnchors {
  /** The trusted roots by subject (the issuer name a certificate carries), for the look-up at each step. */
  bySubject: Map<string, X509Certificate[]>;
  /** SHA-256 fingerprints of the trusted roots: a chain may carry its root. */
  fingerprints: Set<string>;
}

export interface ChainTrust {
  /** The anchors, indexed at the first chain to verify (the system's roots cost about 40 ms to parse). */
  anchors(): TrustAnchors;
}

const CERTIFICATE_BLOCK = /-----BEGIN CERTIFICATE-----\r?\n[\s\S]*?-----END CERTIFICATE-----/g;

/** The certificates of a PEM text, in order; throws naming the one that cannot be parsed. */
export function pemCertificates(pem: string, what: string): X509Certificate[] {
  return [...pem.matchAll(CERTIFICATE_BLOCK)].map((match, i) => {
    try {
      return new X509Certificate(match[0]);
    } catch (err) {
      throw new Error(`${what}: certificate ${i + 1} cannot be parsed: ${(err as Error).message}`, { cause: err });
    }
  });
}

let parsedSystemRoots: X509Certificate[] | null = null;

/** Node's bundled roots, parsed once per process (about 40 ms for the ~140 of them). */
function systemRoots(): X509Certificate[] {
  parsedSystemRoots ??= tls.rootCertificates.flatMap((pem) => pemCertificates(pem, "the system's root certificates"));
  return parsedSystemRoots;
}

function indexRoots(roots: readonly X509Certificate[]): TrustAnchors {
  const bySubject = new Map<string, X509Certificate[]>();
  for (const root of roots) bySubject.set(root.subject, [...(bySubject.get(root.subject) ?? []), root]);
  return { bySubject, fingerprints: new Set(roots.map((root) => root.fingerprint256)) };
}

/**
 * The system's roots plus the extra ones (the --issuer-ca file's text, which may hold several). The extra
 * file is parsed at once, so a broken one stops the box at start; the system's roots when the first chain
 * is verified: a box that starts on the certificate it has (a refresh confirms it: load.ts) never needs them.
 */
export function chainTrust(extraPem?: string): ChainTrust {
  const extra = extraPem === undefined ? [] : pemCertificates(extraPem, "the extra CA file (--issuer-ca)");
  let anchors: TrustAnchors | null = null;
  return { anchors: () => (anchors ??= indexRoots([...systemRoots(), ...extra])) };
}

/** A distinguished name on one line, as a detail shows it. */
function oneLine(name: string): string {
  return name.replaceAll("\n", ", ");
}

function validAt(cert: X509Certificate, now: number): boolean {
  return Date.parse(cert.validFrom) <= now && now < Date.parse(cert.validTo);
}

function signedBy(cert: X509Certificate, issuer: X509Certificate): boolean {
  return cert.checkIssued(issuer) && cert.verify(issuer.publicKey);
}

/** Why this certificate cannot issue the one before it in the chain (position `n`, 1-based), or null. */
function issuerProblem(cert: X509Certificate, n: number, now: number): string | null {
  if (!cert.ca) return `certificate ${n} of the chain (${oneLine(cert.subject)}) is not a CA certificate`;
  if (!validAt(cert, now)) return `certificate ${n} of the chain (${oneLine(cert.subject)}) is not valid now (${cert.validFrom} to ${cert.validTo})`;
  return null;
}

/** A trusted root, valid now, that issued this certificate, if any. */
function trustedIssuer(cert: X509Certificate, trust: ChainTrust, now: number): X509Certificate | null {
  const candidates = trust.anchors().bySubject.get(cert.issuer) ?? [];
  return candidates.find((root) => validAt(root, now) && signedBy(cert, root)) ?? null;
}

/**
 * null when the chain (leaf first) verifies up to a trusted root, else why not, in words the status detail
 * can show. The leaf's key, names and expiry are checked by the caller (load.ts).
 */
export function verifyChain(chain: readonly X509Certificate[], trust: ChainTrust, now: number): string | null {
  for (let i = 0; i < chain.length; i++) {
    const cert = chain[i] as X509Certificate;
    if (i > 0) {
      const problem = issuerProblem(cert, i + 1, now);
      if (problem) return `the chain does not verify: ${problem}`;
      if (trust.anchors().fingerprints.has(cert.fingerprint256)) return null;
    }
    if (trustedIssuer(cert, trust, now)) return null;
    const next = chain[i + 1];
    if (!next) {
      return `the chain does not verify: its last certificate (issued by ${oneLine(cert.issuer)}) was not issued by a trusted root valid now (the system's or --issuer-ca)`;
    }
    if (!signedBy(cert, next)) return `the chain does not verify: certificate ${i + 2} did not sign certificate ${i + 1}`;
  }
  return "the chain is empty";
}
