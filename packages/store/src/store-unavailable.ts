/**
 * Whether an error means the store cannot be reached or cannot take the request now (PostgreSQL down,
 * restarting or hung, a connection cut; SQLite locked past its busy timeout, its disk failing or full), as
 * opposed to a bug or a refused statement. The issuer answers the first kind 503 store_unavailable with
 * Retry-After, and the rest 500. One place for the list, so every component classifies alike.
 */

/** Socket errors of a connection to PostgreSQL (Node's `err.code`). */
const NETWORK_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ECONNABORTED",
  "EPIPE",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENETDOWN",
  "ENOTFOUND",
  "EAI_AGAIN",
]);

/**
 * PostgreSQL SQLSTATEs: admin_shutdown, crash_shutdown, cannot_connect_now (starting up or shutting down),
 * too_many_connections, and query_canceled (the statement timeout of a slow or stuck server). Class 08
 * (connection exceptions) is matched by its prefix.
 */
const POSTGRES_CODES = new Set(["57P01", "57P02", "57P03", "53300", "57014"]);

/** node-postgres's own errors for a connection that broke, or a pool or query that timed out. */
const POSTGRES_CLIENT_MESSAGES = [
  /^Connection terminated/,
  /^timeout exceeded when trying to connect/,
  /^timeout expired$/,
  /^Query read timeout$/,
  /is not queryable$/,
];

/**
 * SQLite's result codes (better-sqlite3's `err.code`, extended codes included: SQLITE_IOERR_WRITE):
 * busy past busy_timeout, an I/O error, a read-only or full disk, a file that cannot be opened.
 */
const SQLITE_CODES = ["SQLITE_BUSY", "SQLITE_IOERR", "SQLITE_READONLY", "SQLITE_FULL", "SQLITE_CANTOPEN"];

function matchesItself(err: { code?: unknown; message?: unknown }): boolean {
  const code = typeof err.code === "string" ? err.code : "";
  if (NETWORK_CODES.has(code) || POSTGRES_CODES.has(code) || /^08[0-9A-Z]{3}$/.test(code)) return true;
  if (SQLITE_CODES.some((c) => code === c || code.startsWith(`${c}_`))) return true;
  const message = typeof err.message === "string" ? err.message : "";
  return POSTGRES_CLIENT_MESSAGES.some((pattern) => pattern.test(message));
}

/**
 * True when `err`, or an error it wraps (`cause`, an AggregateError's `errors`: a connection tried on
 * several addresses), says the store is unreachable or unavailable for now.
 */
export function isStoreUnavailable(err: unknown, depth = 0): boolean {
  if (typeof err !== "object" || err === null || depth > 5) return false;
  const e = err as { code?: unknown; message?: unknown; cause?: unknown; errors?: unknown };
  if (matchesItself(e)) return true;
  if (e.cause !== undefined && isStoreUnavailable(e.cause, depth + 1)) return true;
  return Array.isArray(e.errors) && e.errors.some((inner) => isStoreUnavailable(inner, depth + 1));
}
