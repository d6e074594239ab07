/**
 * Versioned schema migrations, run at start by every component that opens the store. Kysely's Migrator
 * records applied versions in its own table and takes a lock, so two issuers starting at once are safe.
 */
import { sql, type ColumnDefinitionBuilder, type Kysely, type Migration, type MigrationProvider } from "kysely";
import type { Dialect } from "./db.ts";

type IdColumn = (c: ColumnDefinitionBuilder) => ColumnDefinitionBuilder;

async function createRegistry(db: Kysely<unknown>, dialect: Dialect, id: IdColumn): Promise<void> {
  await db.schema
    .createTable("subscriptions")
    .addColumn("id", "integer", id)
    .addColumn("code", "text", (c) => c.notNull().unique())
    .addColumn("state", "text", (c) => c.notNull())
    .addColumn("iot_box_seats", "integer", (c) => c.notNull().defaultTo(0))
    .addColumn("created_at", "text", (c) => c.notNull())
    .execute();
  await db.schema
    .createTable("databases")
    .addColumn("id", "integer", id)
    .addColumn("uuid", "text", (c) => c.notNull().unique())
    .addColumn("subscription_id", "integer", (c) => c.notNull().references("subscriptions.id"))
    .addColumn("kind", "text", (c) => c.notNull())
    .addColumn("created_at", "text", (c) => c.notNull())
    .execute();
  await db.schema
    .createTable("boxes")
    .addColumn("id", "integer", id)
    .addColumn("database_id", "integer", (c) => c.notNull().references("databases.id"))
    .addColumn("identifier", "text", (c) => c.notNull())
    .addColumn("label", "text", (c) => c.notNull().unique())
    .addColumn("identity_key", "text", (c) => c.notNull())
    .addColumn("seat", "integer", (c) => c.notNull())
    .addColumn("created_at", "text", (c) => c.notNull())
    .addColumn("last_seen_at", "text", (c) => c.notNull())
    .addColumn("freed_at", "text")
    .execute();
  // One active box per identifier and database; freed ones stay for history.
  await sql`CREATE UNIQUE INDEX boxes_active_identifier ON boxes (database_id, identifier) WHERE freed_at IS NULL`.execute(db);
  await db.schema
    .createTable("certificates")
    .addColumn("id", "integer", id)
    .addColumn("serial", "text", (c) => c.notNull().unique())
    .addColumn("box_id", "integer", (c) => c.notNull().references("boxes.id"))
    .addColumn("names", "text", (c) => c.notNull())
    .addColumn("public_key_sha256", "text", (c) => c.notNull())
    .addColumn("chain_pem", "text", (c) => c.notNull())
    .addColumn("source", "text", (c) => c.notNull())
    .addColumn("not_before", "text", (c) => c.notNull())
    .addColumn("not_after", "text", (c) => c.notNull())
    .addColumn("renew_after", "text", (c) => c.notNull())
    .addColumn("created_at", "text", (c) => c.notNull())
    .addColumn("revoked_at", "text")
    .execute();
  await db.schema.createIndex("certificates_box_created").on("certificates").columns(["box_id", "created_at"]).execute();
}

/**
 * What the dns component answers from: revoked boxes stop resolving, challenge values are served as TXT,
 * and one version number moves on every change so dns servers reload only when something changed.
 */
async function createZone(db: Kysely<unknown>, dialect: Dialect, id: IdColumn): Promise<void> {
  await db.schema.alterTable("boxes").addColumn("revoked_at", "text").execute();
  await db.schema
    .createTable("dns_challenges")
    .addColumn("id", "integer", id)
    .addColumn("label", "text", (c) => c.notNull())
    .addColumn("value", "text", (c) => c.notNull())
    .addColumn("created_at", "text", (c) => c.notNull())
    .execute();
  await db.schema.createIndex("dns_challenges_label").on("dns_challenges").columns(["label", "value"]).unique().execute();
  await db.schema
    .createTable("zone_state")
    .addColumn("id", "integer", (c) => c.primaryKey())
    .addColumn("version", "integer", (c) => c.notNull())
    .execute();
  await sql`INSERT INTO zone_state (id, version) VALUES (1, 1)`.execute(db);
  // Triggers rather than application code: every writer (issuer, admin, a future tool) moves the version.
  // Only columns that change what dns answers count, so last_seen_at updates do not reload the zone.
  if (dialect === "postgres") {
    await sql`CREATE FUNCTION boxcert_bump_zone_version() RETURNS trigger AS $$
      BEGIN UPDATE zone_state SET version = version + 1 WHERE id = 1; RETURN NULL; END $$ LANGUAGE plpgsql`.execute(db);
    await sql`CREATE TRIGGER boxes_zone_version AFTER INSERT OR DELETE OR UPDATE OF label, freed_at, revoked_at ON boxes
      FOR EACH STATEMENT EXECUTE FUNCTION boxcert_bump_zone_version()`.execute(db);
    await sql`CREATE TRIGGER dns_challenges_zone_version AFTER INSERT OR DELETE OR UPDATE ON dns_challenges
      FOR EACH STATEMENT EXECUTE FUNCTION boxcert_bump_zone_version()`.execute(db);
  } else {
    const bump = "UPDATE zone_state SET version = version + 1 WHERE id = 1;";
    for (const [name, event] of [
      ["boxes_zone_insert", "AFTER INSERT ON boxes"],
      ["boxes_zone_delete", "AFTER DELETE ON boxes"],
      ["boxes_zone_update", "AFTER UPDATE OF label, freed_at, revoked_at ON boxes"],
      ["dns_challenges_zone_insert", "AFTER INSERT ON dns_challenges"],
      ["dns_challenges_zone_delete", "AFTER DELETE ON dns_challenges"],
      ["dns_challenges_zone_update", "AFTER UPDATE ON dns_challenges"],
    ]) {
      await sql.raw(`CREATE TRIGGER ${name} ${event} BEGIN ${bump} END`).execute(db);
    }
  }
}

/**
 * Named locks that hold across issuer processes (lock.ts): one row per held lock, taken over once
 * expires_at has passed (a crashed holder).
 */
async function createLocks(db: Kysely<unknown>, _dialect: Dialect, _id: IdColumn): Promise<void> {
  await db.schema
    .createTable("locks")
    .addColumn("name", "text", (c) => c.primaryKey())
    .addColumn("owner", "text", (c) => c.notNull())
    .addColumn("expires_at", "text", (c) => c.notNull())
    .execute();
}

/**
 * The CA domains of the issuer's ACME directories, published by the issuer at start so that the dns
 * component's CAA records name every CA the issuer may use, without a flag to keep in step.
 */
async function createCaaIdentities(db: Kysely<unknown>, dialect: Dialect, _id: IdColumn): Promise<void> {
  await db.schema
    .createTable("caa_identities")
    .addColumn("domain", "text", (c) => c.primaryKey())
    .addColumn("directory", "text", (c) => c.notNull())
    .addColumn("updated_at", "text", (c) => c.notNull())
    .execute();
  if (dialect === "postgres") {
    await sql`CREATE TRIGGER caa_identities_zone_version AFTER INSERT OR DELETE OR UPDATE OF domain ON caa_identities
      FOR EACH STATEMENT EXECUTE FUNCTION boxcert_bump_zone_version()`.execute(db);
  } else {
    const bump = "UPDATE zone_state SET version = version + 1 WHERE id = 1;";
    for (const [name, event] of [
      ["caa_identities_zone_insert", "AFTER INSERT ON caa_identities"],
      ["caa_identities_zone_delete", "AFTER DELETE ON caa_identities"],
      ["caa_identities_zone_update", "AFTER UPDATE OF domain ON caa_identities"],
    ]) {
      await sql.raw(`CREATE TRIGGER ${name} ${event} BEGIN ${bump} END`).execute(db);
    }
  }
}

/**
 * Databases report themselves to the issuer (docs/erp.md): the key of a database's first report is kept
 * (trust on first use, as box identities), and when it last reported. Both null for the databases an
 * operator added before, until they report. Kinds are left as they are: a subscription that already has
 * two production databases keeps them (admin refuses to make a new second one).
 */
async function addDatabaseReports(db: Kysely<unknown>, _dialect: Dialect, _id: IdColumn): Promise<void> {
  await db.schema.alterTable("databases").addColumn("database_key", "text").execute();
  await db.schema.alterTable("databases").addColumn("reported_at", "text").execute();
  // The report reads a subscription's databases by kind under its lock.
  await db.schema.createIndex("databases_subscription_kind").on("databases").columns(["subscription_id", "kind"]).execute();
}

/**
 * PostgreSQL: the zone version's trigger also sends `pg_notify('boxcert_zone', <version>)`, delivered at
 * commit to every dns process LISTENing (zone-changes.ts), so a change reaches them at once rather than at
 * their next poll. SQLite has no such thing: nothing changes there.
 */
async function notifyZoneChanges(db: Kysely<unknown>, dialect: Dialect, _id: IdColumn): Promise<void> {
  if (dialect !== "postgres") return;
  await sql`CREATE OR REPLACE FUNCTION boxcert_bump_zone_version() RETURNS trigger AS $$
    DECLARE moved integer;
    BEGIN
      UPDATE zone_state SET version = version + 1 WHERE id = 1 RETURNING version INTO moved;
      PERFORM pg_notify('boxcert_zone', moved::text);
      RETURN NULL;
    END $$ LANGUAGE plpgsql`.execute(db);
}

function buildMigrations(dialect: Dialect): Record<string, Migration> {
  // SQLite's INTEGER PRIMARY KEY is already an auto-assigned rowid; PostgreSQL needs an identity column.
  const id: IdColumn = (c) => (dialect === "postgres" ? c.primaryKey().generatedByDefaultAsIdentity() : c.primaryKey());
  const step = (create: typeof createRegistry): Migration => ({ up: (db) => create(db, dialect, id) });
  return {
    "0001_registry": step(createRegistry),
    "0002_zone": step(createZone),
    "0003_locks": step(createLocks),
    "0004_caa_identities": step(createCaaIdentities),
    "0005_database_reports": step(addDatabaseReports),
    "0006_zone_notify": step(notifyZoneChanges),
  };
}

export function migrationProvider(dialect: Dialect): MigrationProvider {
  return {
    async getMigrations() {
      return buildMigrations(dialect);
    },
  };
}
