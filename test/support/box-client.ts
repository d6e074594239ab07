/**
 * A scripted box for tests and benchmarks: an identity key, signed requests, CSRs. It speaks the wire
 * protocol directly so tests can send what a real box never would (bad signatures, foreign names).
 */
import "reflect-metadata";
import { generateKeyPairSync, sign, webcrypto, randomUUID, type KeyObject } from "node:crypto";

type CryptoKeyPair = webcrypto.CryptoKeyPair;
import * as x509 from "@peculiar/x509";
import { CERTIFICATE_PATH, ENROLL_PATH, SIGNATURE_HEADER, type BoxCredentials } from "@boxcert/shared";

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

export interface ScriptedBox {
  identifier: string;
  identityKey: KeyObject;
  identitySpki: string;
  dbUuid: string;
  enterpriseCode: string;
}

export function scriptedBox(dbUuid: string, enterpriseCode: string, identifier: string = randomUUID()): ScriptedBox {
  const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  return {
    identifier,
    identityKey: privateKey,
    identitySpki: publicKey.export({ type: "spki", format: "der" }).toString("base64"),
    dbUuid,
    enterpriseCode,
  };
}

export function credentials(box: ScriptedBox, now = new Date()): BoxCredentials {
  return {
    dbUuid: box.dbUuid,
    enterpriseCode: box.enterpriseCode,
    identifier: box.identifier,
    identityKey: box.identitySpki,
    timestamp: now.toISOString(),
  };
}

export function signBody(box: ScriptedBox, body: string): string {
  return sign("sha256", Buffer.from(body), { key: box.identityKey, dsaEncoding: "der" }).toString("base64url");
}

export interface Answer {
  status: number;
  headers: Headers;
  json: Record<string, unknown> & {
    refusal?: { reason: string; message: string };
    error?: { code: string; message: string };
  };
}

export async function post(url: string, body: string, headers: Record<string, string> = {}): Promise<Answer> {
  const res = await fetch(url, { method: "POST", body, headers: { "content-type": "application/json", ...headers } });
  const text = await res.text();
  let json: Answer["json"];
  try {
    json = JSON.parse(text);
  } catch {
    json = { raw: text };
  }
  return { status: res.status, headers: res.headers, json };
}

export async function enroll(issuerUrl: string, box: ScriptedBox, now = new Date()): Promise<Answer> {
  const body = JSON.stringify(credentials(box, now));
  return post(issuerUrl + ENROLL_PATH, body, { [SIGNATURE_HEADER]: signBody(box, body) });
}

export interface TlsKey {
  keys: CryptoKeyPair;
  spkiDer: Buffer;
}

export async function makeTlsKey(algorithm: "P-256" | "P-384" | "RSA-2048" | "RSA-1024" = "P-256"): Promise<TlsKey> {
  const alg = algorithm.startsWith("RSA")
    ? { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256", publicExponent: new Uint8Array([1, 0, 1]), modulusLength: Number(algorithm.slice(4)) }
    : { name: "ECDSA", namedCurve: algorithm, hash: "SHA-256" };
  const keys = (await webcrypto.subtle.generateKey(alg, true, ["sign", "verify"])) as CryptoKeyPair;
  const spkiDer = Buffer.from(await webcrypto.subtle.exportKey("spki", keys.publicKey));
  return { keys, spkiDer };
}

export async function makeCsr(key: TlsKey, names: string[]): Promise<string> {
  const algorithm = key.keys.privateKey.algorithm.name === "ECDSA" ? { name: "ECDSA", hash: "SHA-256" } : { name: "RSASSA-PKCS1-v1_5" };
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: `CN=${names[0]}`,
    keys: key.keys,
    signingAlgorithm: algorithm,
    extensions: [new x509.SubjectAlternativeNameExtension(names.map((n) => ({ type: "dns" as const, value: n })))],
  });
  return csr.toString("pem");
}

export async function requestCertificate(
  issuerUrl: string,
  box: ScriptedBox,
  label: string,
  csr: string,
  now = new Date(),
): Promise<Answer> {
  const body = JSON.stringify({ ...credentials(box, now), label, csr });
  return post(issuerUrl + CERTIFICATE_PATH, body, { [SIGNATURE_HEADER]: signBody(box, body) });
}
