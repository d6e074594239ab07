/**
 * TLS policy for every server boxcert runs (issuer, box): TLS 1.2 and 1.3 only, forward-secret key
 * exchange (ECDHE) and AEAD ciphers only. TLS 1.3 suites are all AEAD with (EC)DHE.
 */
import type { SecureContextOptions, TlsOptions } from "node:tls";

export const TLS12_CIPHERS = [
  "ECDHE-ECDSA-AES128-GCM-SHA256",
  "ECDHE-RSA-AES128-GCM-SHA256",
  "ECDHE-ECDSA-AES256-GCM-SHA384",
  "ECDHE-RSA-AES256-GCM-SHA384",
  "ECDHE-ECDSA-CHACHA20-POLY1305",
  "ECDHE-RSA-CHACHA20-POLY1305",
].join(":");

export const TLS13_CIPHERSUITES = "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256";

export function tlsServerOptions(cert: string | Buffer, key: string | Buffer): TlsOptions & SecureContextOptions {
  return {
    cert,
    key,
    minVersion: "TLSv1.2",
    maxVersion: "TLSv1.3",
    ciphers: `${TLS13_CIPHERSUITES}:${TLS12_CIPHERS}`,
    honorCipherOrder: true,
    ecdhCurve: "X25519:P-256:P-384",
  };
}
