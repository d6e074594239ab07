/** Table types of the registry store (SQLite and PostgreSQL through one kysely query layer). */
import type { Generated } from "kysely";
import { DATABASE_KINDS, type DatabaseKind } from "@boxcert/shared";

// The kinds are part of the wire (a database reports its kind), so they live in shared.
export { DATABASE_KINDS, type DatabaseKind };

export const SUBSCRIPTION_STATES = ["draft", "in_progress", "paused", "closed"] as const;
export type SubscriptionState = (typeof SUBSCRIPTION_STATES)[number];

/** Dates are stored as ISO 8601 UTC strings (`toISOString()`), which sort in time order on both engines. */
export interface SubscriptionsTable {
  id: Generated<number>;
  code: string;
  state: SubscriptionState;
  /** Quantity of the IoT-box line; 0 means the subscription has no IoT-box line. */
  iot_box_seats: number;
  created_at: string;
}

export interface DatabasesTable {
  id: Generated<number>;
  uuid: string;
  subscription_id: number;
  kind: DatabaseKind;
  created_at: string;
  /** The database's own public key (SPKI DER base64), recorded from its first report; null until it reports. */
  database_key: string | null;
  /** When the database last reported itself (POST /v1/database); null if it never did. */
  reported_at: string | null;
}

export interface BoxesTable {
  id: Generated<number>;
  database_id: number;
  identifier: string;
  label: string;
  /** The box identity public key, SPKI DER base64. */
  identity_key: string;
  seat: number;
  created_at: string;
  last_seen_at: string;
  /** Set when an operator frees the box: the seat and identity are released, the label no longer resolves. */
  freed_at: string | null;
  /** Set when an operator revokes the box: its name stops resolving and it gets no certificate. */
  revoked_at: string | null;
}

export interface DnsChallengesTable {
  id: Generated<number>;
  label: string;
  /** The `_acme-challenge` TXT value (base64url key authorization digest). */
  value: string;
  created_at: string;
}

export interface ZoneStateTable {
  id: number;
  /** Moved by triggers on every change dns answers from; the SOA serial. */
  version: number;
}

export interface CertificatesTable {
  id: Generated<number>;
  serial: string;
  box_id: number;
  /** Names, comma-separated, in certificate order. */
  names: string;
  public_key_sha256: string;
  chain_pem: string;
  source: string;
  not_before: string;
  not_after: string;
  renew_after: string;
  created_at: string;
  revoked_at: string | null;
}

/** A named lock held across processes (lock.ts); expires_at is ISO 8601, after which others take it. */
export interface LocksTable {
  name: string;
  owner: string;
  expires_at: string;
}

/** A CA domain the issuer's ACME directories name (`meta.caaIdentities`): dns answers `CAA 0 issue` for each. */
export interface CaaIdentitiesTable {
  domain: string;
  /** The directory that named it (the last one, when several do). */
  directory: string;
  updated_at: string;
}

export interface Database {
  subscriptions: SubscriptionsTable;
  databases: DatabasesTable;
  boxes: BoxesTable;
  certificates: CertificatesTable;
  dns_challenges: DnsChallengesTable;
  zone_state: ZoneStateTable;
  locks: LocksTable;
  caa_identities: CaaIdentitiesTable;
}
