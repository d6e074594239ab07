/**
 * https.pem: the TLS key and its certificate chain in ONE file, written atomically, so that no crash can
 * leave a key and a certificate that do not match. Layout (RFC 7468 allows text outside the blocks):
 *
 *   renew-after: 2025-01-31T12:00:00.000Z     <- the issuer's renewal point; not in the certificate itself
 *   -----BEGIN PRIVATE KEY-----               <- PKCS#8
 *   -----BEGIN CERTIFICATE-----               <- leaf, then intermediates
 *
 * Reading uses node's native X509Certificate (fast, no WebCrypto); @peculiar/x509 is only used for the CSR.
 */
import { readFile } from "node:fs/promises";
import { X509Certificate } from "node:crypto";
import { writeFileAtomic } from "@boxcert/shared";
import { tlsKeyFromPem } from "./tls-key.ts";
import type { TlsKey } from "./tls-key.ts";

export interface CertificateInfo {
  /** The subject CN, or the first name when there is no CN. */
  subject: string;
  /** The issuer's CN, or its whole name when there is no CN. */
  issuer: string;
  /** DNS subject alternative names, in certificate order. */
  names: string[];
  serial: string;
  notBefore: number;
  notAfter: number;
  renewAfter: number;
}

export interface StoredCertificate {
  key: TlsKey;
  /** PEM chain, leaf first, normalised (blocks only). */
  chainPem: string;
  info: CertificateInfo;
}

export type CertificateFile =
  | { kind: "absent" }
  | { kind: "unreadable"; error: string }
  | { kind: "present"; certificate: StoredCertificate };

const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n[\s\S]*?-----END \1-----/g;
const RENEW_AFTER = /^renew-after:\s*(\S+)\s*$/m;

function pemBlocks(text: string): { type: string; pem: string }[] {
  return [...text.matchAll(PEM_BLOCK)].map((m) => ({ type: m[1] as string, pem: `${m[0]}\n` }));
}

function commonName(distinguishedName: string): string | null {
  const match = /^CN=(.*)$/m.exec(distinguishedName);
  return match ? (match[1] as string) : null;
}

export function dnsNames(cert: X509Certificate): string[] {
  const san = cert.subjectAltName;
  if (!san) return [];
  return san
    .split(", ")
    .filter((entry) => entry.startsWith("DNS:"))
    .map((entry) => entry.slice(4).replace(/^"(.*)"$/, "$1"));
}

/** When a stored file has no renew-after line: two thirds into the lifetime, like most ACME clients. */
export function defaultRenewAfter(notBefore: number, notAfter: number): number {
  return notBefore + Math.round(((notAfter - notBefore) * 2) / 3);
}

export function describeLeaf(leaf: X509Certificate, renewAfter?: number): CertificateInfo {
  const names = dnsNames(leaf);
  const notBefore = Date.parse(leaf.validFrom);
  const notAfter = Date.parse(leaf.validTo);
  return {
    subject: commonName(leaf.subject) ?? names[0] ?? leaf.subject.replaceAll("\n", ", "),
    issuer: commonName(leaf.issuer) ?? leaf.issuer.replaceAll("\n", ", "),
    names,
    serial: leaf.serialNumber.toLowerCase().replace(/^(00)+(?=.)/, ""),
    notBefore,
    notAfter,
    renewAfter: renewAfter ?? defaultRenewAfter(notBefore, notAfter),
  };
}

/** Parses a PEM chain, leaf first. Throws with a reason when it is not one. */
export function parseChain(chainPem: string): { certificates: X509Certificate[]; pem: string } {
  const blocks = pemBlocks(chainPem);
  if (blocks.length === 0) throw new Error("no certificate in the chain");
  const bad = blocks.find((b) => b.type !== "CERTIFICATE");
  if (bad) throw new Error(`unexpected "${bad.type}" block in the chain`);
  const certificates = blocks.map((b, i) => {
    try {
      return new X509Certificate(b.pem);
    } catch (err) {
      throw new Error(`certificate ${i + 1} of the chain cannot be parsed: ${(err as Error).message}`, { cause: err });
    }
  });
  return { certificates, pem: blocks.map((b) => b.pem).join("") };
}

/** The leaf certifies this key. */
export function leafMatchesKey(leaf: X509Certificate, key: TlsKey): boolean {
  return leaf.publicKey.export({ type: "spki", format: "der" }).equals(key.spki);
}

/** Parses the text of https.pem; throws with a reason when it is not a key with its certificate. */
export function parseCertificateFile(text: string): StoredCertificate {
  const blocks = pemBlocks(text);
  const keys = blocks.filter((b) => b.type.endsWith("PRIVATE KEY"));
  if (keys.length !== 1) throw new Error(`expected one private key, found ${keys.length}`);
  const keyBlock = keys[0] as { type: string; pem: string };
  if (keyBlock.type !== "PRIVATE KEY") throw new Error(`the key is "${keyBlock.type}", expected a PKCS#8 "PRIVATE KEY"`);
  let key: TlsKey;
  try {
    key = tlsKeyFromPem(keyBlock.pem);
  } catch (err) {
    throw new Error(`the private key cannot be parsed: ${(err as Error).message}`, { cause: err });
  }
  const { certificates, pem } = parseChain(blocks.filter((b) => b !== keyBlock).map((b) => b.pem).join(""));
  const leaf = certificates[0] as X509Certificate;
  if (!leafMatchesKey(leaf, key)) throw new Error("the private key does not match the certificate");
  const renewLine = RENEW_AFTER.exec(text.slice(0, text.indexOf("-----BEGIN")));
  let renewAfter: number | undefined;
  if (renewLine) {
    renewAfter = Date.parse(renewLine[1] as string);
    if (Number.isNaN(renewAfter)) throw new Error(`the renew-after line is not a date: ${renewLine[1]}`);
  }
  return { key, chainPem: pem, info: describeLeaf(leaf, renewAfter) };
}

export async function readCertificateFile(path: string): Promise<CertificateFile> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return { kind: "absent" };
    return { kind: "unreadable", error: `${path}: ${(err as Error).message}` };
  }
  try {
    return { kind: "present", certificate: parseCertificateFile(text) };
  } catch (err) {
    return { kind: "unreadable", error: `${path}: ${(err as Error).message}` };
  }
}

export function formatCertificateFile(key: TlsKey, chainPem: string, renewAfter: number): string {
  return `renew-after: ${new Date(renewAfter).toISOString()}\n${key.pem.trimEnd()}\n${chainPem}`;
}

export async function writeCertificateFile(path: string, key: TlsKey, chainPem: string, renewAfter: number): Promise<StoredCertificate> {
  const text = formatCertificateFile(key, chainPem, renewAfter);
  const stored = parseCertificateFile(text);
  await writeFileAtomic(path, text, 0o600);
  return stored;
}
