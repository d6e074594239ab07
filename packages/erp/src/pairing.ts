/**
 * Connection tokens and their one-time pairing secrets (docs/erp.md "The connection token"): each
 * "Connect a box" makes a new secret, valid 24 hours and for one box. The store keeps only the secret's
 * SHA-256, so the data folder (or a backup of it) never holds a secret that still works.
 */
import { createHash, randomBytes } from "node:crypto";
import { CONNECTION_TOKEN_PREFIX, type ConnectionToken } from "./wire.ts";
import type { Logger } from "pino";
import type { JsonStore, PairingRecord } from "./store.ts";
import type { Database } from "./database.ts";

export const PAIRING_VALIDITY_MS = 24 * 3600_000;
export const PAIRING_SECRET_BYTES = 32;
/**
 * Open secrets kept at most; the oldest goes first. Far above what installers use in a day, and it bounds
 * the file when the pages run without a login (--insecure-no-login) and anyone can press the button.
 */
export const MAX_OPEN_PAIRINGS = 1000;
const PAIRING_PATTERN = /^[A-Za-z0-9_-]{43}$/;

export function newPairingSecret(): string {
  return randomBytes(PAIRING_SECRET_BYTES).toString("base64url");
}

export function pairingHash(secret: string): string {
  return createHash("sha256").update(secret).digest("base64url");
}

/** Whether a value has the shape of a pairing secret (32 bytes, base64url). */
export function isPairingSecret(value: unknown): value is string {
  return typeof value === "string" && PAIRING_PATTERN.test(value);
}

/** The fields in the documented order (docs/erp.md), the zone only when the database knows it. */
export function formatConnectionToken(token: ConnectionToken): string {
  const { server, dbUuid, enterpriseCode, zone, pairing } = token;
  const ordered = zone === undefined ? { server, dbUuid, enterpriseCode, pairing } : { server, dbUuid, enterpriseCode, zone, pairing };
  return CONNECTION_TOKEN_PREFIX + Buffer.from(JSON.stringify(ordered)).toString("base64url");
}

export class TokenError extends Error {
  override readonly name = "TokenError";
}

/** A token back into its fields (tests, and anyone checking what a token holds). */
export function parseConnectionToken(text: string): ConnectionToken {
  const trimmed = text.trim();
  if (!trimmed.startsWith(CONNECTION_TOKEN_PREFIX)) throw new TokenError(`a connection token starts with "${CONNECTION_TOKEN_PREFIX}"`);
  let raw: unknown;
  try {
    raw = JSON.parse(Buffer.from(trimmed.slice(CONNECTION_TOKEN_PREFIX.length), "base64url").toString("utf8"));
  } catch {
    throw new TokenError("the connection token is not base64url JSON");
  }
  const r = (typeof raw === "object" && raw !== null ? raw : {}) as Record<string, unknown>;
  const strings = ["server", "dbUuid", "enterpriseCode"].every((field) => typeof r[field] === "string");
  if (!strings || !(r.zone === undefined || typeof r.zone === "string") || !isPairingSecret(r.pairing)) {
    throw new TokenError("the connection token lacks the server, the database UUID, the subscription code or the pairing secret");
  }
  const token: ConnectionToken = { server: r.server as string, dbUuid: r.dbUuid as string, enterpriseCode: r.enterpriseCode as string, pairing: r.pairing };
  return typeof r.zone === "string" ? { ...token, zone: r.zone } : token;
}

/** Whether a recorded secret may still pair a box at `now`. */
export function pairingOpen(pairing: PairingRecord, now: number): boolean {
  return Date.parse(pairing.expiresAt) > now;
}

export interface IssuedPairing {
  token: string;
  expiresAt: string;
}

export interface TokenContext {
  server: string;
  dbUuid: string;
  enterpriseCode: string;
  zone?: string;
}

/** A new secret recorded in the store (expired ones dropped), and the token that carries it. */
export async function issuePairing(store: JsonStore, context: TokenContext, now: number): Promise<IssuedPairing> {
  const secret = newPairingSecret();
  const record: PairingRecord = {
    hash: pairingHash(secret),
    createdAt: new Date(now).toISOString(),
    expiresAt: new Date(now + PAIRING_VALIDITY_MS).toISOString(),
  };
  await store.change((draft) => {
    draft.pairings = [...draft.pairings.filter((p) => pairingOpen(p, now)), record].slice(-MAX_OPEN_PAIRINGS);
    return { result: undefined, write: true };
  });
  return { token: formatConnectionToken({ ...context, pairing: secret }), expiresAt: record.expiresAt };
}

/** What "Connect a box" needs from the running database. */
export interface ConnectSource {
  store: JsonStore;
  database: Database;
  /** The token's server: the URL boxes reach the database at. */
  publicUrl: URL;
  zone: string | null;
  clock: () => number;
  logger: Logger;
}

/**
 * "Connect a box": a new pairing secret and the token carrying it, logged without either. The IoT page's
 * POST and the demo (which pairs its own box) both come here, so the demo's box pairs as an installer's does.
 */
export async function connectBox(source: ConnectSource): Promise<IssuedPairing> {
  const { record } = source.database;
  const pairing = await issuePairing(
    source.store,
    { server: source.publicUrl.toString(), dbUuid: record.dbUuid, enterpriseCode: record.enterpriseCode, ...(source.zone ? { zone: source.zone } : {}) },
    source.clock(),
  );
  source.logger.info({ event: "pairing_issued", expiresAt: pairing.expiresAt }, "a connection token was made");
  return pairing;
}
