/**
 * What operators do to the registry (`boxcert admin`, and the demo and tests setting up customers):
 * subscriptions, databases, boxes and certificates, added, changed, listed, freed and revoked. The
 * issuance path reads and writes through issuance-queries.ts instead.
 */
import type { Kysely, Transaction } from "kysely";
import type { Dialect, Store } from "./db.ts";
import {
  DATABASE_KINDS,
  SUBSCRIPTION_STATES,
  type Database,
  type DatabaseKind,
  type SubscriptionState,
} from "./schema.ts";
import { isUniqueViolation, RegistryError } from "./registry-error.ts";
import { lockSubscription, type SubscriptionKey } from "./subscription-lock.ts";

export { RegistryError };

export interface SubscriptionRow {
  code: string;
  state: SubscriptionState;
  iotBoxSeats: number;
  seatsTaken: number;
  createdAt: string;
}
export interface DatabaseRow {
  uuid: string;
  subscription: string;
  kind: DatabaseKind;
  /** Whether the database's own key is recorded (from its first report; the key itself is not shown). */
  keyRecorded: boolean;
  /** When the database last reported itself to the issuer; null if it never did. */
  reportedAt: string | null;
  createdAt: string;
}
export interface BoxRow {
  label: string;
  identifier: string;
  database: string;
  seat: number;
  createdAt: string;
  lastSeenAt: string;
  freedAt: string | null;
  revokedAt: string | null;
}
export interface CertificateRow {
  serial: string;
  label: string;
  names: string[];
  source: string;
  notBefore: string;
  notAfter: string;
  renewAfter: string;
  createdAt: string;
  revokedAt: string | null;
}
export function parseState(value: string): SubscriptionState {
  const state = value.replace("-", "_") as SubscriptionState;
  if (!SUBSCRIPTION_STATES.includes(state)) {
    throw new RegistryError("invalid", `unknown subscription state "${value}" (expected one of: ${SUBSCRIPTION_STATES.join(", ")})`);
  }
  return state;
}

export function parseKind(value: string): DatabaseKind {
  if (!(DATABASE_KINDS as readonly string[]).includes(value)) {
    throw new RegistryError("invalid", `unknown database kind "${value}" (expected one of: ${DATABASE_KINDS.join(", ")})`);
  }
  return value as DatabaseKind;
}

function parseSeats(value: number): number {
  if (!Number.isInteger(value) || value < 0 || value > 1_000_000) {
    throw new RegistryError("invalid", `IoT-box seats must be a whole number from 0 to 1000000, not ${value}`);
  }
  return value;
}

export class RegistryOperations {
  private readonly db: Kysely<Database>;
  private readonly dialect: Dialect;
  constructor(store: Store) {
    this.db = store.db;
    this.dialect = store.dialect;
  }

  // ---- subscriptions ----

  async addSubscription(input: { code: string; state: string; seats: number }, now = new Date()): Promise<SubscriptionRow> {
    const code = input.code.trim();
    if (!code) throw new RegistryError("invalid", "the subscription code is empty");
    const state = parseState(input.state);
    const seats = parseSeats(input.seats);
    try {
      await this.db
        .insertInto("subscriptions")
        .values({ code, state, iot_box_seats: seats, created_at: now.toISOString() })
        .execute();
    } catch (err) {
      if (isUniqueViolation(err)) throw new RegistryError("conflict", `subscription ${code} already exists`);
      throw err;
    }
    return this.getSubscription(code);
  }

  async setSubscription(code: string, changes: { state?: string; seats?: number }): Promise<SubscriptionRow> {
    const values: { state?: SubscriptionState; iot_box_seats?: number } = {};
    if (changes.state !== undefined) values.state = parseState(changes.state);
    if (changes.seats !== undefined) values.iot_box_seats = parseSeats(changes.seats);
    if (Object.keys(values).length === 0) throw new RegistryError("invalid", "nothing to change: give --state and/or --seats");
    const result = await this.db.updateTable("subscriptions").set(values).where("code", "=", code).executeTakeFirst();
    if (Number(result.numUpdatedRows) === 0) throw new RegistryError("not_found", `unknown subscription ${code}`);
    return this.getSubscription(code);
  }

  async getSubscription(code: string): Promise<SubscriptionRow> {
    const rows = await this.listSubscriptions(code);
    const row = rows[0];
    if (!row) throw new RegistryError("not_found", `unknown subscription ${code}`);
    return row;
  }

  async listSubscriptions(code?: string): Promise<SubscriptionRow[]> {
    let query = this.db
      .selectFrom("subscriptions as s")
      .select((eb) => [
        "s.code",
        "s.state",
        "s.iot_box_seats",
        "s.created_at",
        eb
          .selectFrom("boxes as b")
          .innerJoin("databases as d", "d.id", "b.database_id")
          .whereRef("d.subscription_id", "=", "s.id")
          .where("b.freed_at", "is", null)
          .select((e) => e.fn.countAll<number>().as("n"))
          .as("seats_taken"),
      ])
      .orderBy("s.code");
    if (code !== undefined) query = query.where("s.code", "=", code);
    const rows = await query.execute();
    return rows.map((r) => ({
      code: r.code,
      state: r.state,
      iotBoxSeats: Number(r.iot_box_seats),
      seatsTaken: Number(r.seats_taken ?? 0),
      createdAt: r.created_at,
    }));
  }

  // ---- databases ----

  /**
   * Runs `fn` under the lock of the subscription `key` names (the one database reports and enrollment
   * take), so the one-production-database rule is checked against databases nobody is changing meanwhile.
   */
  private underSubscriptionLock<T>(key: SubscriptionKey, fn: (trx: Transaction<Database>, subscriptionId: number) => Promise<T>): Promise<T> {
    return this.db.transaction().execute(async (trx) => {
      const subscription = await lockSubscription(trx, this.dialect, key);
      if (!subscription) {
        throw new RegistryError("not_found", "code" in key ? `unknown subscription ${key.code}` : `unknown database ${key.databaseUuid}`);
      }
      return fn(trx, subscription.id);
    });
  }

  /** A subscription has at most one production database: refuses making `uuid` a second one. */
  private async refuseSecondProduction(trx: Transaction<Database>, subscriptionId: number, uuid: string): Promise<void> {
    const other = await trx
      .selectFrom("databases as d")
      .innerJoin("subscriptions as s", "s.id", "d.subscription_id")
      .select(["d.uuid", "s.code"])
      .where("d.subscription_id", "=", subscriptionId)
      .where("d.kind", "=", "production")
      .where("d.uuid", "!=", uuid)
      .executeTakeFirst();
    if (!other) return;
    throw new RegistryError(
      "conflict",
      `subscription ${other.code} already has a production database (${other.uuid}); a subscription has at most one: ` +
        `first set that one's kind (boxcert admin database set ${other.uuid} --kind duplicate)`,
    );
  }

  async addDatabase(input: { uuid: string; subscription: string; kind: string }, now = new Date()): Promise<DatabaseRow> {
    const uuid = input.uuid.trim().toLowerCase();
    if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(uuid)) {
      throw new RegistryError("invalid", `"${input.uuid}" is not a UUID`);
    }
    const kind = parseKind(input.kind);
    try {
      await this.underSubscriptionLock({ code: input.subscription }, async (trx, subscriptionId) => {
        if (kind === "production") await this.refuseSecondProduction(trx, subscriptionId, uuid);
        await trx.insertInto("databases").values({ uuid, subscription_id: subscriptionId, kind, created_at: now.toISOString() }).execute();
      });
    } catch (err) {
      if (isUniqueViolation(err)) throw new RegistryError("conflict", `database ${uuid} already exists`);
      throw err;
    }
    return this.getDatabase(uuid);
  }

  /**
   * Changes a database's kind or subscription; the operator's way to decide which of two databases that
   * claim production is the production one (after setting the other's kind).
   */
  async setDatabase(uuid: string, changes: { kind?: string; subscription?: string }): Promise<DatabaseRow> {
    const kind = changes.kind !== undefined ? parseKind(changes.kind) : undefined;
    if (kind === undefined && changes.subscription === undefined) throw new RegistryError("invalid", "nothing to change: give --kind and/or --subscription");
    const key = uuid.toLowerCase();
    // The lock of the subscription the database ends up in: that is where a second production one would be.
    const target: SubscriptionKey = changes.subscription !== undefined ? { code: changes.subscription } : { databaseUuid: key };
    await this.underSubscriptionLock(target, async (trx, subscriptionId) => {
      const database = await trx.selectFrom("databases").select("kind").where("uuid", "=", key).executeTakeFirst();
      if (!database) throw new RegistryError("not_found", `unknown database ${uuid}`);
      if ((kind ?? database.kind) === "production") await this.refuseSecondProduction(trx, subscriptionId, key);
      await trx
        .updateTable("databases")
        .set({ ...(kind !== undefined ? { kind } : {}), subscription_id: subscriptionId })
        .where("uuid", "=", key)
        .execute();
    });
    return this.getDatabase(uuid);
  }

  async getDatabase(uuid: string): Promise<DatabaseRow> {
    const row = (await this.listDatabases()).find((d) => d.uuid === uuid.toLowerCase());
    if (!row) throw new RegistryError("not_found", `unknown database ${uuid}`);
    return row;
  }

  async listDatabases(): Promise<DatabaseRow[]> {
    const rows = await this.db
      .selectFrom("databases as d")
      .innerJoin("subscriptions as s", "s.id", "d.subscription_id")
      .select(["d.uuid", "s.code", "d.kind", "d.database_key", "d.reported_at", "d.created_at"])
      .orderBy("d.uuid")
      .execute();
    return rows.map((r) => ({
      uuid: r.uuid,
      subscription: r.code,
      kind: r.kind,
      keyRecorded: r.database_key !== null,
      reportedAt: r.reported_at,
      createdAt: r.created_at,
    }));
  }

  // ---- boxes ----

  async listBoxes(options: { includeFreed?: boolean } = {}): Promise<BoxRow[]> {
    let query = this.db
      .selectFrom("boxes as b")
      .innerJoin("databases as d", "d.id", "b.database_id")
      .select(["b.label", "b.identifier", "d.uuid", "b.seat", "b.created_at", "b.last_seen_at", "b.freed_at", "b.revoked_at"])
      .orderBy("b.created_at");
    if (!options.includeFreed) query = query.where("b.freed_at", "is", null);
    const rows = await query.execute();
    return rows.map((r) => ({
      label: r.label,
      identifier: r.identifier,
      database: r.uuid,
      seat: Number(r.seat),
      createdAt: r.created_at,
      lastSeenAt: r.last_seen_at,
      freedAt: r.freed_at,
      revokedAt: r.revoked_at,
    }));
  }

  /** Frees a box (by label or identifier): its seat and identity are released and its label stops resolving. */
  async freeBox(labelOrIdentifier: string, now = new Date()): Promise<BoxRow> {
    const key = labelOrIdentifier.trim().toLowerCase();
    const matches = await this.db
      .selectFrom("boxes")
      .select(["id", "label"])
      .where("freed_at", "is", null)
      .where((eb) => eb.or([eb("label", "=", key), eb("identifier", "=", labelOrIdentifier.trim())]))
      .execute();
    if (matches.length === 0) throw new RegistryError("not_found", `no active box with label or identifier ${labelOrIdentifier}`);
    if (matches.length > 1) {
      throw new RegistryError("conflict", `${matches.length} boxes match ${labelOrIdentifier}; free it by label (${matches.map((m) => m.label).join(", ")})`);
    }
    const match = matches[0]!;
    await this.db.updateTable("boxes").set({ freed_at: now.toISOString() }).where("id", "=", match.id).execute();
    const row = (await this.listBoxes({ includeFreed: true })).find((b) => b.label === match.label);
    return row!;
  }

  /**
   * Revokes a box (a stolen or decommissioned box): its certificates are revoked, its name stops
   * resolving, and it gets no certificate until an operator frees it (a replacement then enrolls anew).
   */
  async revokeBox(label: string, now = new Date()): Promise<BoxRow> {
    const key = label.trim().toLowerCase();
    const at = now.toISOString();
    await this.db.transaction().execute(async (trx) => {
      const box = await trx.selectFrom("boxes").select(["id", "revoked_at"]).where("label", "=", key).where("freed_at", "is", null).executeTakeFirst();
      if (!box) throw new RegistryError("not_found", `no active box with label ${label}`);
      if (box.revoked_at !== null) throw new RegistryError("conflict", `box ${key} is already revoked`);
      await trx.updateTable("boxes").set({ revoked_at: at }).where("id", "=", box.id).execute();
      await trx.updateTable("certificates").set({ revoked_at: at }).where("box_id", "=", box.id).where("revoked_at", "is", null).execute();
    });
    return (await this.listBoxes()).find((b) => b.label === key)!;
  }

  // ---- certificates ----

  async listCertificates(options: { label?: string } = {}): Promise<CertificateRow[]> {
    let query = this.db
      .selectFrom("certificates as c")
      .innerJoin("boxes as b", "b.id", "c.box_id")
      .select(["c.serial", "b.label", "c.names", "c.source", "c.not_before", "c.not_after", "c.renew_after", "c.created_at", "c.revoked_at"])
      .orderBy("c.created_at");
    if (options.label) query = query.where("b.label", "=", options.label.toLowerCase());
    const rows = await query.execute();
    return rows.map((r) => ({
      serial: r.serial,
      label: r.label,
      names: r.names.split(","),
      source: r.source,
      notBefore: r.not_before,
      notAfter: r.not_after,
      renewAfter: r.renew_after,
      createdAt: r.created_at,
      revokedAt: r.revoked_at,
    }));
  }

  async revokeCertificate(serial: string, now = new Date()): Promise<CertificateRow> {
    const normalized = serial.trim().toLowerCase().replaceAll(":", "");
    const result = await this.db
      .updateTable("certificates")
      .set({ revoked_at: now.toISOString() })
      .where("serial", "=", normalized)
      .where("revoked_at", "is", null)
      .executeTakeFirst();
    if (Number(result.numUpdatedRows) === 0) {
      const exists = await this.db.selectFrom("certificates").select("id").where("serial", "=", normalized).executeTakeFirst();
      throw new RegistryError(exists ? "conflict" : "not_found", exists ? `certificate ${normalized} is already revoked` : `unknown certificate ${normalized}`);
    }
    return (await this.listCertificates()).find((c) => c.serial === normalized)!;
  }
}
