/**
 * The database's side of docs/erp.md: what it sends the issuer (POST /v1/database), what boxes send it
 * (POST /api/iot/boxes), the connection token, and the error codes of its answers.
 *
 * Kept here until @boxcert/shared carries the same definitions (the issuer's and the box's sides are built
 * at the same time); the signature header, the skew window and the box identifier come from shared already.
 */

export const DATABASE_REPORT_PATH = "/v1/database";
export const BOX_REGISTRATION_PATH = "/api/iot/boxes";

/** What a database says it is; `duplicate` is what a copy made by `boxcert erp duplicate` says. */
export const DATABASE_KINDS = ["production", "staging", "development", "duplicate"] as const;
export type DatabaseKind = (typeof DATABASE_KINDS)[number];
/** The kinds an operator may give with --kind (a duplicate is made by `boxcert erp duplicate`). */
export const DECLARED_KINDS = ["production", "staging", "development"] as const;

export function isDatabaseKind(value: unknown): value is DatabaseKind {
  return typeof value === "string" && (DATABASE_KINDS as readonly string[]).includes(value);
}

/** POST /v1/database: signed with the database key, at start and once a day. */
export interface DatabaseReport {
  dbUuid: string;
  enterpriseCode: string;
  kind: DatabaseKind;
  /** The database's public key, SPKI DER, base64. */
  databaseKey: string;
  timestamp: string;
}

/** The issuer's 200 answer: the kind its registry records (which may differ from the one claimed). */
export interface DatabaseReportAnswer {
  kind: DatabaseKind;
  subscription: string;
}

/** POST /api/iot/boxes: signed with the box's identity key. */
export interface BoxRegistration {
  identifier: string;
  identityKey: string;
  name: string;
  ip: string;
  httpsUrl: string | null;
  certificateExpiry: string | null;
  version: string;
  /** The box's plain-HTTP port (optional: boxes before it send none): the POS page's degraded path by IP. */
  httpPort?: number;
  timestamp: string;
  /** The one-time pairing secret, on the first registration only. */
  pairing?: string;
}

/** Every code the registration endpoint answers with, and its HTTP status (docs/erp-server.md). */
export const REGISTRATION_ERRORS = {
  bad_json: { status: 400, meaning: "the body is not JSON" },
  bad_request: { status: 400, meaning: "a field is missing or malformed" },
  bad_identity_key: { status: 400, meaning: "identityKey is not an ECDSA P-256 public key (SPKI DER, base64)" },
  bad_signature: { status: 401, meaning: "the boxcert-signature header does not sign the body with identityKey" },
  stale_request: { status: 401, meaning: "the timestamp is more than 10 minutes from the database's clock" },
  pairing_invalid: { status: 403, meaning: "the pairing secret is unknown, used or expired" },
  unknown_box: { status: 403, meaning: "no box with this identifier has paired with this database" },
  identity_mismatch: { status: 403, meaning: "this identifier is registered with another identity key" },
  unsupported_media_type: { status: 415, meaning: "the body is not application/json" },
  body_too_large: { status: 413, meaning: "the body is over 16 KiB" },
} as const satisfies Record<string, { status: number; meaning: string }>;
export type RegistrationErrorCode = keyof typeof REGISTRATION_ERRORS;

export const CONNECTION_TOKEN_PREFIX = "boxcert1.";

/** What the IoT page's "Connect a box" hands the installer, as `boxcert1.` + base64url(JSON). */
export interface ConnectionToken {
  server: string;
  dbUuid: string;
  enterpriseCode: string;
  zone?: string;
  pairing: string;
}
