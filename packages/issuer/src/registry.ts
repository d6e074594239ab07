/**
 * The registry: subscriptions, databases, boxes and certificates in the store. Admin operations and the
 * issuance path's reads and writes; decisions live elsewhere (eligibility.ts, issuance.ts).
 */
import { sql, type Kysely, type Transaction } from "kysely";
import { newLabel } from "@boxcert/shared";
import type { Store } from "./store/db.ts";
import { PreparedQuery } from "./store/prepared.ts";
import { GroupCommit } from "./store/group-commit.ts";
import {
  DATABASE_KINDS,
  SUBSCRIPTION_STATES,
  type Database,
  type DatabaseKind,
  type SubscriptionState,
} from "./store/schema.ts";
import { decideEligibility, type Eligibility, type EligibilityFacts } from "./eligibility.ts";

export class RegistryError extends Error {
  constructor(
    readonly code: "not_found" | "conflict" | "invalid",
    message: string,
  ) {
    super(message);
    this.name = "RegistryError";
  }
}

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
export interface StoredCertificate {
  serial: string;
  names: string[];
  chainPem: string;
  notBefore: string;
  notAfter: string;
  renewAfter: string;
  publicKeySha256: string;
  /** The certificate source that issued it (CertificateSource.name or IssuedCertificate.source). */
  source: string;
}
export interface ActiveBox {
  id: number;
  label: string;
  identityKey: string;
  seat: number;
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

export interface NewCertificate {
  boxId: number;
  serial: string;
  names: string[];
  publicKeySha256: string;
  chainPem: string;
  source: string;
  notBefore: Date;
  notAfter: Date;
  renewAfter: Date;
  now: Date;
}

/** What Registry.issuanceState() reads for the certificate path. */
export interface IssuanceState {
  facts: EligibilityFacts;
  /** When the enrolled box was last seen (ISO 8601); null when it is not enrolled. */
  lastSeenAt: string | null;
  /** The box's newest unrevoked certificate: whether to hand it out again is decided from these. */
  latest: { id: number; publicKeySha256: string; renewAfter: string; notAfter: string } | null;
  /** Certificates the box got since the window's start, and when the oldest of them was made. */
  issuedSince: number;
  oldestSince: string | null;
}

/** A certificates row as the hot insert takes it (names comma-separated, dates ISO 8601). */
type CertificateValues = {
  serial: string;
  boxId: number;
  names: string;
  publicKeySha256: string;
  chainPem: string;
  source: string;
  notBefore: string;
  notAfter: string;
  renewAfter: string;
  createdAt: string;
};

/** The columns eligibility reads: the database, its subscription and the active box of the identifier. */
const FACT_COLUMNS = [
  "d.id as database_id",
  "d.kind",
  "s.id as subscription_id",
  "s.code",
  "s.state",
  "s.iot_box_seats",
  "b.id as box_id",
  "b.label",
  "b.identity_key",
  "b.seat",
  "b.revoked_at",
] as const;

interface FactRow {
  database_id: number;
  kind: DatabaseKind;
  subscription_id: number;
  code: string;
  state: SubscriptionState;
  iot_box_seats: number;
  box_id: number | null;
  label: string | null;
  identity_key: string | null;
  seat: number | null;
  revoked_at: string | null;
}

function factsFromRow(row: FactRow, takenSeats: number[]): EligibilityFacts {
  return {
    database: { id: row.database_id, kind: row.kind },
    subscription: { id: row.subscription_id, code: row.code, state: row.state, iotBoxSeats: Number(row.iot_box_seats) },
    box:
      row.box_id !== null
        ? { id: row.box_id, label: row.label!, identityKey: row.identity_key!, seat: Number(row.seat), revoked: row.revoked_at !== null }
        : null,
    takenSeats,
  };
}

/**
 * The statements of the certificate path, compiled once per store (store/prepared.ts); written with
 * kysely like the rest, so they stay portable between SQLite and PostgreSQL.
 */
function hotQueries(db: Kysely<Database>) {
  return {
    issuanceState: PreparedQuery.build(["dbUuid", "identifier", "since"], (v: { dbUuid: string; identifier: string; since: string }) =>
      db
        .selectFrom("databases as d")
        .innerJoin("subscriptions as s", "s.id", "d.subscription_id")
        .leftJoin("boxes as b", (join) =>
          join.onRef("b.database_id", "=", "d.id").on("b.identifier", "=", v.identifier).on("b.freed_at", "is", null),
        )
        .leftJoin("certificates as c", (join) =>
          join.on("c.id", "=", (eb) =>
            eb
              .selectFrom("certificates as l")
              .select("l.id")
              .whereRef("l.box_id", "=", "b.id")
              .where("l.revoked_at", "is", null)
              .orderBy("l.created_at", "desc")
              .orderBy("l.id", "desc")
              .limit(1),
          ),
        )
        .select((eb) => [
          ...FACT_COLUMNS,
          "b.last_seen_at",
          "c.id as latest_id",
          "c.public_key_sha256",
          "c.renew_after",
          "c.not_after",
          eb
            .selectFrom("certificates as w")
            .select((e) => e.fn.countAll<number | string>().as("n"))
            .whereRef("w.box_id", "=", "b.id")
            .where("w.created_at", ">=", v.since)
            .as("issued_since"),
          eb
            .selectFrom("certificates as w")
            .select((e) => e.fn.min("w.created_at").as("oldest"))
            .whereRef("w.box_id", "=", "b.id")
            .where("w.created_at", ">=", v.since)
            .as("oldest_since"),
        ])
        .where("d.uuid", "=", v.dbUuid),
    ),
    storedCertificate: PreparedQuery.build(["id"], (v: { id: number }) =>
      db
        .selectFrom("certificates")
        .select(["serial", "names", "chain_pem", "not_before", "not_after", "renew_after", "public_key_sha256", "source"])
        .where("id", "=", v.id)
        .where("revoked_at", "is", null),
    ),
    insertCertificate: PreparedQuery.build(
      ["serial", "boxId", "names", "publicKeySha256", "chainPem", "source", "notBefore", "notAfter", "renewAfter", "createdAt"],
      (v: CertificateValues) =>
        db.insertInto("certificates").values({
          serial: v.serial,
          box_id: v.boxId,
          names: v.names,
          public_key_sha256: v.publicKeySha256,
          chain_pem: v.chainPem,
          source: v.source,
          not_before: v.notBefore,
          not_after: v.notAfter,
          renew_after: v.renewAfter,
          created_at: v.createdAt,
          revoked_at: null,
        }),
    ),
    touchBox: PreparedQuery.build(["boxId", "at"], (v: { boxId: number; at: string }) =>
      db.updateTable("boxes").set({ last_seen_at: v.at }).where("id", "=", v.boxId),
    ),
  };
}
type HotQueries = ReturnType<typeof hotQueries>;

function isUniqueViolation(err: unknown): boolean {
  const e = err as { code?: string; message?: string };
  return e.code === "23505" || e.code === "SQLITE_CONSTRAINT_UNIQUE" || /UNIQUE constraint/.test(e.message ?? "");
}

export class Registry {
  readonly db: Kysely<Database>;
  private readonly hot: HotQueries;
  private readonly certificateWrites: GroupCommit<Database, { values: CertificateValues; touchBox: boolean }>;
  constructor(readonly store: Store) {
    this.db = store.db;
    const hot = (this.hot = hotQueries(store.db));
    this.certificateWrites = new GroupCommit(store.db, async (trx, { values, touchBox }) => {
      await hot.insertCertificate.execute(trx, values);
      if (touchBox) await hot.touchBox.execute(trx, { boxId: values.boxId, at: values.createdAt });
    });
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

  private async subscriptionId(code: string): Promise<number> {
    const row = await this.db.selectFrom("subscriptions").select("id").where("code", "=", code).executeTakeFirst();
    if (!row) throw new RegistryError("not_found", `unknown subscription ${code}`);
    return row.id;
  }

  async addDatabase(input: { uuid: string; subscription: string; kind: string }, now = new Date()): Promise<DatabaseRow> {
    const uuid = input.uuid.trim().toLowerCase();
    if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(uuid)) {
      throw new RegistryError("invalid", `"${input.uuid}" is not a UUID`);
    }
    const kind = parseKind(input.kind);
    const subscriptionId = await this.subscriptionId(input.subscription);
    try {
      await this.db
        .insertInto("databases")
        .values({ uuid, subscription_id: subscriptionId, kind, created_at: now.toISOString() })
        .execute();
    } catch (err) {
      if (isUniqueViolation(err)) throw new RegistryError("conflict", `database ${uuid} already exists`);
      throw err;
    }
    return this.getDatabase(uuid);
  }

  async setDatabase(uuid: string, changes: { kind?: string; subscription?: string }): Promise<DatabaseRow> {
    const values: { kind?: DatabaseKind; subscription_id?: number } = {};
    if (changes.kind !== undefined) values.kind = parseKind(changes.kind);
    if (changes.subscription !== undefined) values.subscription_id = await this.subscriptionId(changes.subscription);
    if (Object.keys(values).length === 0) throw new RegistryError("invalid", "nothing to change: give --kind and/or --subscription");
    const result = await this.db.updateTable("databases").set(values).where("uuid", "=", uuid.toLowerCase()).executeTakeFirst();
    if (Number(result.numUpdatedRows) === 0) throw new RegistryError("not_found", `unknown database ${uuid}`);
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
      .select(["d.uuid", "s.code", "d.kind", "d.created_at"])
      .orderBy("d.uuid")
      .execute();
    return rows.map((r) => ({ uuid: r.uuid, subscription: r.code, kind: r.kind, createdAt: r.created_at }));
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

  // ---- issuance path ----

  /** Everything eligibility needs, in two queries. */
  async eligibilityFacts(dbUuid: string, identifier: string, db: Kysely<Database> = this.db): Promise<EligibilityFacts> {
    const row = await db
      .selectFrom("databases as d")
      .innerJoin("subscriptions as s", "s.id", "d.subscription_id")
      .leftJoin("boxes as b", (join) =>
        join.onRef("b.database_id", "=", "d.id").on("b.identifier", "=", identifier).on("b.freed_at", "is", null),
      )
      .select(FACT_COLUMNS)
      .where("d.uuid", "=", dbUuid.toLowerCase())
      .executeTakeFirst();
    if (!row) return { database: null, subscription: null, box: null, takenSeats: [] };
    return factsFromRow(row, row.box_id === null ? await this.takenSeats(row.subscription_id, db) : []);
  }

  /** Seat numbers held by the subscription's active boxes. */
  private async takenSeats(subscriptionId: number, db: Kysely<Database> = this.db): Promise<number[]> {
    const seats = await db
      .selectFrom("boxes as b")
      .innerJoin("databases as d", "d.id", "b.database_id")
      .select("b.seat")
      .where("d.subscription_id", "=", subscriptionId)
      .where("b.freed_at", "is", null)
      .execute();
    return seats.map((s) => Number(s.seat));
  }

  /**
   * Enrolls a box: decides eligibility and, when it holds no seat yet, takes the lowest free one and a new
   * label, in one transaction that first takes the subscription's write lock, so two boxes racing for the
   * last seat cannot both get it (SQLite: the UPDATE takes the database write lock; PostgreSQL: the row lock).
   */
  async enroll(
    input: { dbUuid: string; enterpriseCode: string; identifier: string; identityKey: string },
    now = new Date(),
  ): Promise<{ eligibility: Eligibility; box: ActiveBox | null; created: boolean }> {
    return this.db.transaction().execute(async (trx) => {
      await this.lockSubscriptionOf(trx, input.dbUuid);
      const facts = await this.eligibilityFacts(input.dbUuid, input.identifier, trx);
      const eligibility = decideEligibility(facts, input.enterpriseCode);
      if (!eligibility.eligible) return { eligibility, box: facts.box, created: false };
      if (facts.box) return { eligibility, box: facts.box, created: false };
      const label = newLabel();
      const at = now.toISOString();
      const inserted = await trx
        .insertInto("boxes")
        .values({
          database_id: facts.database!.id,
          identifier: input.identifier,
          label,
          identity_key: input.identityKey,
          seat: eligibility.seat,
          created_at: at,
          last_seen_at: at,
        })
        .returning("id")
        .executeTakeFirstOrThrow();
      return {
        eligibility,
        box: { id: inserted.id, label, identityKey: input.identityKey, seat: eligibility.seat },
        created: true,
      };
    });
  }

  private async lockSubscriptionOf(trx: Transaction<Database>, dbUuid: string): Promise<void> {
    const sub = trx
      .selectFrom("databases")
      .select("subscription_id")
      .where("uuid", "=", dbUuid.toLowerCase());
    if (this.store.dialect === "postgres") {
      await sql`SELECT id FROM subscriptions WHERE id = (${sub}) FOR UPDATE`.execute(trx);
    } else {
      // A no-op write makes SQLite take the write lock now rather than at the first real write.
      await trx.updateTable("subscriptions").set({ code: sql`code` }).where("id", "=", sub).execute();
    }
  }

  /**
   * Everything the certificate path reads, in one statement: the eligibility facts, the box's newest
   * unrevoked certificate (enough to tell whether to hand it out again) and how many certificates it got
   * since `since` (the rate limit's window).
   */
  async issuanceState(dbUuid: string, identifier: string, since: Date): Promise<IssuanceState> {
    const { rows } = await this.hot.issuanceState.execute(this.db, { dbUuid: dbUuid.toLowerCase(), identifier, since: since.toISOString() });
    const row = rows[0];
    if (!row) return { facts: { database: null, subscription: null, box: null, takenSeats: [] }, lastSeenAt: null, latest: null, issuedSince: 0, oldestSince: null };
    // Only a box that is not enrolled needs the taken seats (eligibility tells "no free seat" from "not enrolled").
    const facts = factsFromRow(row, row.box_id === null ? await this.takenSeats(row.subscription_id) : []);
    return {
      facts,
      lastSeenAt: row.last_seen_at,
      latest:
        row.latest_id !== null
          ? { id: row.latest_id, publicKeySha256: row.public_key_sha256!, renewAfter: row.renew_after!, notAfter: row.not_after! }
          : null,
      issuedSince: Number(row.issued_since ?? 0),
      oldestSince: row.oldest_since ?? null,
    };
  }

  /** A certificate as the box gets it, if it exists and is not revoked. */
  async storedCertificate(id: number): Promise<StoredCertificate | null> {
    const { rows } = await this.hot.storedCertificate.execute(this.db, { id });
    const row = rows[0];
    if (!row) return null;
    return {
      serial: row.serial,
      names: row.names.split(","),
      chainPem: row.chain_pem,
      notBefore: row.not_before,
      notAfter: row.not_after,
      renewAfter: row.renew_after,
      publicKeySha256: row.public_key_sha256,
      source: row.source,
    };
  }

  /** Moves a certificate's renewAfter (the CA's renewal information moved its window). */
  async setRenewAfter(serial: string, renewAfter: Date): Promise<void> {
    await this.db.updateTable("certificates").set({ renew_after: renewAfter.toISOString() }).where("serial", "=", serial).execute();
  }

  /**
   * Records an issued certificate; with `touchBox`, also sets the box's last_seen_at to `now`, in the same
   * transaction. Resolves once committed; concurrent calls share a commit (store/group-commit.ts).
   */
  insertCertificate(input: NewCertificate, options: { touchBox?: boolean } = {}): Promise<void> {
    return this.certificateWrites.add({
      values: {
        serial: input.serial,
        boxId: input.boxId,
        names: input.names.join(","),
        publicKeySha256: input.publicKeySha256,
        chainPem: input.chainPem,
        source: input.source,
        notBefore: input.notBefore.toISOString(),
        notAfter: input.notAfter.toISOString(),
        renewAfter: input.renewAfter.toISOString(),
        createdAt: input.now.toISOString(),
      },
      touchBox: options.touchBox ?? false,
    });
  }
}
