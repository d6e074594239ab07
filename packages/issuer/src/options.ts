/** Parsing of the issuer's command-line values, validated once at the edge. */
import { InvalidArgumentError } from "commander";

/** `90d`, `12h`, `5m`, `30s` → milliseconds. */
export function parseDuration(value: string): number {
  const match = /^(\d+(?:\.\d+)?)\s*(d|h|m|s|ms)$/.exec(value.trim());
  if (!match) throw new InvalidArgumentError(`"${value}" is not a duration (examples: 90d, 12h, 5m, 30s)`);
  const unit = { d: 86_400_000, h: 3_600_000, m: 60_000, s: 1000, ms: 1 }[match[2] as "d" | "h" | "m" | "s" | "ms"];
  const ms = Math.round(Number(match[1]) * unit);
  if (ms < 1000) throw new InvalidArgumentError(`"${value}" is shorter than one second`);
  return ms;
}

/** `HOST:PORT` or `[IPv6]:PORT`. */
export function parseListen(value: string): { host: string; port: number } {
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([^:\s]+)):(\d{1,5})$/.exec(value.trim());
  const port = match ? Number(match[3]) : NaN;
  if (!match || port > 65535) throw new InvalidArgumentError(`"${value}" is not HOST:PORT (example: 127.0.0.1:8700)`);
  return { host: (match[1] ?? match[2])!, port };
}

export function parsePositiveInt(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < 1) throw new InvalidArgumentError(`"${value}" is not a positive whole number`);
  return n;
}
