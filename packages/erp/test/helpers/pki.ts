/** A throwaway CA and a server certificate for 127.0.0.1 and localhost, made when the tests run (never committed). */
import "reflect-metadata";
import { webcrypto, generateKeyPairSync, randomBytes } from "node:crypto";
import * as x509 from "@peculiar/x509";

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

const ALG = { name: "ECDSA", namedCurve: "P-256" } as const;
const SIGN = { name: "ECDSA", hash: "SHA-256" } as const;
type Keys = { privateKey: webcrypto.CryptoKey; publicKey: webcrypto.CryptoKey };

export interface TestCa {
  keys: Keys;
  cert: x509.X509Certificate;
  pem: string;
}

export interface ServerTls {
  cert: string;
  key: string;
}

export async function makeCa(name: string): Promise<TestCa> {
  const keys = (await webcrypto.subtle.generateKey(ALG, true, ["sign", "verify"])) as Keys;
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomBytes(8).toString("hex"),
    name: `CN=${name}`,
    notBefore: new Date(now - 3600_000),
    notAfter: new Date(now + 30 * 86400_000),
    keys: keys as never,
    signingAlgorithm: SIGN,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
    ],
  });
  return { keys, cert, pem: `${cert.toString("pem")}\n` };
}

/** A leaf for 127.0.0.1 and localhost with its key (PEM). */
export async function serverTls(ca: TestCa): Promise<ServerTls> {
  const key = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const spki = key.publicKey.export({ type: "spki", format: "der" });
  const publicKey = await webcrypto.subtle.importKey("spki", spki, ALG, true, ["verify"]);
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: `01${randomBytes(8).toString("hex")}`,
    subject: "CN=127.0.0.1",
    issuer: ca.cert.subject,
    notBefore: new Date(now - 60_000),
    notAfter: new Date(now + 30 * 86400_000),
    signingKey: ca.keys.privateKey as never,
    publicKey: publicKey as never,
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
  return { cert: `${cert.toString("pem")}\n`, key: key.privateKey.export({ type: "pkcs8", format: "pem" }) as string };
}
