/**
 * How the box shows a credential it holds, on its pages and in its log: enough to recognise it, never
 * enough to use it. The subscription code is never logged at all; the database UUID only masked.
 */

/** The first `keep.start` and last `keep.end` characters around a fixed run of dots; all dots when short. */
export function mask(value: string | null, keep: { start: number; end: number }): string | null {
  if (value === null) return null;
  if (value.length < keep.start + keep.end + 4) return "•".repeat(8);
  return `${value.slice(0, keep.start)}${"•".repeat(8)}${value.slice(value.length - keep.end)}`;
}

/** A database UUID as the homepage and the log show it: `1f0c••••••••9a2b`. */
export function maskedUuid(value: string | null): string | null {
  return mask(value, { start: 4, end: 4 });
}

/** A subscription code as the homepage shows it to the admin: its last two characters. */
export function maskedCode(value: string | null): string | null {
  return mask(value, { start: 0, end: 2 });
}
