/**
 * config.json: what the box is connected to and what the issuer gave it. Validated here, once, when read;
 * the rest of the box gets a typed BoxConfig. A file that is not valid is an error naming the file and is
 * never overwritten: it may hold the only copy of the subscription code.
 */
import { readFile } from "node:fs/promises";
import { randomUUID } from "node:crypto";
import { hostname } from "node:os";
import { writeFileAtomic, isLabel, isLogLevel, isZone, LOG_LEVELS } from "@boxcert/shared";
import type { LogLevel } from "@boxcert/shared";
import type { DataPaths } from "./data-dir.ts";

/** The shared vocabulary (@boxcert/shared log-level.ts): debug, info, warning, error. */
export type { LogLevel };

export interface BoxConfig {
  /** The box's stable identifier, a random UUID made once. */
  identifier: string;
  name: string;
  /** The connected ERP server's URL; null when the box is not connected. */
  server: string | null;
  dbUuid: string | null;
  /** The subscription code: a secret, never logged. */
  enterpriseCode: string | null;
  logLevel: LogLevel;
  /** Assigned by the issuer at enrollment, for the database in `enrolledFor`. */
  label: string | null;
  zone: string | null;
  enrolledFor: string | null;
  /**
   * The zone the last connection token named (null when none did): an enrollment into another zone is
   * refused (load.ts). A connection without a zone keeps it, so connecting never removes a pin.
   */
  expectedZone: string | null;
  /**
   * The `--zone` the agent was last started with (null without it), written at each start: the vendor's
   * pin, which wins over expectedZone. Saved so that `boxcert box connect` (another process) and the
   * homepage can refuse a token for another zone.
   */
  zonePin: string | null;
  /** The homepage's optional admin password (admin-password.ts), or null: the gear menu is open to the LAN. */
  adminPassword: AdminPasswordHash | null;
  /**
   * The one-time pairing secret a connection token brought (docs/erp.md), kept until the box has registered
   * with the database; a secret (0600 file, never logged). null once registered, or when the connection
   * brought none.
   */
  pairingSecret: string | null;
  /**
   * The origin of the database the box registered with (database/registration.ts): the only origin whose
   * pages may call the box's status and POS test across origins (web/cors.ts). null until registered.
   */
  pairedOrigin: string | null;
  /** The fingerprint of the facts last registered (name, IP, HTTPS address, certificate expiry, version, HTTP port). */
  registeredFingerprint: string | null;
  /** When the box last registered with the database, ISO 8601. */
  registeredAt: string | null;
}

/** scrypt of the admin password; never the password itself. */
export interface AdminPasswordHash {
  scheme: "scrypt";
  /** base64 */
  salt: string;
  /** base64 */
  hash: string;
  N: number;
  r: number;
  p: number;
}

export class ConfigError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "ConfigError";
  }
}

/**
 * What a URL the box shows and logs may not carry: a user name or password (`https://user:pass@erp/`), a
 * query (`?apikey=...`) or a fragment. The homepage, /api/status and the log show the server's URL to
 * anyone on the LAN, so a secret in it would be everyone's; a database's address needs none of them.
 * Null when the URL carries none. The messages never repeat the URL: it is the secret.
 */
export function urlSecretProblem(url: URL): string | null {
  if (url.username !== "" || url.password !== "") return "must not contain a user name or password (user:password@): they would be shown to anyone on the network";
  if (url.search !== "" || url.href.includes("?")) return "must not contain a query (?…): a key in it would be shown to anyone on the network";
  if (url.hash !== "" || url.href.includes("#")) return "must not contain a fragment (#…)";
  return null;
}

/** An ERP server URL: http or https, with a host, no credentials or query. Returns it normalised. */
export function parseServerUrl(value: string): string {
  let url: URL;
  try {
    url = new URL(value.trim());
  } catch {
    throw new ConfigError("server URL is not a valid URL (it looks like https://erp.example.com/)");
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new ConfigError(`server URL must start with http:// or https://, not "${url.protocol}"`);
  }
  if (!url.hostname) throw new ConfigError("server URL has no host");
  const secret = urlSecretProblem(url);
  if (secret) throw new ConfigError(`server URL ${secret}`);
  return url.toString();
}

/** A database UUID or subscription code: printable, no spaces, at most 200 characters. */
export function parseCredentialField(field: "database UUID" | "subscription code", value: string): string {
  const trimmed = value.trim();
  if (!/^[\x21-\x7e]{1,200}$/.test(trimmed)) {
    throw new ConfigError(`${field} must be 1 to 200 printable characters without spaces`);
  }
  return trimmed;
}

function newConfig(name: string | undefined): BoxConfig {
  return {
    identifier: randomUUID(),
    name: name ?? hostname(),
    server: null,
    dbUuid: null,
    enterpriseCode: null,
    logLevel: "info",
    label: null,
    zone: null,
    enrolledFor: null,
    expectedZone: null,
    zonePin: null,
    adminPassword: null,
    pairingSecret: null,
    pairedOrigin: null,
    registeredFingerprint: null,
    registeredAt: null,
  };
}

function validateAdminPassword(path: string, value: unknown): AdminPasswordHash | null {
  if (value === undefined || value === null) return null;
  const v = value as Record<string, unknown>;
  const ok =
    typeof v === "object" &&
    v.scheme === "scrypt" &&
    typeof v.salt === "string" &&
    typeof v.hash === "string" &&
    [v.N, v.r, v.p].every((n) => Number.isSafeInteger(n) && (n as number) > 0);
  if (!ok) throw new ConfigError(`${path}: "adminPassword" must be {scheme: "scrypt", salt, hash, N, r, p}`);
  return { scheme: "scrypt", salt: v.salt as string, hash: v.hash as string, N: v.N as number, r: v.r as number, p: v.p as number };
}

/**
 * A connection token, as the database's IoT page hands it out (docs/erp.md): `boxcert1.` + base64url of the
 * JSON `{"server": URL, "dbUuid": UUID, "enterpriseCode": CODE, "zone": ZONE, "pairing": SECRET}`, the zone
 * and the pairing secret optional (older tokens have neither). Pasting it is `boxcert box connect` with the
 * three values, the zone to expect, and the secret the box registers with the database with.
 */
export const CONNECTION_TOKEN_PREFIX = "boxcert1.";

/** What connecting sets in config.json: it is applied as a patch, hence the config's field names. */
export interface Connection {
  server: string;
  dbUuid: string;
  enterpriseCode: string;
  /** The token's `zone`: the zone the box must be enrolled in (not the enrollment's `zone`, which the issuer gives). */
  expectedZone?: string;
  /** The token's `pairing`: the one-time secret of the box's first registration with the database. */
  pairingSecret?: string;
}

export function formatConnectionToken(connection: Connection): string {
  const { expectedZone, pairingSecret, ...values } = connection;
  const token = {
    ...values,
    ...(expectedZone === undefined ? {} : { zone: expectedZone }),
    ...(pairingSecret === undefined ? {} : { pairing: pairingSecret }),
  };
  return CONNECTION_TOKEN_PREFIX + Buffer.from(JSON.stringify(token)).toString("base64url");
}

/**
 * A pairing secret as a database makes it (32 random bytes, base64url: 43 characters), with room for other
 * lengths: at least 16 characters (96 bits), so it cannot be guessed within its 24 hours, and at most 128.
 */
const PAIRING_SECRET = /^[A-Za-z0-9_-]{16,128}$/;

export function isPairingSecret(value: unknown): value is string {
  return typeof value === "string" && PAIRING_SECRET.test(value);
}

/** The token's pairing secret; absent (or null) in older tokens. The message never repeats it. */
function tokenPairing(value: unknown): { pairingSecret?: string } {
  if (value === undefined || value === null) return {};
  if (!isPairingSecret(value)) throw new ConfigError("the connection token's pairing secret is not valid (16 to 128 base64url characters); copy the token again whole");
  return { pairingSecret: value };
}

/** The token's zone, lower-cased; absent (or null) in older tokens. */
function tokenZone(value: unknown): { expectedZone?: string } {
  if (value === undefined || value === null) return {};
  const zone = typeof value === "string" ? value.trim().toLowerCase() : "";
  if (!isZone(zone)) throw new ConfigError("the connection token's zone is not a DNS zone name; copy the token again whole");
  return { expectedZone: zone };
}

/**
 * The connection, unless its token names a zone other than the one the box is pinned to (`boxcert box
 * --zone`, saved as zonePin): the vendor's pin wins, and such a token would only make the box refuse
 * every enrollment.
 */
export function withinZonePin(connection: Connection, zonePin: string | null): Connection {
  if (zonePin !== null && connection.expectedZone !== undefined && connection.expectedZone !== zonePin) {
    throw new ConfigError(
      `the connection token is for zone ${connection.expectedZone}, but this box is pinned to zone ${zonePin} (boxcert box --zone); ask for a token of ${zonePin}`,
    );
  }
  return connection;
}

export function parseConnectionToken(token: string): Connection {
  const trimmed = token.trim();
  if (!trimmed.startsWith(CONNECTION_TOKEN_PREFIX) || trimmed.length > 4096) {
    throw new ConfigError(`a connection token starts with "${CONNECTION_TOKEN_PREFIX}"; copy it whole from the database's IoT page`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(Buffer.from(trimmed.slice(CONNECTION_TOKEN_PREFIX.length), "base64url").toString("utf8"));
  } catch {
    throw new ConfigError("the connection token is damaged (not valid base64url JSON); copy it again whole");
  }
  const r = (typeof raw === "object" && raw !== null ? raw : {}) as Record<string, unknown>;
  if (typeof r.server !== "string" || typeof r.dbUuid !== "string" || typeof r.enterpriseCode !== "string") {
    throw new ConfigError("the connection token lacks the server, the database UUID or the subscription code");
  }
  return {
    ...parseConnection({ server: r.server, dbUuid: r.dbUuid, enterpriseCode: r.enterpriseCode }),
    ...tokenZone(r.zone),
    ...tokenPairing(r.pairing),
  };
}

/** The origin of a server URL (`https://erp.example`), the form browsers send in `Origin`. */
export function originOf(server: string): string {
  return new URL(server).origin;
}

/**
 * The origin whose pages may call the box across origins: the one it registered with, while it is still
 * the origin of the server it is connected to (a connection to another server ends the pairing).
 */
export function pairedOriginOf(config: Pick<BoxConfig, "server" | "pairedOrigin">): string | null {
  if (config.server === null || config.pairedOrigin === null) return null;
  return originOf(config.server) === config.pairedOrigin ? config.pairedOrigin : null;
}

/**
 * What connecting writes: the connection, its pairing secret or none (a secret held for another
 * connection must not be sent to this server), and, for a server of another origin, no registration:
 * the box is paired with a database at one origin.
 */
export function connectionPatch(connection: Connection, current: BoxConfig): Partial<BoxConfig> {
  const { pairingSecret, ...values } = connection;
  const sameOrigin = current.pairedOrigin !== null && originOf(values.server) === current.pairedOrigin;
  return {
    ...values,
    pairingSecret: pairingSecret ?? null,
    ...(sameOrigin ? {} : { pairedOrigin: null, registeredFingerprint: null, registeredAt: null }),
  };
}

/** The three values of a connection, validated (`boxcert box connect`, the homepage's Connect dialog). */
export function parseConnection(values: Connection): Connection {
  return {
    server: parseServerUrl(values.server),
    dbUuid: parseCredentialField("database UUID", values.dbUuid),
    enterpriseCode: parseCredentialField("subscription code", values.enterpriseCode),
  };
}

function validate(path: string, raw: unknown): BoxConfig {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    throw new ConfigError(`${path}: expected a JSON object`);
  }
  const record = raw as Record<string, unknown>;
  const text = (key: keyof BoxConfig, optional: boolean): string | null => {
    const value = record[key];
    if (value === undefined || value === null) {
      if (optional) return null;
      throw new ConfigError(`${path}: "${key}" is missing`);
    }
    if (typeof value !== "string" || value === "") throw new ConfigError(`${path}: "${key}" must be a non-empty string`);
    return value;
  };
  const identifier = text("identifier", false) as string;
  const logLevel = record.logLevel ?? "info";
  if (!isLogLevel(logLevel)) throw new ConfigError(`${path}: "logLevel" must be one of ${LOG_LEVELS.join(", ")}`);
  const zoneField = (key: "zone" | "expectedZone" | "zonePin"): string | null => {
    const value = text(key, true);
    if (value !== null && !isZone(value)) throw new ConfigError(`${path}: "${key}" is not a valid zone`);
    return value;
  };
  const label = text("label", true);
  if (label !== null && !isLabel(label)) throw new ConfigError(`${path}: "label" is not a valid label`);
  const pairingSecret = text("pairingSecret", true);
  // The message names the field, never its value: it is a secret.
  if (pairingSecret !== null && !isPairingSecret(pairingSecret)) throw new ConfigError(`${path}: "pairingSecret" is not a valid pairing secret`);
  const pairedOrigin = text("pairedOrigin", true);
  if (pairedOrigin !== null && !isOrigin(pairedOrigin)) throw new ConfigError(`${path}: "pairedOrigin" must be an origin such as https://erp.example`);
  const registeredAt = text("registeredAt", true);
  if (registeredAt !== null && Number.isNaN(Date.parse(registeredAt))) throw new ConfigError(`${path}: "registeredAt" must be an ISO 8601 time`);
  const zone = zoneField("zone");
  const server = text("server", true);
  if (server !== null) {
    try {
      parseServerUrl(server);
    } catch (err) {
      throw new ConfigError(`${path}: "server": ${(err as Error).message}`);
    }
  }
  return {
    identifier,
    name: text("name", true) ?? hostname(),
    server,
    dbUuid: text("dbUuid", true),
    enterpriseCode: text("enterpriseCode", true),
    logLevel,
    label,
    zone,
    enrolledFor: text("enrolledFor", true),
    expectedZone: zoneField("expectedZone"),
    zonePin: zoneField("zonePin"),
    adminPassword: validateAdminPassword(path, record.adminPassword),
    pairingSecret,
    pairedOrigin,
    registeredFingerprint: text("registeredFingerprint", true),
    registeredAt,
  };
}

/** An http(s) origin exactly as URL serialises it (what browsers send in `Origin`). */
function isOrigin(value: string): boolean {
  try {
    const url = new URL(value);
    return (url.protocol === "http:" || url.protocol === "https:") && url.origin === value;
  } catch {
    return false;
  }
}

/** " (line L, column C)" where JSON.parse stopped, when its message gives the position; never the text itself. */
function jsonErrorPlace(text: string, err: unknown): string {
  const position = /position (\d+)/.exec((err as Error).message)?.[1];
  if (position === undefined) return "";
  const before = text.slice(0, Number(position)).split("\n");
  return ` (line ${before.length}, column ${(before.at(-1) ?? "").length + 1})`;
}

/** The stored configuration, or null when there is none yet. Throws ConfigError when the file is not valid. */
export async function readConfig(paths: DataPaths): Promise<BoxConfig | null> {
  let text: string;
  try {
    text = await readFile(paths.config, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw new ConfigError(`${paths.config}: cannot be read: ${(err as Error).message}`, { cause: err });
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    // Not the parser's message: it quotes the text around the error, which may be the subscription code.
    throw new ConfigError(`${paths.config}: not valid JSON${jsonErrorPlace(text, err)}; fix the file or move it away to start afresh`);
  }
  return validate(paths.config, raw);
}

export async function writeConfig(paths: DataPaths, config: BoxConfig): Promise<void> {
  await writeFileAtomic(paths.config, `${JSON.stringify(config, null, 2)}\n`, 0o600);
}

/** Reads the configuration, making it (with a new identifier) the first time. */
export async function loadOrCreateConfig(paths: DataPaths, name?: string): Promise<BoxConfig> {
  const existing = await readConfig(paths);
  if (existing) return existing;
  const config = newConfig(name);
  await writeConfig(paths, config);
  return config;
}

export type ConfigPatch = Partial<Omit<BoxConfig, "identifier">>;

/**
 * Read, change, write. Reads the file again first because another process (`boxcert box connect` while the
 * agent runs) may have changed it since this one last read it. A function patch is given the file as read
 * then, for a change that depends on it (a registration that ended while the box was connected elsewhere).
 */
export function updateConfig(paths: DataPaths, patch: ConfigPatch | ((current: BoxConfig) => ConfigPatch)): Promise<BoxConfig> {
  // One read-change-write at a time per file in this process: the homepage (Credential, Log level...)
  // and the agent (label after enrollment) must not lose each other's change.
  const previous = pendingUpdates.get(paths.config) ?? Promise.resolve();
  const run = previous.then(async () => {
    const current = (await readConfig(paths)) ?? newConfig(undefined);
    const next: BoxConfig = { ...current, ...(typeof patch === "function" ? patch(current) : patch) };
    await writeConfig(paths, next);
    return next;
  });
  const settled = run.then(
    () => undefined,
    () => undefined,
  );
  pendingUpdates.set(paths.config, settled);
  void settled.then(() => {
    if (pendingUpdates.get(paths.config) === settled) pendingUpdates.delete(paths.config);
  });
  return run;
}

const pendingUpdates = new Map<string, Promise<void>>();
