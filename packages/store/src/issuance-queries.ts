/**
 * The issuance path's reads and writes: the facts eligibility is decided from, the seat a new box takes,
 * the box's latest certificate and its count in the rate limit's window, the certificate insert (group
 * commit) and the per-box store lock. Statements are compiled once per store (prepared.ts) and written with
 * kysely like the rest, so they stay portable between SQLite and PostgreSQL. No decision is made here: the
 * issuer decides (its eligibility.ts) from the facts these queries return.
 */
import type { Kysely } from "kysely";
import { newLabel } from "@boxcert/shared";
import type { Store } from "./db.ts";
import { PreparedQuery } from "./prepared.ts";
import { GroupCommit } from "./group-commit.ts";
import { withStoreLock, type StoreLockOptions } from "./lock.ts";
import { lockSubscription } from "./subscription-lock.ts";
import type { Database, DatabaseKind, SubscriptionState } from "./schema.ts";

/** What eligibility is decided from: the database, its subscription, the box if enrolled, the seats taken. */
export interface EligibilityFacts {
  database: { id: number; kind: DatabaseKind } | null;
  subscription: { id: number; code: string; state: SubscriptionState; iotBoxSeats: number } | null;
  /** The active (not freed) box with this identifier in this database, if enrolled. */
  box: { id: number; label: string; identityKey: string; seat: number; revoked: boolean } | null;
  /** Seat numbers held by the subscription's active boxes (read only for a box that is not enrolled). */
  takenSeats: number[];
}

export interface ActiveBox {
  id: number;
  label: string;
  identityKey: string;
  seat: number;
}

export interface StoredCertificate {
  serial: string;
  names: string[];
  chainPem: string;
  notBefore: string;
  notAfter: string;
  renewAfter: string;
  publicKeySha256: string;
  /** The certificate source that issued it (its name, or the one it stored with the certificate). */
  source: string;
}

export interface EnrollmentRequest {
  dbUuid: string;
  identifier: string;
  identityKey: string;
}

/**
 * What the caller decided from the facts read under the subscription's lock: `seat` is the seat a box that
 * is not enrolled takes (null: it takes none), `result` is handed back as it is.
 */
export interface SeatDecision<T> {
  seat: number | null;
  result: T;
}

export interface Enrollment<T> {
  result: T;
  facts: EligibilityFacts;
  /** The enrolled box: the one found, or the one just made; null when not enrolled. */
  box: ActiveBox | null;
  created: boolean;
}

const NO_FACTS: EligibilityFacts = { database: null, subscription: null, box: null, takenSeats: [] };

export interface NewCertificate {
  boxId: number;
  /**
   * The box's latest certificate when the caller read its state (IssuanceState.latest.id, 0 if none): a
   * certificate for the same key recorded after it is answered instead (insertCertificate). Absent: no check.
   */
  latestIdSeen?: number;
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

/** What IssuanceQueries.issuanceState() reads for the certificate path. */
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

/** The statements of the certificate path, compiled once per store. */
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
    // Writes the box's row unchanged: takes its row lock (PostgreSQL) or the write lock (SQLite) first.
    lockBox: PreparedQuery.build(["boxId"], (v: { boxId: number }) =>
      db.updateTable("boxes").set((eb) => ({ last_seen_at: eb.ref("last_seen_at") })).where("id", "=", v.boxId),
    ),
    sameKeySince: PreparedQuery.build(["boxId", "publicKeySha256", "afterId"], (v: { boxId: number; publicKeySha256: string; afterId: number }) =>
      db
        .selectFrom("certificates")
        .select(["serial", "names", "chain_pem", "not_before", "not_after", "renew_after", "public_key_sha256", "source"])
        .where("box_id", "=", v.boxId)
        .where("public_key_sha256", "=", v.publicKeySha256)
        .where("id", ">", v.afterId)
        .where("revoked_at", "is", null)
        .orderBy("id", "desc")
        .limit(1),
    ),
  };
}
type HotQueries = ReturnType<typeof hotQueries>;


export class IssuanceQueries {
  private readonly db: Kysely<Database>;
  private readonly hot: HotQueries;
  private readonly certificateWrites: GroupCommit<Database, { values: CertificateValues; touchBox: boolean; latestIdSeen: number | undefined }, StoredCertificate | null>;
  constructor(private readonly store: Store) {
    this.db = store.db;
    const hot = (this.hot = hotQueries(store.db));
    this.certificateWrites = new GroupCommit(store.db, async (trx, { values, touchBox, latestIdSeen }) => {
      // The box's row first: two processes recording a certificate for one box are serialised here, and the
      // second sees the first's. A request that raced another for the same key on another process (one issuer
      // process serialises its own per box) answers the certificate recorded first; its own is never sent.
      if (touchBox) await hot.touchBox.execute(trx, { boxId: values.boxId, at: values.createdAt });
      if (latestIdSeen !== undefined) {
        if (!touchBox) await hot.lockBox.execute(trx, { boxId: values.boxId });
        const { rows } = await hot.sameKeySince.execute(trx, { boxId: values.boxId, publicKeySha256: values.publicKeySha256, afterId: latestIdSeen });
        const recorded = rows[0];
        if (recorded) return storedFromRow(recorded);
      }
      await hot.insertCertificate.execute(trx, values);
      return null;
    });
  }

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
    if (!row) return NO_FACTS;
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
   * Enrolls a box: reads the facts and hands them to `decide`, and when it names a seat for a box that is
   * not enrolled yet, takes that seat with a new label. All in one transaction that first takes the
   * subscription's write lock, so two boxes racing for the last seat cannot both get it (SQLite: the UPDATE
   * takes the database write lock; PostgreSQL: the row lock), and `decide` sees the seats as they are.
   */
  async enroll<T>(request: EnrollmentRequest, now: Date, decide: (facts: EligibilityFacts) => SeatDecision<T>): Promise<Enrollment<T>> {
    return this.db.transaction().execute(async (trx) => {
      await lockSubscription(trx, this.store.dialect, { databaseUuid: request.dbUuid });
      const facts = await this.eligibilityFacts(request.dbUuid, request.identifier, trx);
      const { seat, result } = decide(facts);
      if (facts.box || seat === null || !facts.database) return { result, facts, box: facts.box, created: false };
      const label = newLabel();
      const at = now.toISOString();
      const inserted = await trx
        .insertInto("boxes")
        .values({
          database_id: facts.database.id,
          identifier: request.identifier,
          label,
          identity_key: request.identityKey,
          seat,
          created_at: at,
          last_seen_at: at,
        })
        .returning("id")
        .executeTakeFirstOrThrow();
      return { result, facts, box: { id: inserted.id, label, identityKey: request.identityKey, seat }, created: true };
    });
  }

  /**
   * Everything the certificate path reads, in one statement: the eligibility facts, the box's newest
   * unrevoked certificate (enough to tell whether to hand it out again) and how many certificates it got
   * since `since` (the rate limit's window).
   */
  async issuanceState(dbUuid: string, identifier: string, since: Date): Promise<IssuanceState> {
    const { rows } = await this.hot.issuanceState.execute(this.db, { dbUuid: dbUuid.toLowerCase(), identifier, since: since.toISOString() });
    const row = rows[0];
    if (!row) return { facts: NO_FACTS, lastSeenAt: null, latest: null, issuedSince: 0, oldestSince: null };
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
    return row ? storedFromRow(row) : null;
  }

  /** Moves a certificate's renewAfter (the CA's renewal information moved its window). */
  async setRenewAfter(serial: string, renewAfter: Date): Promise<void> {
    await this.db.updateTable("certificates").set({ renew_after: renewAfter.toISOString() }).where("serial", "=", serial).execute();
  }

  /**
   * Records an issued certificate; with `touchBox`, also sets the box's last_seen_at to `now`, in the same
   * transaction. Resolves once committed (concurrent calls share a commit: group-commit.ts) with null, or,
   * when another process recorded a certificate for the same box and key since `latestIdSeen`, with that
   * one, and this one is not recorded.
   */
  insertCertificate(input: NewCertificate, options: { touchBox?: boolean } = {}): Promise<StoredCertificate | null> {
    return this.certificateWrites.add({
      latestIdSeen: input.latestIdSeen,
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

  /** Runs `fn` holding the store lock `name`, across issuer processes (lock.ts). */
  exclusively<T>(name: string, ttlMs: number, fn: () => Promise<T>, options: StoreLockOptions = {}): Promise<T> {
    return withStoreLock(this.db, name, ttlMs, fn, options);
  }
}

type CertificateRow = {
  serial: string;
  names: string;
  chain_pem: string;
  not_before: string;
  not_after: string;
  renew_after: string;
  public_key_sha256: string;
  source: string;
};

function storedFromRow(row: CertificateRow): StoredCertificate {
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
