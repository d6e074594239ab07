/**
 * The embedded CA: a root and an intermediate (ECDSA P-256) made at the issuer's first start and kept in
 * `<keysDir>/embedded-ca/`, shared by every issuer instance of a fleet. Leaves are issued on the fast path
 * (leaf-builder.ts); only the two CA certificates go through @peculiar/x509, once.
 */
import { X509Certificate, createPrivateKey, createPublicKey, randomBytes, webcrypto, KeyObject } from "node:crypto";
import { mkdir, mkdtemp, readFile, readdir, rename, rm } from "node:fs/promises";
import { join } from "node:path";
import * as x509 from "@peculiar/x509";
import { fsyncDir, writeFileAtomic } from "@boxcert/shared";
import type { CertificateSource, IssueRequest, IssuedCertificate } from "./certificate-source.ts";
import { LeafBuilder, randomSerial } from "./leaf-builder.ts";

export const EMBEDDED_CA_FOLDER = "embedded-ca";
const FILES = {
  rootCertificate: "root.pem",
  rootKey: "root.key",
  intermediateCertificate: "intermediate.pem",
  intermediateKey: "intermediate.key",
} as const;
const ROOT_YEARS = 10;
const INTERMEDIATE_YEARS = 5;
/** Clocks of other instances may lag a little behind the one that made the CA. */
const CA_BACKDATE_MS = 60 * 60 * 1000;

export class EmbeddedCaError extends Error {
  override name = "EmbeddedCaError";
}

export interface EmbeddedCaOptions {
  now?: () => Date;
}

interface LoadedPair {
  certificate: X509Certificate;
  privateKey: KeyObject;
}

export class EmbeddedCa implements CertificateSource {
  readonly name = "embedded";
  private readonly leafBuilder: LeafBuilder;
  private readonly rootCertificatePem: string;
  private readonly intermediateCertificatePem: string;

  private constructor(root: LoadedPair, intermediate: LoadedPair, readonly folder: string) {
    this.rootCertificatePem = root.certificate.toString();
    this.intermediateCertificatePem = intermediate.certificate.toString();
    try {
      this.leafBuilder = new LeafBuilder({ certificateDer: intermediate.certificate.raw, privateKey: intermediate.privateKey });
    } catch (err) {
      throw new EmbeddedCaError(`the embedded CA in ${folder} cannot issue: ${(err as Error).message}`, { cause: err });
    }
  }

  /**
   * Loads the CA from `keysDir/embedded-ca/`, making it first when the folder is missing or empty. Never
   * re-creates a CA whose files are there but unreadable: that would orphan every box's chain.
   */
  static async loadOrCreate(keysDir: string, options: EmbeddedCaOptions = {}): Promise<EmbeddedCa> {
    const now = options.now ?? (() => new Date());
    const folder = join(keysDir, EMBEDDED_CA_FOLDER);
    if (!(await hasEntries(folder))) await create(keysDir, folder, now());
    return EmbeddedCa.load(folder);
  }

  private static async load(folder: string): Promise<EmbeddedCa> {
    const root = await loadPair(folder, FILES.rootCertificate, FILES.rootKey);
    const intermediate = await loadPair(folder, FILES.intermediateCertificate, FILES.intermediateKey);
    const intermediatePath = join(folder, FILES.intermediateCertificate);
    if (!intermediate.certificate.checkIssued(root.certificate) || !intermediate.certificate.verify(root.certificate.publicKey)) {
      throw new EmbeddedCaError(`${intermediatePath} is not issued by ${join(folder, FILES.rootCertificate)}`);
    }
    if (!intermediate.certificate.ca) throw new EmbeddedCaError(`${intermediatePath} is not a CA certificate`);
    return new EmbeddedCa(root, intermediate, folder);
  }

  rootPem(): string {
    return this.rootCertificatePem;
  }

  intermediatePem(): string {
    return this.intermediateCertificatePem;
  }

  async issue(request: IssueRequest): Promise<IssuedCertificate> {
    const leaf = await this.leafBuilder.buildOffLoop({
      publicKeySpkiDer: request.csr.publicKeySpkiDer,
      keyType: request.csr.keyType,
      names: request.names,
      now: request.now,
      lifetimeMs: request.lifetimeMs,
    });
    return {
      chainPem: derToPem(leaf.der) + this.intermediateCertificatePem,
      serial: leaf.serial,
      notBefore: leaf.notBefore,
      notAfter: leaf.notAfter,
    };
  }
}

function derToPem(der: Buffer): string {
  const lines = der.toString("base64").match(/.{1,64}/g) ?? [];
  return `-----BEGIN CERTIFICATE-----\n${lines.join("\n")}\n-----END CERTIFICATE-----\n`;
}

function errorCode(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code;
}

async function hasEntries(folder: string): Promise<boolean> {
  try {
    return (await readdir(folder)).length > 0;
  } catch (err) {
    if (errorCode(err) === "ENOENT") return false;
    throw new EmbeddedCaError(`cannot read the embedded CA folder ${folder}: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * Makes the CA in a private temporary sibling folder and renames it into place, so that the folder either
 * does not exist or holds all four files. When two issuers start at once, one rename wins; the other finds
 * the folder there (EEXIST/ENOTEMPTY), discards its own CA and loads the winner's.
 */
async function create(keysDir: string, folder: string, now: Date): Promise<void> {
  await mkdir(keysDir, { recursive: true, mode: 0o700 });
  const temporary = await mkdtemp(join(keysDir, `.${EMBEDDED_CA_FOLDER}-`)); // mode 0700
  try {
    const files = await generate(now);
    for (const [name, { data, mode }] of Object.entries(files)) await writeFileAtomic(join(temporary, name), data, mode);
    try {
      await rename(temporary, folder);
    } catch (err) {
      if (errorCode(err) === "EEXIST" || errorCode(err) === "ENOTEMPTY") return; // another instance won
      throw new EmbeddedCaError(`cannot move the new embedded CA into ${folder}: ${(err as Error).message}`, { cause: err });
    }
    await fsyncDir(keysDir);
  } finally {
    await rm(temporary, { recursive: true, force: true });
  }
}

async function generate(now: Date): Promise<Record<string, { data: string; mode: number }>> {
  const crypto = webcrypto;
  const keyAlgorithm = { name: "ECDSA", namedCurve: "P-256" };
  const signingAlgorithm = { name: "ECDSA", hash: "SHA-256" };
  const caKeyUsage = new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true);
  const notBefore = new Date(Math.floor((now.getTime() - CA_BACKDATE_MS) / 1000) * 1000);
  // Two installations must never share a CA name, or a browser could confuse their chains.
  const suffix = randomBytes(4).toString("hex");

  const rootKeys = (await crypto.subtle.generateKey(keyAlgorithm, true, ["sign", "verify"])) as webcrypto.CryptoKeyPair;
  const root = await x509.X509CertificateGenerator.createSelfSigned(
    {
      serialNumber: randomSerial().toString("hex"),
      name: `CN=boxcert embedded root CA ${suffix}`,
      notBefore,
      notAfter: yearsAfter(now, ROOT_YEARS),
      keys: rootKeys,
      signingAlgorithm,
      extensions: [
        new x509.BasicConstraintsExtension(true, undefined, true),
        caKeyUsage,
        await x509.SubjectKeyIdentifierExtension.create(rootKeys.publicKey, false, crypto),
      ],
    },
    crypto,
  );

  const intermediateKeys = (await crypto.subtle.generateKey(keyAlgorithm, true, ["sign", "verify"])) as webcrypto.CryptoKeyPair;
  const intermediate = await x509.X509CertificateGenerator.create(
    {
      serialNumber: randomSerial().toString("hex"),
      subject: `CN=boxcert embedded intermediate CA ${suffix}`,
      issuer: root.subjectName,
      notBefore,
      notAfter: yearsAfter(now, INTERMEDIATE_YEARS),
      publicKey: intermediateKeys.publicKey,
      signingKey: rootKeys.privateKey,
      signingAlgorithm,
      extensions: [
        new x509.BasicConstraintsExtension(true, 0, true),
        caKeyUsage,
        await x509.SubjectKeyIdentifierExtension.create(intermediateKeys.publicKey, false, crypto),
        await x509.AuthorityKeyIdentifierExtension.create(rootKeys.publicKey, false, crypto),
      ],
    },
    crypto,
  );

  const pkcs8Pem = (key: webcrypto.CryptoKey): string => KeyObject.from(key).export({ type: "pkcs8", format: "pem" }).toString();
  return {
    [FILES.rootCertificate]: { data: root.toString("pem") + "\n", mode: 0o644 },
    [FILES.rootKey]: { data: pkcs8Pem(rootKeys.privateKey), mode: 0o600 },
    [FILES.intermediateCertificate]: { data: intermediate.toString("pem") + "\n", mode: 0o644 },
    [FILES.intermediateKey]: { data: pkcs8Pem(intermediateKeys.privateKey), mode: 0o600 },
  };
}

function yearsAfter(date: Date, years: number): Date {
  const result = new Date(Math.floor(date.getTime() / 1000) * 1000);
  result.setUTCFullYear(result.getUTCFullYear() + years);
  return result;
}

async function loadPair(folder: string, certificateFile: string, keyFile: string): Promise<LoadedPair> {
  const certificatePath = join(folder, certificateFile);
  const keyPath = join(folder, keyFile);
  const certificatePem = await readCaFile(certificatePath);
  const keyPem = await readCaFile(keyPath);
  let certificate: X509Certificate;
  try {
    certificate = new X509Certificate(certificatePem);
  } catch (err) {
    throw new EmbeddedCaError(`${certificatePath} is not a readable PEM certificate: ${(err as Error).message}`, { cause: err });
  }
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(keyPem);
  } catch (err) {
    throw new EmbeddedCaError(`${keyPath} is not a readable PEM private key: ${(err as Error).message}`, { cause: err });
  }
  const spki = (key: KeyObject): Buffer => key.export({ type: "spki", format: "der" });
  if (!spki(createPublicKey(privateKey)).equals(spki(certificate.publicKey))) {
    throw new EmbeddedCaError(`${keyPath} does not match ${certificatePath}: the key is not the certificate's`);
  }
  return { certificate, privateKey };
}

async function readCaFile(path: string): Promise<string> {
  try {
    return await readFile(path, "utf8");
  } catch (err) {
    const hint = errorCode(err) === "ENOENT" ? " (the embedded CA folder is incomplete; restore it from a backup)" : "";
    throw new EmbeddedCaError(`cannot read ${path}: ${(err as Error).message}${hint}`, { cause: err });
  }
}
