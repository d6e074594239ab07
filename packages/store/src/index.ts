/**
 * The boxcert store: the registry (subscriptions, databases, boxes, certificates) and what the dns
 * component answers from, in SQLite or PostgreSQL behind one kysely query layer, opened by URL.
 */
export { openStore, isPostgresUrl, POSTGRES_CONNECT_TIMEOUT_MS, POSTGRES_STATEMENT_TIMEOUT_MS, type Store, type StoreOptions, type Dialect } from "./db.ts";
export {
  DATABASE_KINDS,
  SUBSCRIPTION_STATES,
  type Database,
  type DatabaseKind,
  type SubscriptionState,
} from "./schema.ts";
export { RegistryError } from "./registry-error.ts";
export { isStoreUnavailable } from "./store-unavailable.ts";
export {
  RegistryOperations,
  parseKind,
  parseState,
  type BoxRow,
  type CertificateRow,
  type DatabaseRow,
  type SubscriptionRow,
} from "./operations.ts";
export {
  IssuanceQueries,
  type ActiveBox,
  type EligibilityFacts,
  type Enrollment,
  type EnrollmentRequest,
  type IssuanceState,
  type NewCertificate,
  type SeatDecision,
  type StoredCertificate,
} from "./issuance-queries.ts";
export {
  DatabaseReportQueries,
  type DatabaseReportFacts,
  type DatabaseReportRequest,
  type KindDecision,
} from "./database-report-queries.ts";
export { ZoneRecords, type ZoneRecordsSnapshot } from "./zone-records.ts";
export { ZONE_CHANNEL, type ZoneChangeListener, type ZoneListenEvent } from "./zone-changes.ts";
export { LockTimeoutError, withStoreLock, LOCK_POLLING, lockOwnerIsGone, newLockOwner, type StoreLockOptions } from "./lock.ts";
