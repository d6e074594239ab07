/**
 * The error catalogue: the six box error codes of the contract (DESIGN.md, seed page) and the issuer's
 * refusal reasons. The homepage, the status API, the docs and the translations all read from here; a test
 * fails when one of them misses a code.
 */

/** The box's error codes, in the order the check and the load reach them. */
export const BOX_ERROR_CODES = [
  "ERR_IOT_HTTPS_CHECK_NO_SERVER",
  "ERR_IOT_HTTPS_CHECK_CERT_READ_EXCEPTION",
  "ERR_IOT_HTTPS_LOAD_NO_CREDENTIAL",
  "ERR_IOT_HTTPS_LOAD_REQUEST_EXCEPTION",
  "ERR_IOT_HTTPS_LOAD_REQUEST_STATUS",
  "ERR_IOT_HTTPS_LOAD_REQUEST_NO_RESULT",
] as const;
export type BoxErrorCode = (typeof BOX_ERROR_CODES)[number];

export interface BoxErrorInfo {
  /** What the code means, in one sentence (English). */
  meaning: string;
  /** What the person in front of the box should do, from the original page. */
  remedies: string[];
}

export const BOX_ERRORS: Record<BoxErrorCode, BoxErrorInfo> = {
  ERR_IOT_HTTPS_CHECK_NO_SERVER: {
    meaning: "The box is not connected to a database: no server is configured.",
    remedies: ["Connect the box to your database (boxcert box connect, or Connect in the gear menu)."],
  },
  ERR_IOT_HTTPS_CHECK_CERT_READ_EXCEPTION: {
    meaning: "The existing HTTPS certificate file could not be read or parsed.",
    remedies: ["Check that the certificate file in the box's data folder is readable; removing it makes the box ask for a new one."],
  },
  ERR_IOT_HTTPS_LOAD_NO_CREDENTIAL: {
    meaning: "The database UUID and/or the subscription code are missing on the box.",
    remedies: [
      "Set both the database UUID and the subscription code: boxcert box credential --data-dir DIR --db-uuid UUID --enterprise-code CODE.",
    ],
  },
  ERR_IOT_HTTPS_LOAD_REQUEST_EXCEPTION: {
    meaning: "The box could not reach the certificate issuer (network error).",
    remedies: [
      "Check that the box has internet access.",
      "Check that no firewall or VPN blocks the connection to the issuer; some routers with a built-in firewall do.",
      "The full exception is in the box's log (logs/box.log in its data folder); start the box with --log-level debug for more detail.",
    ],
  },
  ERR_IOT_HTTPS_LOAD_REQUEST_STATUS: {
    meaning: "The issuer was reached but answered with an unexpected HTTP status.",
    remedies: [
      "Open the issuer's status page in a browser to see whether it is down for maintenance; if so, wait until it is back.",
      "If it is up, open a support ticket and quote the 3-digit HTTP status shown with this code.",
    ],
  },
  ERR_IOT_HTTPS_LOAD_REQUEST_NO_RESULT: {
    meaning: "The issuer was reached but refused to provide a certificate: the box or its database is not eligible.",
    remedies: [
      "The database must be the production database (not a copy, duplicate, staging or development database).",
      "The subscription must be in progress and have an IoT-box line with a free seat.",
      "If the IoT-box line was added after the box was connected, reload this page or restart the box.",
    ],
  },
};

/**
 * The issuer's refusal reasons, in the order eligibility is checked, then the identity and request
 * refusals. `status` is the HTTP status the issuer answers with; the box shows every refusal that carries
 * a reason from this list as ERR_IOT_HTTPS_LOAD_REQUEST_NO_RESULT.
 */
export const REFUSALS = {
  unknown_database: { status: 403, message: "the database UUID is not known to the issuer" },
  code_mismatch: { status: 403, message: "the subscription code does not match the database's subscription" },
  database_not_production: { status: 403, message: "the database is not a production database" },
  subscription_not_in_progress: { status: 403, message: "the subscription is not in progress" },
  no_iot_box_line: { status: 403, message: "the subscription has no IoT-box line" },
  no_free_seat: { status: 403, message: "every IoT-box seat of the subscription is taken" },
  identity_mismatch: {
    status: 403,
    message: "this box identifier is registered with another identity key; an operator must free it first",
  },
  box_revoked: {
    status: 403,
    message: "this box was revoked by an operator: it gets no certificate and its name does not resolve",
  },
  box_not_enrolled: { status: 403, message: "the box is not enrolled for this label; enroll first" },
  csr_names_mismatch: { status: 403, message: "the CSR names differ from the names this box is owed" },
} as const;
export type RefusalReason = keyof typeof REFUSALS;
export const REFUSAL_REASONS = Object.keys(REFUSALS) as RefusalReason[];

export function isRefusalReason(value: unknown): value is RefusalReason {
  return typeof value === "string" && Object.prototype.hasOwnProperty.call(REFUSALS, value);
}

/** The code as displayed: REQUEST_STATUS carries the HTTP status number. */
export function formatErrorCode(code: BoxErrorCode, status?: number): string {
  return code === "ERR_IOT_HTTPS_LOAD_REQUEST_STATUS" && status !== undefined ? `${code} ${status}` : code;
}
