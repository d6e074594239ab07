/**
 * CSRs for load generation: built from the ASN.1 schemas and signed with node:crypto, because the
 * benchmark needs thousands of distinct keys before the timed part starts (@peculiar/x509's generator
 * takes about a millisecond each).
 */
import { generateKeyPairSync, sign } from "node:crypto";
import { AsnConvert, OctetString } from "@peculiar/asn1-schema";
import { Attributes, CertificationRequestInfo } from "@peculiar/asn1-csr";
import {
  AlgorithmIdentifier,
  AttributeTypeAndValue,
  Extension,
  Extensions,
  GeneralName,
  Name,
  RelativeDistinguishedName,
  SubjectAlternativeName,
  SubjectPublicKeyInfo,
  Attribute,
  AttributeValue,
} from "@peculiar/asn1-x509";

const EXTENSION_REQUEST = "1.2.840.113549.1.9.14";
const ECDSA_WITH_SHA256 = "1.2.840.10045.4.3.2";

function der(tag: number, body: Buffer): Buffer {
  const n = body.length;
  const head = n < 0x80 ? [tag, n] : n < 0x100 ? [tag, 0x81, n] : [tag, 0x82, n >> 8, n & 0xff];
  return Buffer.concat([Buffer.from(head), body]);
}

/** The request info is built once through the schemas; each CSR swaps in a new key (P-256 SPKIs all have one length). */
function template(names: string[]): { info: Buffer; spkiAt: number; spkiLength: number; algorithm: Buffer } {
  const { publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const spkiDer = publicKey.export({ type: "spki", format: "der" });
  const san = new SubjectAlternativeName(names.map((n) => new GeneralName({ dNSName: n })));
  const extensions = new Extensions([
    new Extension({ extnID: "2.5.29.17", critical: false, extnValue: new OctetString(AsnConvert.serialize(san)) }),
  ]);
  const info = Buffer.from(
    AsnConvert.serialize(
      new CertificationRequestInfo({
        subject: new Name([new RelativeDistinguishedName([new AttributeTypeAndValue({ type: "2.5.4.3", value: new AttributeValue({ utf8String: names[0]! }) })])]),
        subjectPKInfo: AsnConvert.parse(spkiDer, SubjectPublicKeyInfo),
        attributes: new Attributes([new Attribute({ type: EXTENSION_REQUEST, values: [AsnConvert.serialize(extensions)] })]),
      }),
    ),
  );
  const algorithm = Buffer.from(AsnConvert.serialize(new AlgorithmIdentifier({ algorithm: ECDSA_WITH_SHA256 })));
  return { info, spkiAt: info.indexOf(spkiDer), spkiLength: spkiDer.length, algorithm };
}

const templates = new Map<string, ReturnType<typeof template>>();

export function fastCsrPem(names: string[]): string {
  const key = names.join(",");
  let t = templates.get(key);
  if (!t) templates.set(key, (t = template(names)));
  const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const info = Buffer.from(t.info);
  publicKey.export({ type: "spki", format: "der" }).copy(info, t.spkiAt);
  const signature = sign("sha256", info, { key: privateKey, dsaEncoding: "der" });
  const csr = der(0x30, Buffer.concat([info, t.algorithm, der(0x03, Buffer.concat([Buffer.from([0]), signature]))]));
  return `-----BEGIN CERTIFICATE REQUEST-----\n${csr.toString("base64").replace(/.{64}/g, "$&\n")}\n-----END CERTIFICATE REQUEST-----\n`;
}

/**
 * A CSR for `names` with a new key, from a template made once for `templateNames`: names that differ from
 * them only by `from` replaced by `to` (of the same length, so no DER length moves). Thousands of boxes
 * with their own labels cost one template, not one each (a template takes about a millisecond).
 */
export function relabelledCsrPem(templateNames: string[], from: string, to: string): string {
  if (from.length !== to.length) throw new Error(`relabelledCsrPem: "${to}" is not as long as "${from}"`);
  const key = templateNames.join(",");
  let t = templates.get(key);
  if (!t) templates.set(key, (t = template(templateNames)));
  const info = Buffer.from(t.info);
  const fromBytes = Buffer.from(from);
  const toBytes = Buffer.from(to);
  for (let at = info.indexOf(fromBytes); at !== -1; at = info.indexOf(fromBytes, at + fromBytes.length)) toBytes.copy(info, at);
  const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  publicKey.export({ type: "spki", format: "der" }).copy(info, t.spkiAt);
  const signature = sign("sha256", info, { key: privateKey, dsaEncoding: "der" });
  const csr = der(0x30, Buffer.concat([info, t.algorithm, der(0x03, Buffer.concat([Buffer.from([0]), signature]))]));
  return `-----BEGIN CERTIFICATE REQUEST-----\n${csr.toString("base64").replace(/.{64}/g, "$&\n")}\n-----END CERTIFICATE REQUEST-----\n`;
}
