/**
 * A database's report of itself (POST /v1/database, docs/erp.md), in the store: under the lock of the
 * subscription the report names, the facts the issuer decides from (the subscription, the database as
 * recorded, whether the subscription has a production database), then the kind the issuer decided, the
 * key and the report's time written, in the same transaction. No decision is made here: the issuer
 * decides (its database-report.ts), as it does for enrollment.
 */
import type { Transaction } from "kysely";
import type { Store } from "./db.ts";
import type { Database, DatabaseKind, SubscriptionState } from "./schema.ts";
import { isUniqueViolation } from "./registry-error.ts";
import { lockSubscription, type LockedSubscription } from "./subscription-lock.ts";

export interface DatabaseReportRequest {
  dbUuid: string;
  enterpriseCode: string;
  /** The reporting database's public key (SPKI DER base64): recorded when none is. */
  databaseKey: string;
}

/** What a report is decided from, read under the lock of the subscription the report names. */
export interface DatabaseReportFacts {
  /** The subscription of the report's code; null when no subscription has that code. */
  subscription: { id: number; state: SubscriptionState } | null;
  /** The database with the report's UUID, in whatever subscription; null when it is not recorded. */
  database: { subscriptionId: number; kind: DatabaseKind; databaseKey: string | null } | null;
  /** Whether the code's subscription has a production database (the reporting one included). */
  hasProduction: boolean;
}

/**
 * What the caller decided from the facts: the kind to record (null: the report is refused and nothing is
 * written), and `result`, handed back as it is. The caller records a kind only when the report's key is
 * the recorded one or none is recorded: the report's key is written as the database's.
 */
export interface KindDecision<T> {
  kind: DatabaseKind | null;
  result: T;
}

export class DatabaseReportQueries {
  constructor(private readonly store: Store) {}

  /**
   * Reads the facts under the subscription's lock, lets `decide` pick the kind, records it. Two first
   * reports of one new UUID naming different subscriptions hold different locks and may both insert:
   * the loser's insert breaks the UUID's uniqueness, and its report is decided again, on the winner's row.
   */
  async report<T>(request: DatabaseReportRequest, now: Date, decide: (facts: DatabaseReportFacts) => KindDecision<T>): Promise<T> {
    try {
      return await this.reportOnce(request, now, decide);
    } catch (err) {
      if (!isUniqueViolation(err)) throw err;
      return this.reportOnce(request, now, decide);
    }
  }

  private reportOnce<T>(request: DatabaseReportRequest, now: Date, decide: (facts: DatabaseReportFacts) => KindDecision<T>): Promise<T> {
    return this.store.db.transaction().execute(async (trx) => {
      const subscription = await lockSubscription(trx, this.store.dialect, { code: request.enterpriseCode });
      const facts = await this.facts(trx, request.dbUuid, subscription);
      const { kind, result } = decide(facts);
      if (kind !== null && subscription) await this.record(trx, request, facts, subscription.id, kind, now);
      return result;
    });
  }

  private async facts(trx: Transaction<Database>, dbUuid: string, subscription: LockedSubscription | null): Promise<DatabaseReportFacts> {
    const database = await trx
      .selectFrom("databases")
      .select(["subscription_id", "kind", "database_key"])
      .where("uuid", "=", dbUuid.toLowerCase())
      .executeTakeFirst();
    const production = subscription
      ? await trx.selectFrom("databases").select("id").where("subscription_id", "=", subscription.id).where("kind", "=", "production").executeTakeFirst()
      : undefined;
    return {
      subscription: subscription ? { id: subscription.id, state: subscription.state } : null,
      database: database ? { subscriptionId: database.subscription_id, kind: database.kind, databaseKey: database.database_key } : null,
      hasProduction: production !== undefined,
    };
  }

  /** A new database is recorded with the report's key; a known one gets its kind, key (if none) and report time. */
  private async record(
    trx: Transaction<Database>,
    request: DatabaseReportRequest,
    facts: DatabaseReportFacts,
    subscriptionId: number,
    kind: DatabaseKind,
    now: Date,
  ): Promise<void> {
    const at = now.toISOString();
    const uuid = request.dbUuid.toLowerCase();
    if (facts.database) {
      await trx.updateTable("databases").set({ kind, database_key: request.databaseKey, reported_at: at }).where("uuid", "=", uuid).execute();
      return;
    }
    await trx
      .insertInto("databases")
      .values({ uuid, subscription_id: subscriptionId, kind, created_at: at, database_key: request.databaseKey, reported_at: at })
      .execute();
  }
}
