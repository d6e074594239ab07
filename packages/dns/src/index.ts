export { answer } from "./answer.ts";
export {
  startDnsServer,
  startMetricsEndpoint,
  DEFAULT_TCP_LIMITS,
  type ZoneSource,
  type AnswerRecorder,
  type AnswerFunction,
  type DnsServerOptions,
  type RunningDnsServer,
  type TcpLimits,
  type TcpCloseRecorder,
  type TcpCloseReason,
} from "./server.ts";
export { registerDnsCommand, runDns, type RunningDns } from "./cli.ts";
export { buildDnsConfig, type DnsFlags } from "./options.ts";
export { DEFAULT_ALLOW, DEFAULT_TTL, type DnsConfig, type ZoneSnapshot, type NameServer, type QuerySource, type Answer } from "./zone.ts";
