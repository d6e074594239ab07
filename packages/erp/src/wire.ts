/**
 * The database's side of docs/erp.md: what it sends the issuer (POST /v1/database), what boxes send it
 * (POST /api/iot/boxes), the connection token, and the error codes of its answers.
 *
 * The definitions the issuer and the box share (the report, the registration, the kinds) live in
 * @boxcert/shared and are re-exported here; the database's own answers and token stay here.
 */

export { BOX_REGISTRATION_PATH, DATABASE_KINDS, isDatabaseKind } from "@boxcert/shared";
export type { BoxRegistration, DatabaseKind, DatabaseReport } from "@boxcert/shared";
export { DATABASE_PATH as DATABASE_REPORT_PATH } from "@boxcert/shared";
import type { DatabaseKind } from "@boxcert/shared";

/** The kinds an operator may give with --kind (a duplicate is made by `boxcert erp duplicate`). */
export const DECLARED_KINDS = ["production", "staging", "development"] as const;

/** The issuer's 200 answer: the kind its registry records (which may differ from the one claimed). */
export interface DatabaseReportAnswer {
  kind: DatabaseKind;
  subscription: string;
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
