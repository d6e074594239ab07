/**
 * Time, injected (CONTRIBUTING.md): the box reads the time and sets timers only through these, so renewal and
 * expiry are tested with a fake clock instead of waiting.
 */
export type Clock = () => number;

export const systemClock: Clock = () => Date.now();

export interface Timers {
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const systemTimers: Timers = {
  setTimeout: (callback, ms) => setTimeout(callback, ms),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};
