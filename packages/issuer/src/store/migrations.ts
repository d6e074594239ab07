/**
 * Versioned schema migrations, run at start by every component that opens the store. Kysely's Migrator
 * records applied versions in its own table and takes a lock, so two issuers starting at once are safe.
 */
import { sql, type ColumnDefinitionBuilder, type Kysely, type Migration, type MigrationProvider } from "kysely";
import type { Dialect } from "./db.ts";

function buildMigrations(dialect: Dialect): Record<string, Migration> {
  // SQLite's INTEGER PRIMARY KEY is already an auto-assigned rowid; PostgreSQL needs an identity column.
  const id = (c: ColumnDefinitionBuilder) => (dialect === "postgres" ? c.primaryKey().generatedByDefaultAsIdentity() : c.primaryKey());
  return {
  "0001_registry": {
    async up(db: Kysely<unknown>) {
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
    },
  },
  };
}

export function migrationProvider(dialect: Dialect): MigrationProvider {
  return {
    async getMigrations() {
      return buildMigrations(dialect);
    },
  };
}
