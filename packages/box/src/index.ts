/** The box's public entry points: what the command line, the demo and the system tests use. */
export { buildBox } from "./box.ts";
export type { Box, BoxOptions } from "./box.ts";
export { registerBoxCommands } from "./cli.ts";
export type { BoxStatus, CertificateView } from "./web/status.ts";
export type { BoxConfig, LogLevel, Connection } from "./config.ts";
export { connectionPatch, formatConnectionToken, parseConnectionToken, loadOrCreateConfig, updateConfig } from "./config.ts";
export { dataPaths, ensureDataDir } from "./data-dir.ts";
export type { DataPaths } from "./data-dir.ts";
export type { BoxError, CertificateStatus, CheckDecision, CheckInput } from "./certificate/check.ts";
export { decideCheck, certificateStatus, displayCode } from "./certificate/check.ts";
export type { Clock, Timers } from "./clock.ts";
export { runDiagnostics, renderDiagnosticsHtml, DIAGNOSTICS_MESSAGES } from "./diagnostics/index.ts";
export type { DiagnosticsReport, DiagnosticsInput } from "./diagnostics/index.ts";
