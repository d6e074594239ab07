/**
 * What the issuance path needs from the store, and nothing else: the facts of one request, the seat a new
 * box takes, the box's certificates and the per-box lock. Operator actions (RegistryOperations) are not
 * part of it. The store's IssuanceQueries implements it with statements compiled once and a group commit.
 */
import {
  IssuanceQueries,
  type EligibilityFacts,
  type Enrollment,
  type EnrollmentRequest,
  type IssuanceState,
  type NewCertificate,
  type SeatDecision,
  type Store,
  type StoreLockOptions,
  type StoredCertificate,
} from "@boxcert/store";

export interface IssuanceRecords {
  /** Under the subscription's lock: reads the facts, lets `decide` name the seat a new box takes, takes it. */
  enroll<T>(request: EnrollmentRequest, now: Date, decide: (facts: EligibilityFacts) => SeatDecision<T>): Promise<Enrollment<T>>;
  /** The facts, the box's latest unrevoked certificate and its certificates since `since`, in one read. */
  issuanceState(dbUuid: string, identifier: string, since: Date): Promise<IssuanceState>;
  storedCertificate(id: number): Promise<StoredCertificate | null>;
  setRenewAfter(serial: string, renewAfter: Date): Promise<void>;
  /**
   * Resolves once committed; `touchBox` also moves the box's last_seen_at, in the same commit. Resolves with
   * the certificate another process recorded for the same box and key meanwhile (then this one is not).
   */
  insertCertificate(certificate: NewCertificate, options?: { touchBox?: boolean }): Promise<StoredCertificate | null>;
  /** Runs `fn` holding the store lock `name`, across issuer processes. */
  exclusively<T>(name: string, ttlMs: number, fn: () => Promise<T>, options?: StoreLockOptions): Promise<T>;
}

export function issuanceRecords(store: Store): IssuanceRecords {
  return new IssuanceQueries(store);
}
