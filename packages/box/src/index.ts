export { buildBox } from "./box.ts";
export type { Box, BoxOptions } from "./box.ts";
export { registerBoxCommands } from "./cli.ts";
export type { BoxStatus, CertificateView } from "./status.ts";
export type { BoxConfig, LogLevel, Connection } from "./config.ts";
export { formatConnectionToken, parseConnectionToken } from "./config.ts";
export type { BoxError, CertificateStatus, CheckDecision, CheckInput } from "./check.ts";
export { decideCheck, certificateStatus, displayCode } from "./check.ts";
export type { Clock, Timers } from "./clock.ts";
