/** A box as the database sees it: an identifier, an identity key, and signed registrations (docs/erp.md). */
import { generateKeyPairSync, randomUUID, sign, type KeyObject } from "node:crypto";
import { httpsRequest, type Answer } from "./https.ts";

export interface Target {
  url: string;
  ca: string;
}

export interface SendOptions {
  /** Sign with this key instead of the box's own. */
  signWith?: KeyObject;
  /** Send this header instead of the signature (null: none). */
  signature?: string | null;
  contentType?: string;
}

export class FakeBox {
  readonly identifier = randomUUID();
  readonly privateKey: KeyObject;
  readonly identityKey: string;

  constructor() {
    const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
    this.privateKey = privateKey;
    this.identityKey = publicKey.export({ type: "spki", format: "der" }).toString("base64");
  }

  /** A registration body; `now` is the timestamp, `fields` override or add to it. */
  body(now: number, fields: Record<string, unknown> = {}): Record<string, unknown> {
    return {
      identifier: this.identifier,
      identityKey: this.identityKey,
      name: "Till 1",
      ip: "192.168.1.42",
      httpsUrl: "https://192-168-1-42.k3vq7mxa2bfnw4ds.boxcert.test:8443/",
      certificateExpiry: new Date(now + 90 * 86400_000).toISOString(),
      version: "0.1.0",
      timestamp: new Date(now).toISOString(),
      ...fields,
    };
  }

  /** POSTs a body (an object, or raw text) to the database's registration endpoint, signed over its exact bytes. */
  send(target: Target, body: Record<string, unknown> | string, options: SendOptions = {}): Promise<Answer> {
    const raw = Buffer.from(typeof body === "string" ? body : JSON.stringify(body));
    const signature = options.signature === undefined ? sign("sha256", raw, { key: options.signWith ?? this.privateKey, dsaEncoding: "der" }).toString("base64url") : options.signature;
    return httpsRequest(new URL("api/iot/boxes", target.url).toString(), target.ca, {
      method: "POST",
      body: raw,
      headers: { "content-type": options.contentType ?? "application/json", ...(signature === null ? {} : { "boxcert-signature": signature }) },
    });
  }
}
