/**
 * Reading and checking a box's certificate signing request (PKCS#10, RFC 2986) on the issuer's hot path:
 * structure, proof of possession (the CSR's signature under its own key), key policy and the names asked for.
 *
 * The DER is walked by hand rather than with @peculiar/asn1-schema's AsnConvert.parse(der,
 * CertificationRequest): measured here, asn1js alone takes about 130 us per CSR, twice the ECDSA
 * verification it guards, where this walk takes a few microseconds. The walk is strict (definite lengths,
 * every container consumed exactly) and the tests check it against AsnConvert.parse on the same inputs.
 */
import { createHash, createPublicKey, verify } from "node:crypto";
import type { JsonWebKey, KeyObject } from "node:crypto";

export class CsrError extends Error {
  override name = "CsrError";
}

export type CsrKeyType = "ec-p256" | "ec-p384" | "rsa";

export interface VerifiedCsr {
  der: Buffer;
  publicKeySpkiDer: Buffer;
  publicKey: KeyObject;
  /** Hex SHA-256 of the SPKI DER. */
  publicKeySha256: string;
  keyType: CsrKeyType;
  keyBits: number;
  /** The SAN dNSNames, lowercased, in CSR order. */
  names: string[];
  commonName: string | null;
}

/** A box asks for two names; anything near this limit is not a box. */
export const MAX_CSR_NAMES = 20;
/** An RSA-8192 CSR with a few names is about 1.5 kB; the limit only stops abuse. */
export const MAX_CSR_BYTES = 16 * 1024;
export const MIN_RSA_BITS = 2048;
/** Larger RSA keys cost verification time for no benefit a box can use. */
export const MAX_RSA_BITS = 8192;

type Hash = "sha256" | "sha384" | "sha512";
interface SignatureAlgorithm {
  hash: Hash;
  family: "ec" | "rsa";
}
const SIGNATURE_ALGORITHMS: ReadonlyMap<string, SignatureAlgorithm> = new Map([
  ["1.2.840.10045.4.3.2", { hash: "sha256", family: "ec" }],
  ["1.2.840.10045.4.3.3", { hash: "sha384", family: "ec" }],
  ["1.2.840.10045.4.3.4", { hash: "sha512", family: "ec" }],
  ["1.2.840.113549.1.1.11", { hash: "sha256", family: "rsa" }],
  ["1.2.840.113549.1.1.12", { hash: "sha384", family: "rsa" }],
  ["1.2.840.113549.1.1.13", { hash: "sha512", family: "rsa" }],
]);
const ACCEPTED_KEYS = `ECDSA P-256, ECDSA P-384 or RSA of at least ${MIN_RSA_BITS} bits`;
/** Algorithms recognised only to refuse them with a precise message. */
const REFUSED_SIGNATURE_ALGORITHMS: ReadonlyMap<string, string> = new Map([
  ["1.2.840.113549.1.1.10", "RSASSA-PSS signatures are not accepted; sign the CSR with PKCS#1 v1.5 (sha256WithRSAEncryption) or use an ECDSA key"],
  ["1.2.840.113549.1.1.5", "SHA-1 signatures (sha1WithRSAEncryption) are not accepted; sign the CSR with SHA-256"],
  ["1.2.840.10045.4.1", "SHA-1 signatures (ecdsa-with-SHA1) are not accepted; sign the CSR with SHA-256"],
  ["1.2.840.113549.1.1.4", "MD5 signatures are not accepted; sign the CSR with SHA-256"],
  ["1.3.101.112", `Ed25519 keys are not accepted; use ${ACCEPTED_KEYS}`],
  ["1.3.101.113", `Ed448 keys are not accepted; use ${ACCEPTED_KEYS}`],
]);

const OID_EC_PUBLIC_KEY = "1.2.840.10045.2.1";
const OID_RSA_ENCRYPTION = "1.2.840.113549.1.1.1";
const OID_RSASSA_PSS = "1.2.840.113549.1.1.10";
const OID_EXTENSION_REQUEST = "1.2.840.113549.1.9.14";
const OID_SUBJECT_ALT_NAME = "2.5.29.17";
const OID_COMMON_NAME = "2.5.4.3";
const CURVES: ReadonlyMap<string, { keyType: CsrKeyType; crv: string; bits: number }> = new Map([
  ["1.2.840.10045.3.1.7", { keyType: "ec-p256", crv: "P-256", bits: 256 }],
  ["1.3.132.0.34", { keyType: "ec-p384", crv: "P-384", bits: 384 }],
]);
const CURVE_NAMES: ReadonlyMap<string, string> = new Map([
  ["1.3.132.0.35", "P-521"],
  ["1.3.132.0.10", "secp256k1"],
]);

const TAG = {
  BOOLEAN: 0x01,
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  NULL: 0x05,
  OID: 0x06,
  UTF8_STRING: 0x0c,
  PRINTABLE_STRING: 0x13,
  TELETEX_STRING: 0x14,
  IA5_STRING: 0x16,
  UNIVERSAL_STRING: 0x1c,
  BMP_STRING: 0x1e,
  SEQUENCE: 0x30,
  SET: 0x31,
  CONTEXT_0_CONSTRUCTED: 0xa0,
  DNS_NAME: 0x82,
} as const;

const GENERAL_NAME_KINDS: Record<number, string> = {
  0xa0: "otherName",
  0x81: "rfc822Name (email)",
  0xa3: "x400Address",
  0xa4: "directoryName",
  0xa5: "ediPartyName",
  0x86: "uniformResourceIdentifier",
  0x87: "iPAddress",
  0x88: "registeredID",
};

const DNS_NAME = /^(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

/**
 * Parses and checks a CSR given as PEM ("CERTIFICATE REQUEST") or DER. Every refusal is a CsrError whose
 * message says what is wrong; no other exception type escapes, whatever the input.
 */
export function verifyCsr(input: string | Buffer): VerifiedCsr {
  const { csr, proof } = readCsr(input);
  let valid: boolean;
  try {
    valid = verify(proof.hash, proof.signedBytes, { key: csr.publicKey, dsaEncoding: "der" }, proof.signature);
  } catch {
    valid = false; // a malformed signature encoding is the same refusal as a wrong signature
  }
  return provenOrRefused(csr, valid);
}

/**
 * verifyCsr with the signature checked on libuv's thread pool (node's crypto.verify with a callback), so
 * the event loop that answers other requests is not held for the verification (the costliest step of an
 * RSA CSR, about 0.1 ms of a P-256 one). Reading the DER stays on the loop: a few microseconds.
 */
export async function verifyCsrOffLoop(input: string | Buffer): Promise<VerifiedCsr> {
  const { csr, proof } = readCsr(input);
  const valid = await new Promise<boolean>((resolve) => {
    try {
      verify(proof.hash, proof.signedBytes, { key: csr.publicKey, dsaEncoding: "der" }, proof.signature, (err, ok) => resolve(!err && ok));
    } catch {
      resolve(false); // a malformed signature encoding is the same refusal as a wrong signature
    }
  });
  return provenOrRefused(csr, valid);
}

/** What the CSR's signature covers, checked by the caller (on the loop or on the thread pool). */
interface ProofOfPossession {
  hash: Hash;
  signedBytes: Buffer;
  signature: Buffer;
}

function readCsr(input: string | Buffer): { csr: VerifiedCsr; proof: ProofOfPossession } {
  try {
    return readDer(toDer(input));
  } catch (err) {
    if (err instanceof CsrError) throw err;
    // A safety net: the checks name every failure we know of; this keeps the contract for the rest.
    throw new CsrError(`the CSR could not be read: ${(err as Error).message}`, { cause: err });
  }
}

function provenOrRefused(csr: VerifiedCsr, valid: boolean): VerifiedCsr {
  if (!valid) {
    throw new CsrError("the CSR's signature does not verify with its own public key (no proof of possession of the private key)");
  }
  return csr;
}

function toDer(input: string | Buffer): Buffer {
  if (typeof input !== "string" && !Buffer.isBuffer(input)) {
    throw new CsrError("the CSR must be a PEM string or a DER buffer");
  }
  if (input.length === 0) throw new CsrError("the CSR is empty");
  const looksLikePem =
    typeof input === "string" || input.subarray(0, 64).toString("latin1").trimStart().startsWith("-----BEGIN");
  if (!looksLikePem) return input as Buffer;
  const text = typeof input === "string" ? input : input.toString("latin1");
  if (text.length > MAX_CSR_BYTES * 2) {
    throw new CsrError(`the CSR PEM is ${text.length} characters; at most ${MAX_CSR_BYTES * 2} are accepted`);
  }
  return pemToDer(text);
}

function pemToDer(text: string): Buffer {
  const match = /^\s*-----BEGIN ([A-Z0-9 ]+)-----\r?\n([A-Za-z0-9+/=\s]*)-----END ([A-Z0-9 ]+)-----\s*$/.exec(text);
  if (!match) {
    throw new CsrError(
      text.includes("-----BEGIN")
        ? "the CSR PEM is malformed: expected one BEGIN/END block of base64 and nothing else around it"
        : "the CSR is neither PEM (-----BEGIN CERTIFICATE REQUEST-----) nor DER",
    );
  }
  const [, label = "", body = "", endLabel = ""] = match;
  if (label !== endLabel) throw new CsrError(`the CSR PEM is malformed: BEGIN ${label} ends with END ${endLabel}`);
  if (label !== "CERTIFICATE REQUEST" && label !== "NEW CERTIFICATE REQUEST") {
    throw new CsrError(`the PEM holds a ${label}, not a CERTIFICATE REQUEST`);
  }
  const base64 = body.replace(/\s+/g, "");
  // Buffer.from(..., "base64") silently skips what it does not understand; check the padding ourselves.
  if (base64.length === 0) throw new CsrError("the CSR PEM block is empty");
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(base64) || base64.length % 4 !== 0) {
    throw new CsrError("the CSR PEM body is not valid base64");
  }
  return Buffer.from(base64, "base64");
}

/** One DER element: where its header starts, where its content starts and where it ends. */
interface Tlv {
  tag: number;
  offset: number;
  start: number;
  end: number;
}

/** Reads the elements of one DER container in order; `where` names the container in error messages. */
class DerReader {
  private position: number;
  constructor(
    private readonly der: Buffer,
    private readonly container: { start: number; end: number },
    private readonly where: string,
  ) {
    this.position = container.start;
  }

  hasMore(): boolean {
    return this.position < this.container.end;
  }

  peekTag(): number | undefined {
    return this.hasMore() ? this.der[this.position] : undefined;
  }

  next(expectedTag: number | null, what: string): Tlv {
    const { der } = this;
    const limit = this.container.end;
    const offset = this.position;
    if (offset >= limit) throw new CsrError(`the CSR is truncated: ${this.where} ends before its ${what}`);
    if (offset + 2 > limit) throw new CsrError(`the CSR is truncated inside ${this.where}`);
    const tag = der[offset]!;
    if (expectedTag !== null && tag !== expectedTag) {
      throw new CsrError(
        `the CSR is malformed: ${this.where} has tag 0x${tag.toString(16)} where its ${what} (tag 0x${expectedTag.toString(16)}) belongs`,
      );
    }
    if ((tag & 0x1f) === 0x1f) throw new CsrError(`the CSR is malformed: high tag number in ${this.where}`);
    let length = der[offset + 1]!;
    let start = offset + 2;
    if (length & 0x80) {
      const count = length & 0x7f;
      if (count === 0) throw new CsrError(`the CSR uses an indefinite length in ${this.where} (BER, not DER)`);
      if (count > 3) throw new CsrError(`the CSR has an impossible length in ${this.where}`);
      if (start + count > limit) throw new CsrError(`the CSR is truncated inside ${this.where}`);
      length = 0;
      for (let i = 0; i < count; i++) length = length * 256 + der[start + i]!;
      start += count;
    }
    const end = start + length;
    if (end > limit) throw new CsrError(`the CSR is truncated: the ${what} runs past the end of ${this.where}`);
    this.position = end;
    return { tag, offset, start, end };
  }

  /** The container must hold nothing after what was read: extra elements mean it is not what we think. */
  finish(): void {
    if (this.hasMore()) throw new CsrError(`the CSR is malformed: unexpected data at the end of ${this.where}`);
  }

  child(tlv: Tlv, where: string): DerReader {
    return new DerReader(this.der, tlv, where);
  }
}

function content(der: Buffer, tlv: Tlv): Buffer {
  return der.subarray(tlv.start, tlv.end);
}

/** Dotted OID text, for lookups and messages. */
function readOid(der: Buffer, tlv: Tlv, what: string): string {
  if (tlv.end === tlv.start) throw new CsrError(`the CSR's ${what} is an empty OBJECT IDENTIFIER`);
  const parts: number[] = [];
  let value = 0;
  for (let i = tlv.start; i < tlv.end; i++) {
    const byte = der[i]!;
    if (value === 0 && byte === 0x80) throw new CsrError(`the CSR's ${what} is a badly encoded OBJECT IDENTIFIER`);
    value = value * 128 + (byte & 0x7f);
    if (value > Number.MAX_SAFE_INTEGER / 128) throw new CsrError(`the CSR's ${what} has an OBJECT IDENTIFIER arc that is too large`);
    if ((byte & 0x80) === 0) {
      if (parts.length === 0) parts.push(value < 80 ? Math.floor(value / 40) : 2, value < 80 ? value % 40 : value - 80);
      else parts.push(value);
      value = 0;
    }
  }
  if (der[tlv.end - 1]! & 0x80) throw new CsrError(`the CSR's ${what} is a truncated OBJECT IDENTIFIER`);
  return parts.join(".");
}

function readDer(der: Buffer): { csr: VerifiedCsr; proof: ProofOfPossession } {
  if (der.length > MAX_CSR_BYTES) throw new CsrError(`the CSR is ${der.length} bytes; at most ${MAX_CSR_BYTES} are accepted`);
  if (der[0] !== TAG.SEQUENCE) throw new CsrError("the input is not a CSR: it does not start with a DER SEQUENCE");
  const top = new DerReader(der, { start: 0, end: der.length }, "the input");
  const outer = top.next(TAG.SEQUENCE, "CertificationRequest");
  if (top.hasMore()) throw new CsrError(`the CSR has ${der.length - outer.end} bytes of trailing data after it`);

  // CertificationRequest ::= SEQUENCE { certificationRequestInfo, signatureAlgorithm, signature BIT STRING }
  const request = top.child(outer, "the CertificationRequest");
  const info = request.next(TAG.SEQUENCE, "certificationRequestInfo");
  const signatureAlgorithm = request.next(TAG.SEQUENCE, "signatureAlgorithm");
  const signatureBits = request.next(TAG.BIT_STRING, "signature");
  request.finish();

  // CertificationRequestInfo ::= SEQUENCE { version INTEGER, subject Name, subjectPKInfo, [0] attributes }
  const infoReader = request.child(info, "certificationRequestInfo");
  const versionTlv = infoReader.next(null, "version");
  if (versionTlv.tag !== TAG.INTEGER) {
    throw new CsrError("the input is not a CSR: it has no version number where a CSR has one (is it a certificate?)");
  }
  if (versionTlv.end - versionTlv.start !== 1 || der[versionTlv.start] !== 0) {
    throw new CsrError("the CSR's version is not 0 (v1), the only PKCS#10 version");
  }
  const subject = infoReader.next(TAG.SEQUENCE, "subject");
  const spki = infoReader.next(TAG.SEQUENCE, "subjectPKInfo");
  const attributes = infoReader.hasMore() ? infoReader.next(TAG.CONTEXT_0_CONSTRUCTED, "attributes") : null;
  infoReader.finish();

  const algorithm = readSignatureAlgorithm(der, request.child(signatureAlgorithm, "signatureAlgorithm"));
  const publicKeySpkiDer = Buffer.from(der.subarray(spki.offset, spki.end));
  const { publicKey, keyType, keyBits } = readPublicKey(publicKeySpkiDer);
  if ((keyType === "rsa") !== (algorithm.family === "rsa")) {
    throw new CsrError(`the CSR is signed with ${algorithm.family === "rsa" ? "RSA" : "ECDSA"} but its key is ${keyType}`);
  }
  const names = attributes ? requestedNames(der, infoReader.child(attributes, "the attributes")) : [];
  const commonName = readCommonName(der, infoReader.child(subject, "the subject"));

  if (signatureBits.end === signatureBits.start || der[signatureBits.start] !== 0) {
    throw new CsrError("the CSR's signature BIT STRING is empty or not a whole number of bytes");
  }
  // The signed bytes are the certificationRequestInfo exactly as sent, not a re-encoding.
  const proof = { hash: algorithm.hash, signedBytes: der.subarray(info.offset, info.end), signature: der.subarray(signatureBits.start + 1, signatureBits.end) };
  const csr: VerifiedCsr = {
    der: Buffer.from(der),
    publicKeySpkiDer,
    publicKey,
    publicKeySha256: createHash("sha256").update(publicKeySpkiDer).digest("hex"),
    keyType,
    keyBits,
    names,
    commonName,
  };
  return { csr, proof };
}

function readSignatureAlgorithm(der: Buffer, reader: DerReader): SignatureAlgorithm {
  const oid = readOid(der, reader.next(TAG.OID, "algorithm"), "signature algorithm");
  const refused = REFUSED_SIGNATURE_ALGORITHMS.get(oid);
  if (refused) throw new CsrError(refused);
  const algorithm = SIGNATURE_ALGORITHMS.get(oid);
  if (!algorithm) {
    throw new CsrError(`the CSR's signature algorithm ${oid} is not supported; use ecdsa-with-SHA256/384/512 or sha256/384/512WithRSAEncryption`);
  }
  // RFC 4055: the RSA algorithms carry NULL parameters; RFC 5758: ECDSA has none. Encoders that get this
  // backwards exist, and the parameters carry nothing either way, so only a non-NULL value is refused.
  if (reader.hasMore()) {
    const parameters = reader.next(null, "parameters");
    if (parameters.tag !== TAG.NULL || parameters.end !== parameters.start) {
      throw new CsrError(`the CSR's signature algorithm ${oid} has unexpected parameters`);
    }
  }
  reader.finish();
  return algorithm;
}

function base64url(bytes: Buffer): string {
  return bytes.toString("base64url");
}

/** Strips the sign byte of a positive DER INTEGER for JWK. */
function unsignedInteger(der: Buffer, tlv: Tlv, what: string): Buffer {
  let start = tlv.start;
  if (tlv.end === start || der[start]! & 0x80) throw new CsrError(`the CSR's RSA ${what} is not a positive INTEGER`);
  while (start < tlv.end - 1 && der[start] === 0) start++;
  return der.subarray(start, tlv.end);
}

function readPublicKey(spkiDer: Buffer): { publicKey: KeyObject; keyType: CsrKeyType; keyBits: number } {
  // SubjectPublicKeyInfo ::= SEQUENCE { algorithm SEQUENCE { OID, parameters }, subjectPublicKey BIT STRING }
  const top = new DerReader(spkiDer, { start: 0, end: spkiDer.length }, "subjectPKInfo");
  const spki = top.child(top.next(TAG.SEQUENCE, "SEQUENCE"), "subjectPKInfo");
  const algorithm = spki.child(spki.next(TAG.SEQUENCE, "algorithm"), "the public key algorithm");
  const bits = spki.next(TAG.BIT_STRING, "subjectPublicKey");
  spki.finish();
  if (bits.end === bits.start || spkiDer[bits.start] !== 0) {
    throw new CsrError("the CSR's public key BIT STRING is empty or not a whole number of bytes");
  }
  const key = spkiDer.subarray(bits.start + 1, bits.end);
  const oid = readOid(spkiDer, algorithm.next(TAG.OID, "algorithm"), "public key algorithm");

  // Importing from JWK skips OpenSSL 3.0's generic DER decoder, measured here at ~120 us per key: P-256
  // from JWK takes ~65 us and RSA ~4 us. P-384 from JWK is slower (~430 us) than from DER, so it stays DER.
  let jwk: JsonWebKey | null;
  let keyType: CsrKeyType;
  let keyBits: number;
  if (oid === OID_EC_PUBLIC_KEY) {
    const parameters = algorithm.next(null, "curve");
    if (parameters.tag !== TAG.OID) throw new CsrError("the CSR's EC key has explicit curve parameters; only named curves P-256 and P-384 are accepted");
    algorithm.finish();
    const curveOid = readOid(spkiDer, parameters, "curve");
    const curve = CURVES.get(curveOid);
    if (!curve) {
      throw new CsrError(`the CSR's EC key is on curve ${CURVE_NAMES.get(curveOid) ?? curveOid}; only P-256 and P-384 are accepted`);
    }
    const size = curve.bits / 8;
    if (key.length !== 1 + 2 * size || key[0] !== 0x04) {
      throw new CsrError(`the CSR's ${curve.crv} public key is not an uncompressed point of ${1 + 2 * size} bytes`);
    }
    keyType = curve.keyType;
    keyBits = curve.bits;
    jwk = curve.keyType === "ec-p256" ? { kty: "EC", crv: curve.crv, x: base64url(key.subarray(1, 1 + size)), y: base64url(key.subarray(1 + size)) } : null;
  } else if (oid === OID_RSA_ENCRYPTION) {
    if (algorithm.hasMore()) {
      const parameters = algorithm.next(TAG.NULL, "NULL parameters");
      if (parameters.end !== parameters.start) throw new CsrError("the CSR's RSA key has non-NULL parameters");
    }
    algorithm.finish();
    // RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER }
    const rsaTop = new DerReader(key, { start: 0, end: key.length }, "the RSA public key");
    const rsa = rsaTop.child(rsaTop.next(TAG.SEQUENCE, "RSAPublicKey"), "the RSA public key");
    rsaTop.finish();
    const n = unsignedInteger(key, rsa.next(TAG.INTEGER, "modulus"), "modulus");
    const e = unsignedInteger(key, rsa.next(TAG.INTEGER, "public exponent"), "public exponent");
    rsa.finish();
    keyBits = (n.length - 1) * 8 + (32 - Math.clz32(n[0]!));
    if (keyBits < MIN_RSA_BITS) throw new CsrError(`the CSR's RSA key is ${keyBits} bits; at least ${MIN_RSA_BITS} are required`);
    if (keyBits > MAX_RSA_BITS) throw new CsrError(`the CSR's RSA key is ${keyBits} bits; at most ${MAX_RSA_BITS} are accepted`);
    keyType = "rsa";
    jwk = { kty: "RSA", n: base64url(n), e: base64url(e) };
  } else if (oid === OID_RSASSA_PSS) {
    throw new CsrError("the CSR's key is an RSASSA-PSS-only key; use a plain RSA (rsaEncryption) or ECDSA key");
  } else {
    throw new CsrError(REFUSED_SIGNATURE_ALGORITHMS.get(oid) ?? `the CSR's key algorithm ${oid} is not accepted; use ${ACCEPTED_KEYS}`);
  }

  let publicKey: KeyObject;
  try {
    publicKey = jwk ? createPublicKey({ key: jwk, format: "jwk" }) : createPublicKey({ key: spkiDer, format: "der", type: "spki" });
  } catch (err) {
    throw new CsrError(`the CSR's ${keyType} public key is invalid: ${(err as Error).message}`, { cause: err });
  }
  return { publicKey, keyType, keyBits };
}

function requestedNames(der: Buffer, attributes: DerReader): string[] {
  let names: string[] | null = null;
  while (attributes.hasMore()) {
    // Attribute ::= SEQUENCE { type OID, values SET OF ANY }
    const attribute = attributes.child(attributes.next(TAG.SEQUENCE, "attribute"), "an attribute");
    const type = readOid(der, attribute.next(TAG.OID, "type"), "attribute type");
    const values = attribute.child(attribute.next(TAG.SET, "values"), "an attribute's values");
    attribute.finish();
    if (type !== OID_EXTENSION_REQUEST) continue;
    if (names) throw new CsrError("the CSR has more than one extension request attribute");
    const extensions = values.child(values.next(TAG.SEQUENCE, "extensions"), "the extension request");
    values.finish();
    names = [];
    let sanSeen = false;
    while (extensions.hasMore()) {
      // Extension ::= SEQUENCE { extnID OID, critical BOOLEAN DEFAULT FALSE, extnValue OCTET STRING }
      const extension = extensions.child(extensions.next(TAG.SEQUENCE, "extension"), "an extension");
      const id = readOid(der, extension.next(TAG.OID, "extnID"), "extension");
      if (extension.peekTag() === TAG.BOOLEAN) extension.next(TAG.BOOLEAN, "critical flag");
      const value = extension.next(TAG.OCTET_STRING, "extnValue");
      extension.finish();
      if (id !== OID_SUBJECT_ALT_NAME) continue;
      if (sanSeen) throw new CsrError("the CSR has more than one subjectAltName extension");
      sanSeen = true;
      names = readSubjectAltNames(der, extension.child(value, "the subjectAltName extension"));
    }
  }
  return names ?? [];
}

function readSubjectAltNames(der: Buffer, value: DerReader): string[] {
  const generalNames = value.child(value.next(TAG.SEQUENCE, "GeneralNames"), "the subjectAltName extension");
  value.finish();
  const names: string[] = [];
  while (generalNames.hasMore()) {
    const generalName = generalNames.next(null, "name");
    if (generalName.tag !== TAG.DNS_NAME) {
      const kind = GENERAL_NAME_KINDS[generalName.tag] ?? `tag 0x${generalName.tag.toString(16)}`;
      throw new CsrError(`the CSR asks for a ${kind} subject alternative name; only dNSName entries are issued`);
    }
    if (names.length === MAX_CSR_NAMES) throw new CsrError(`the CSR asks for more than ${MAX_CSR_NAMES} names`);
    const name = content(der, generalName).toString("latin1").toLowerCase();
    if (name.length > 253 || !DNS_NAME.test(name)) {
      throw new CsrError(`the CSR asks for ${JSON.stringify(name.slice(0, 80))}, which is not a valid DNS name`);
    }
    names.push(name);
  }
  return names;
}

function readCommonName(der: Buffer, subject: DerReader): string | null {
  // Name ::= SEQUENCE OF SET OF SEQUENCE { type OID, value ANY }; the first CN wins.
  let commonName: string | null = null;
  while (subject.hasMore()) {
    const rdn = subject.child(subject.next(TAG.SET, "relative distinguished name"), "the subject");
    while (rdn.hasMore()) {
      const attribute = rdn.child(rdn.next(TAG.SEQUENCE, "attribute"), "a subject attribute");
      const type = readOid(der, attribute.next(TAG.OID, "type"), "subject attribute");
      const value = attribute.next(null, "value");
      attribute.finish();
      if (type === OID_COMMON_NAME && commonName === null) commonName = decodeDirectoryString(der, value);
    }
  }
  return commonName;
}

function decodeDirectoryString(der: Buffer, tlv: Tlv): string {
  const bytes = content(der, tlv);
  switch (tlv.tag) {
    case TAG.UTF8_STRING:
      return bytes.toString("utf8");
    case TAG.PRINTABLE_STRING:
    case TAG.IA5_STRING:
    case TAG.TELETEX_STRING:
      return bytes.toString("latin1");
    case TAG.BMP_STRING:
      if (bytes.length % 2 !== 0) throw new CsrError("the CSR's subject CN is a malformed BMPString");
      return Buffer.from(bytes).swap16().toString("utf16le");
    case TAG.UNIVERSAL_STRING: {
      if (bytes.length % 4 !== 0) throw new CsrError("the CSR's subject CN is a malformed UniversalString");
      let text = "";
      for (let i = 0; i < bytes.length; i += 4) text += String.fromCodePoint(bytes.readUInt32BE(i) % 0x110000);
      return text;
    }
    default:
      throw new CsrError(`the CSR's subject CN has string type 0x${tlv.tag.toString(16)}, which is not a DirectoryString`);
  }
}
