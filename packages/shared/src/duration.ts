/** The one duration parser for flags: `90d`, `12h`, `30m`, `10s`, `1500ms` (a decimal is fine: `1.5h`). */

const UNITS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

/** Node's timers fire at once for a delay above 2^31-1 ms (about 24.8 days). */
export const MAX_TIMER_MS = 2_147_483_647;

import { ValueError } from "./cli-arguments.ts";

export class DurationError extends ValueError {
  override readonly name = "DurationError";
}

function describe(ms: number): string {
  for (const unit of ["d", "h", "m", "s"] as const) if (ms % UNITS[unit] === 0) return `${ms / UNITS[unit]}${unit}`;
  return `${ms}ms`;
}

/** Milliseconds; `min` and `max` (in milliseconds) bound what the caller accepts. */
export function parseDuration(value: string, bounds: { min?: number; max?: number } = {}): number {
  const match = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)$/.exec(value.trim());
  if (!match) throw new DurationError(`"${value}" is not a duration (examples: 90d, 12h, 30m, 10s, 1500ms)`);
  const ms = Math.round(Number(match[1]) * UNITS[match[2] as keyof typeof UNITS]);
  if (bounds.min !== undefined && ms < bounds.min) throw new DurationError(`"${value}" is shorter than ${describe(bounds.min)}`);
  if (bounds.max !== undefined && ms > bounds.max) throw new DurationError(`"${value}" is longer than ${describe(bounds.max)}`);
  return ms;
}
