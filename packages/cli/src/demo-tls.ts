/**
 * The demo database's HTTPS: a small CA of its own and one leaf for 127.0.0.1 and localhost, made once and
 * kept in the demo's data folder (database-tls/). The box trusts the root with its databaseCa option and the
 * user with `curl --cacert`. The CA's key is never written: nothing else can ever be signed under a root a
 * user was told to trust, and when the leaf nears its end both are simply made again.
 */
import "reflect-metadata";
import { X509Certificate, generateKeyPairSync, randomBytes, webcrypto } from "node:crypto";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import * as x509 from "@peculiar/x509";
import { writeFileAtomic } from "@boxcert/shared";

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

const ALG = { name: "ECDSA", namedCurve: "P-256" } as const;
const SIGN = { name: "ECDSA", hash: "SHA-256" } as const;
type Key = webcrypto.CryptoKey;
type KeyPair = { privateKey: Key; publicKey: Key };
const DAY_MS = 86_400_000;
/** 397 days: the longest validity browsers accept for a server certificate. */
const LEAF_DAYS = 397;
/** Remade this long before the leaf expires, so a running demo never serves an expired one. */
const RENEW_BEFORE_MS = 30 * DAY_MS;

export interface DemoTls {
  /** The root's file, printed for `curl --cacert`. */
  rootFile: string;
  rootPem: string;
  cert: string;
  key: string;
}

function tlsFiles(dataDir: string): { root: string; cert: string; key: string } {
  const dir = join(dataDir, "database-tls");
  return { root: join(dir, "root.pem"), cert: join(dir, "cert.pem"), key: join(dir, "key.pem") };
}

async function makeRoot(keys: KeyPair, notAfter: Date): Promise<x509.X509Certificate> {
  return x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomBytes(8).toString("hex"),
    name: "CN=boxcert demo database CA",
    notBefore: new Date(Date.now() - 3600_000),
    notAfter,
    keys,
    signingAlgorithm: SIGN,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
}

async function makeLeaf(root: x509.X509Certificate, rootKey: Key, leafPublicKey: Key, notAfter: Date): Promise<x509.X509Certificate> {
  return x509.X509CertificateGenerator.create({
    serialNumber: `01${randomBytes(8).toString("hex")}`,
    subject: "CN=localhost",
    issuer: root.subject,
    notBefore: new Date(Date.now() - 60_000),
    notAfter,
    signingKey: rootKey,
    publicKey: leafPublicKey,
    signingAlgorithm: SIGN,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension([
        { type: "ip", value: "127.0.0.1" },
        { type: "dns", value: "localhost" },
      ]),
    ],
  });
}

/** A new root and leaf, written leaf key first and root last: a root on disk means a complete set. */
async function createDemoTls(files: ReturnType<typeof tlsFiles>): Promise<void> {
  const rootKeys = (await webcrypto.subtle.generateKey(ALG, false, ["sign", "verify"])) as KeyPair;
  const leafKey = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const leafPublic = await webcrypto.subtle.importKey("spki", leafKey.publicKey.export({ type: "spki", format: "der" }), ALG, true, ["verify"]);
  const notAfter = new Date(Date.now() + LEAF_DAYS * DAY_MS);
  const root = await makeRoot(rootKeys, notAfter);
  const leaf = await makeLeaf(root, rootKeys.privateKey, leafPublic, notAfter);
  await writeFileAtomic(files.key, leafKey.privateKey.export({ type: "pkcs8", format: "pem" }).toString(), 0o600);
  await writeFileAtomic(files.cert, `${leaf.toString("pem")}\n`, 0o644);
  await writeFileAtomic(files.root, `${root.toString("pem")}\n`, 0o644);
}

/** The stored set, or null when a file is missing or the leaf is near its end. */
async function readDemoTls(files: ReturnType<typeof tlsFiles>): Promise<DemoTls | null> {
  try {
    const [rootPem, cert, key] = await Promise.all([readFile(files.root, "utf8"), readFile(files.cert, "utf8"), readFile(files.key, "utf8")]);
    if (Date.parse(new X509Certificate(cert).validTo) - Date.now() < RENEW_BEFORE_MS) return null;
    return { rootFile: files.root, rootPem, cert, key };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw err;
  }
}

/** The demo database's root, certificate and key: the stored ones, else new ones. */
export async function loadOrCreateDemoTls(dataDir: string): Promise<DemoTls> {
  const files = tlsFiles(dataDir);
  const stored = await readDemoTls(files);
  if (stored) return stored;
  await createDemoTls(files);
  const created = await readDemoTls(files);
  if (!created) throw new Error(`the demo database's certificate in ${files.cert} could not be read back`);
  return created;
}
