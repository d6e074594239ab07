/**
 * A customer's database reports itself (POST /v1/database, docs/erp.md): authenticated as box requests
 * are, then decided on the facts the store reads under the subscription's lock (decideReport, pure), and
 * recorded in the same transaction, so two databases claiming production at once cannot both get it.
 */
import type { DatabaseKind, DatabaseReport, DatabaseReportResponse } from "@boxcert/shared";
import { DatabaseReportQueries, type DatabaseReportFacts, type DatabaseReportRequest, type KindDecision, type Store } from "@boxcert/store";
import type { Logger } from "pino";
import { authenticateSignedBody } from "./identity.ts";
import { refused, type Outcome, type Refused } from "./outcome.ts";

/** What the report path needs from the store, and nothing else (the store's DatabaseReportQueries). */
export interface DatabaseReports {
  /** Under the lock of the subscription the report names: reads the facts, lets `decide` pick the kind, records it. */
  report<T>(request: DatabaseReportRequest, now: Date, decide: (facts: DatabaseReportFacts) => KindDecision<T>): Promise<T>;
}

export function databaseReports(store: Store): DatabaseReports {
  return new DatabaseReportQueries(store);
}

/** The report's fields, with the exact bytes they were signed as. */
export type DatabaseReportInput = DatabaseReport & { raw: Buffer; signature: string | undefined };

export type ReportDecision = { refusal: Refused } | { answer: DatabaseReportResponse };

/** identity_mismatch's own message: the catalogue's talks about boxes. */
const DATABASE_KEY_MISMATCH =
  "this database UUID is registered with another database key: its reports must be signed by the key of its first report";

/** A new database gets the kind it claims, but production only while its subscription has none. */
function firstKind(claimed: DatabaseKind, hasProduction: boolean): DatabaseKind {
  return claimed === "production" && hasProduction ? "duplicate" : claimed;
}

/**
 * A report may lower a recorded kind, never raise it: production is kept or given back only when the
 * subscription has no production database at all (otherwise an operator decides, `admin database set`).
 * The other kinds are all "not production", so a report moves between them freely.
 */
function reportedKind(recorded: DatabaseKind, claimed: DatabaseKind, hasProduction: boolean): DatabaseKind {
  if (claimed !== "production") return claimed;
  return recorded === "production" || !hasProduction ? "production" : recorded;
}

/**
 * What a report records, or why it is refused: the code must name a subscription, a known database must
 * belong to it (checked before the key, as eligibility checks the code before a box's identity), and
 * report with the key of its first report (a database an operator added has none until then).
 */
export function decideReport(facts: DatabaseReportFacts, report: Pick<DatabaseReport, "kind" | "databaseKey">): ReportDecision {
  const { subscription, database, hasProduction } = facts;
  if (!subscription) return { refusal: refused("unknown_subscription") };
  if (!database) return { answer: { kind: firstKind(report.kind, hasProduction), subscription: subscription.state } };
  if (database.subscriptionId !== subscription.id) return { refusal: refused("code_mismatch") };
  if (database.databaseKey !== null && database.databaseKey !== report.databaseKey) {
    return { refusal: refused("identity_mismatch", DATABASE_KEY_MISMATCH) };
  }
  return { answer: { kind: reportedKind(database.kind, report.kind, hasProduction), subscription: subscription.state } };
}

/** A database UUID in logs: enough to tell databases apart, not enough to pair a box with it. */
export function maskUuid(uuid: string): string {
  return `${uuid.slice(0, 4)}...${uuid.slice(-4)}`.toLowerCase();
}

export interface DatabaseReportingOptions {
  databases: DatabaseReports;
  clock: () => number;
  logger: Logger;
}

/** A report's outcome, and whether it was the database's first (its UUID was not recorded). */
type Reported = { outcome: Outcome<DatabaseReportResponse>; first: boolean };

export class DatabaseReporting {
  constructor(private readonly options: DatabaseReportingOptions) {}

  /** One report: authenticated, decided and recorded, and one log line whatever the outcome. */
  async report(input: DatabaseReportInput): Promise<Outcome<DatabaseReportResponse>> {
    const { outcome, first } = await this.decideAndRecord(input);
    this.log(input, outcome, first);
    return outcome;
  }

  private async decideAndRecord(input: DatabaseReportInput): Promise<Reported> {
    const now = this.options.clock();
    const unauthenticated = await authenticateSignedBody(input, { keyField: "databaseKey", publicKey: input.databaseKey, whose: "database" }, now);
    if (unauthenticated) return { outcome: unauthenticated, first: false };
    return this.options.databases.report(input, new Date(now), (facts): KindDecision<Reported> => {
      const decision = decideReport(facts, input);
      const first = facts.database === null;
      if ("refusal" in decision) return { kind: null, result: { outcome: decision.refusal, first } };
      return { kind: decision.answer.kind, result: { outcome: { kind: "ok", body: decision.answer }, first } };
    });
  }

  /** Never the subscription code (shop staff pair boxes with it), and the UUID masked. */
  private log(input: DatabaseReportInput, outcome: Outcome<DatabaseReportResponse>, first: boolean): void {
    const fields = { database: maskUuid(input.dbUuid), claimed: input.kind };
    const { logger } = this.options;
    if (outcome.kind === "ok") {
      logger.info({ ...fields, kind: outcome.body.kind, subscription: outcome.body.subscription, first }, "database reported");
    } else if (outcome.kind === "refused") {
      logger.warn({ ...fields, refusal: outcome.reason }, "database report refused");
    } else {
      logger.warn({ ...fields, error: outcome.code }, "database report rejected");
    }
  }
}
