/**
 * One log-level vocabulary for every component: `debug`, `info`, `warning`, `error` (the box's homepage and
 * status API show these words). pino calls the third one `warn`; both spellings are accepted on input,
 * `warning` is what is printed and stored.
 */
import { ValueError } from "./cli-arguments.ts";

export const LOG_LEVELS = ["debug", "info", "warning", "error"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
/** pino's names for the same levels. */
export type PinoLevel = "debug" | "info" | "warn" | "error";

export class LogLevelError extends ValueError {
  override readonly name = "LogLevelError";
}

export function isLogLevel(value: unknown): value is LogLevel {
  return typeof value === "string" && (LOG_LEVELS as readonly string[]).includes(value);
}

/** Any case, `warn` or `warning`. */
export function parseLogLevel(value: string): LogLevel {
  const lower = value.trim().toLowerCase();
  const level = lower === "warn" ? "warning" : lower;
  if (!isLogLevel(level)) throw new LogLevelError(`"${value}" is not a log level (${LOG_LEVELS.join(", ")})`);
  return level;
}

export function pinoLevel(level: LogLevel): PinoLevel {
  return level === "warning" ? "warn" : level;
}
