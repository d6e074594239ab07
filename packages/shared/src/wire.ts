/**
 * The box ⇄ issuer wire protocol (docs/protocol.md). JSON over HTTPS; every request body is signed by the
 * box's identity key (ECDSA P-256, SHA-256, DER signature, base64url) in the `boxcert-signature` header,
 * over the exact body bytes. The identity key is separate from the TLS key and never changes.
 */
import type { RefusalReason } from "./errors.ts";

export const ENROLL_PATH = "/v1/enroll";
export const CERTIFICATE_PATH = "/v1/certificate";
/** Where a customer's database reports itself (docs/erp.md). */
export const DATABASE_PATH = "/v1/database";
export const SIGNATURE_HEADER = "boxcert-signature";
/** A signed request older or newer than this is refused (replay window); the box's clock must be close. */
export const REQUEST_MAX_SKEW_MS = 10 * 60 * 1000;
/** Largest request body the issuer reads. */
export const MAX_BODY_BYTES = 64 * 1024;

/**
 * A box identifier is a lowercase UUID, as `crypto.randomUUID()` makes it on the box at its first start.
 * The issuer accepts nothing else: the identifier takes a seat, and it is stored, logged and shown to
 * operators, so a free-form string (`' OR 1=1 --`, `NaN`, a name with a control character) is refused at
 * the door. Lowercase only, so one box cannot hold two seats by changing the case of its identifier.
 */
export const BOX_IDENTIFIER_PATTERN = "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$";
const BOX_IDENTIFIER = new RegExp(BOX_IDENTIFIER_PATTERN);

export function isBoxIdentifier(value: unknown): value is string {
  return typeof value === "string" && BOX_IDENTIFIER.test(value);
}

/** What every signed request carries. */
export interface BoxCredentials {
  /** The ERP database's UUID. */
  dbUuid: string;
  /** The subscription ("enterprise") code. */
  enterpriseCode: string;
  /** The box's stable identifier (made once on the box): a lowercase UUID (BOX_IDENTIFIER_PATTERN). */
  identifier: string;
  /** The box identity public key, SPKI DER in base64. */
  identityKey: string;
  /** When the box signed the request, ISO 8601 UTC. */
  timestamp: string;
}

/** POST /v1/enroll: checks eligibility, registers the identity, holds a seat, assigns the label. */
export type EnrollRequest = BoxCredentials;

export interface EnrollResponse {
  label: string;
  zone: string;
  /** The names the box's CSR must carry: `*.<label>.<zone>` and `<label>.<zone>`. */
  names: string[];
}

/** POST /v1/certificate: a certificate for the enrolled box's names, certifying the CSR's key. */
export interface CertificateRequest extends BoxCredentials {
  label: string;
  /** PKCS#10 CSR, PEM. */
  csr: string;
}

export interface CertificateResponse {
  label: string;
  zone: string;
  names: string[];
  /** PEM chain, leaf first, then intermediates (no root). */
  chain: string;
  serial: string;
  notBefore: string;
  notAfter: string;
  /** When the box should renew: a random point chosen by the issuer. */
  renewAfter: string;
  /** True when this is the certificate issued earlier for the same key (idempotent repeat). */
  reused: boolean;
}

/** The body of every eligibility or identity refusal (HTTP 403). */
export interface RefusalBody {
  refusal: { reason: RefusalReason; message: string };
}

/** The body of every other error answer (4xx/5xx). */
export interface ErrorBody {
  error: { code: string; message: string };
}

/** What a database is: only the production database of a subscription gets certificates for its boxes. */
export const DATABASE_KINDS = ["production", "staging", "development", "duplicate"] as const;
export type DatabaseKind = (typeof DATABASE_KINDS)[number];

/**
 * POST /v1/database (docs/erp.md): a database reports itself at start and daily, signed (as a box signs)
 * with its own key, whose public key it carries.
 */
export interface DatabaseReport {
  dbUuid: string;
  enterpriseCode: string;
  /** What the database says it is; the issuer's registry may record less (docs/erp.md). */
  kind: DatabaseKind;
  /** The database's public key, SPKI DER in base64. */
  databaseKey: string;
  /** When the database signed the report, ISO 8601 UTC. */
  timestamp: string;
}

export interface DatabaseReportResponse {
  /** The kind the issuer recorded, which is what eligibility goes by. */
  kind: DatabaseKind;
  /** The subscription's state: draft, in_progress, paused or closed. */
  subscription: string;
}

/** POST <database server>/api/iot/boxes (docs/erp.md): a box registers with the database it is paired with. */
export const BOX_REGISTRATION_PATH = "/api/iot/boxes";

/** The registration's body, signed with the box's identity key (the key in `identityKey`). */
export interface BoxRegistration {
  identifier: string;
  /** The box identity public key, SPKI DER, base64. */
  identityKey: string;
  name: string;
  ip: string;
  httpsUrl: string | null;
  certificateExpiry: string | null;
  version: string;
  /** The box's plain-HTTP port (1-65535), for the POS page's degraded path by IP; boxes before it send none. */
  httpPort?: number;
  timestamp: string;
  /** The one-time pairing secret: the first registration only. */
  pairing?: string;
}

export function isDatabaseKind(value: unknown): value is DatabaseKind {
  return typeof value === "string" && (DATABASE_KINDS as readonly string[]).includes(value);
}
