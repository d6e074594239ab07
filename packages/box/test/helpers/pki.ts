/** Throwaway certificates for the tests, made when the tests run (never committed). */
import "reflect-metadata";
import { webcrypto, createPublicKey, randomBytes } from "node:crypto";
import type { KeyObject } from "node:crypto";
import * as x509 from "@peculiar/x509";

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

const ALG = { name: "ECDSA", namedCurve: "P-256" } as const;
const SIGN = { name: "ECDSA", hash: "SHA-256" } as const;
type Keys = Awaited<ReturnType<typeof webcrypto.subtle.generateKey>> & { privateKey: webcrypto.CryptoKey; publicKey: webcrypto.CryptoKey };

export interface TestCa {
  name: string;
  keys: Keys;
  cert: x509.X509Certificate;
  pem: string;
}

async function newKeys(): Promise<Keys> {
  return (await webcrypto.subtle.generateKey(ALG, true, ["sign", "verify"])) as Keys;
}

export interface CaOptions {
  /** Validity; by default from an hour ago for ten years. */
  notBefore?: Date;
  notAfter?: Date;
  /** false: basicConstraints cA=false (a certificate that must not issue others). */
  ca?: boolean;
}

export async function makeCa(name: string, issuer?: TestCa, options: CaOptions = {}): Promise<TestCa> {
  const keys = await newKeys();
  const now = Date.now();
  const notBefore = options.notBefore ?? new Date(now - 3600_000);
  const notAfter = options.notAfter ?? new Date(now + 10 * 365 * 86400_000);
  const extensions = [
    new x509.BasicConstraintsExtension(options.ca ?? true, undefined, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
    await x509.SubjectKeyIdentifierExtension.create(keys.publicKey as never),
  ];
  const cert = issuer
    ? await x509.X509CertificateGenerator.create({
        serialNumber: randomBytes(8).toString("hex"),
        subject: `CN=${name}`,
        issuer: issuer.cert.subject,
        notBefore,
        notAfter,
        signingKey: issuer.keys.privateKey as never,
        publicKey: keys.publicKey as never,
        signingAlgorithm: SIGN,
        extensions,
      })
    : await x509.X509CertificateGenerator.createSelfSigned({
        serialNumber: randomBytes(8).toString("hex"),
        name: `CN=${name}`,
        notBefore,
        notAfter,
        keys: keys as never,
        signingAlgorithm: SIGN,
        extensions,
      });
  return { name, keys, cert, pem: `${cert.toString("pem")}\n` };
}

export interface LeafOptions {
  /** The certified key: a node KeyObject (public or private) or SPKI DER. */
  publicKey: KeyObject | Buffer;
  names: string[];
  /** IP address SANs (for a test issuer reached as https://127.0.0.1). */
  ips?: string[];
  notBefore?: Date;
  notAfter?: Date;
  /** Subject CN; the first name by default. */
  cn?: string | null;
}

export async function issueLeaf(ca: TestCa, options: LeafOptions): Promise<string> {
  const spki = Buffer.isBuffer(options.publicKey)
    ? options.publicKey
    : (options.publicKey.type === "public" ? options.publicKey : createPublicKey(options.publicKey)).export({ type: "spki", format: "der" });
  const publicKey = await webcrypto.subtle.importKey("spki", spki, ALG, true, ["verify"]);
  const now = Date.now();
  const cn = options.cn === undefined ? options.names[0] : options.cn;
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: `01${randomBytes(8).toString("hex")}`,
    subject: cn ? `CN=${cn}` : "",
    issuer: ca.cert.subject,
    notBefore: options.notBefore ?? new Date(now - 60_000),
    notAfter: options.notAfter ?? new Date(now + 90 * 86400_000),
    signingKey: ca.keys.privateKey as never,
    publicKey: publicKey as never,
    signingAlgorithm: SIGN,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension([
        ...options.names.map((value) => ({ type: "dns" as const, value })),
        ...(options.ips ?? []).map((value) => ({ type: "ip" as const, value })),
      ]),
    ],
  });
  return `${cert.toString("pem")}\n`;
}

/** The public key and names of a PEM CSR (verifying its signature). */
export async function readCsr(pem: string): Promise<{ spki: Buffer; names: string[]; subject: string }> {
  const csr = new x509.Pkcs10CertificateRequest(pem);
  if (!(await csr.verify())) throw new Error("CSR signature does not verify");
  const ext = csr.getExtension("2.5.29.17");
  const san = ext ? new x509.SubjectAlternativeNameExtension(ext.rawData) : null;
  const names = san ? san.names.items.filter((n) => n.type === "dns").map((n) => n.value) : [];
  return { spki: Buffer.from(csr.publicKey.rawData), names, subject: csr.subject };
}
