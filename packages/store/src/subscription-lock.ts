/**
 * A subscription's write lock, taken at the start of a transaction and held until it ends: what decides
 * from a subscription's databases or seats and then writes (enrolling a box, a database's report, an
 * operator making a database production) runs under it, so two such writers never decide from the same
 * state. A row lock rather than a store lock (lock.ts): these are short transactions, and the row lock
 * goes with the transaction, so a crash leaves nothing half done and nothing to expire.
 */
import { sql, type ExpressionBuilder, type Transaction } from "kysely";
import type { Dialect } from "./db.ts";
import type { Database, SubscriptionState } from "./schema.ts";

/** Which subscription: by its code, or the one a database (by UUID) belongs to. */
export type SubscriptionKey = { code: string } | { databaseUuid: string };

export interface LockedSubscription {
  id: number;
  code: string;
  state: SubscriptionState;
}

function matching(key: SubscriptionKey) {
  return (eb: ExpressionBuilder<Database, "subscriptions">) =>
    "code" in key
      ? eb("code", "=", key.code)
      : eb("id", "=", eb.selectFrom("databases").select("subscription_id").where("uuid", "=", key.databaseUuid.toLowerCase()));
}

/** Takes the subscription's lock for the rest of `trx` and reads it; null when there is no such subscription. */
export async function lockSubscription(trx: Transaction<Database>, dialect: Dialect, key: SubscriptionKey): Promise<LockedSubscription | null> {
  const select = trx.selectFrom("subscriptions").select(["id", "code", "state"]).where(matching(key));
  if (dialect === "postgres") return (await select.forUpdate().executeTakeFirst()) ?? null;
  // SQLite locks the whole file, and only for writers: a no-op write takes the write lock now (waiting
  // busy_timeout for another process), where a read first would fail at the first real write instead.
  await trx.updateTable("subscriptions").set({ code: sql`code` }).where(matching(key)).execute();
  return (await select.executeTakeFirst()) ?? null;
}
