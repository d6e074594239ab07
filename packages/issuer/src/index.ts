export { buildIssuerApp, type IssuerAppOptions } from "./app.ts";
export { startIssuer, registerIssuerCommand, type IssuerConfig, type RunningIssuer } from "./cli.ts";
export { Issuance, authorise, enrollBox, type Outcome, type IssuanceOptions } from "./issuance.ts";
export { issuanceRecords, type IssuanceRecords } from "./issuance-records.ts";
export { EmbeddedCa } from "./embedded-ca.ts";
export { DatabaseReporting, databaseReports, decideReport, type DatabaseReports } from "./database-report.ts";
export {
  IssuerMetrics,
  mergeSnapshots,
  prometheusText,
  LATENCY_BUCKETS_S,
  type MetricsSnapshot,
  type FamilySnapshot,
  type IssuerMetricsRecorder,
  type RequestOutcome,
  type Route,
} from "./metrics.ts";
