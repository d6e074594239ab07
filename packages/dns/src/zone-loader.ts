/**
 * The dns component's view of the store: a snapshot in memory, replaced when the zone version (moved by
 * store triggers on every change) differs. Polled, so a value written by any issuer instance is answered
 * within one poll interval; queries never touch the store.
 */
import type { Logger } from "pino";
import { openStore, ZoneRecords } from "@boxcert/store";
import type { ZoneSource } from "./server.ts";
import type { ZoneSnapshot } from "./zone.ts";

/** Well under the one second the issue allows between a store write and the answer. */
export const POLL_INTERVAL_MS = 250;

export interface LoadedZone extends ZoneSource {
  /** Re-reads the store now if its version moved (tests and the poll timer call it). */
  refresh(): Promise<void>;
  close(): Promise<void>;
}

export async function openDnsZone(storeUrl: string, logger: Logger, pollMs = POLL_INTERVAL_MS): Promise<LoadedZone> {
  const store = await openStore(storeUrl, {
    onConnectionError: (error) => logger.warn({ event: "store_connection_lost", error: error.message }, "a store connection broke; the next read opens another"),
  });
  const records = new ZoneRecords(store.db);
  let current: ZoneSnapshot;
  try {
    current = await records.snapshot();
  } catch (err) {
    await store.close();
    throw new Error(`reading the zone from the store ${store.location}: ${(err as Error).message}`, { cause: err });
  }
  logger.info({ store: store.location, labels: current.activeLabels.size, challenges: current.challenges.size, version: current.version }, "zone loaded");
  let failing = false;
  let running: Promise<void> | null = null;
  const refresh = (): Promise<void> => {
    running ??= (async () => {
      try {
        if ((await records.version()) !== current.version) {
          current = await records.snapshot();
          logger.debug({ version: current.version, labels: current.activeLabels.size, challenges: current.challenges.size }, "zone reloaded");
        }
        if (failing) logger.warn({ store: store.location }, "zone store readable again");
        failing = false;
      } catch (err) {
        // Keep answering from the last snapshot: a store hiccup must not take the zone down.
        if (!failing) logger.warn({ err, store: store.location }, "reading the zone from the store failed; answering from the last snapshot");
        failing = true;
      } finally {
        running = null;
      }
    })();
    return running;
  };
  const timer = setInterval(() => void refresh(), pollMs);
  timer.unref();
  return {
    snapshot: () => current,
    refresh,
    async close() {
      clearInterval(timer);
      await running;
      await store.close();
    },
  };
}
