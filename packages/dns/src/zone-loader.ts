/**
 * The dns component's view of the store: a snapshot in memory, replaced when the zone version (moved by
 * store triggers on every change) differs. Reloaded at once when told of a change (a DNS NOTIFY from the
 * issuer, a PostgreSQL notification) and polled as the safety net, so a value written by any issuer
 * instance is answered within one poll interval even when nobody tells; queries never touch the store.
 */
import type { Logger } from "pino";
import { openStore, ZONE_CHANNEL, ZoneRecords } from "@boxcert/store";
import type { ZoneSource } from "./server.ts";
import type { ZoneSnapshot } from "./zone.ts";

/** Well under the one second the issue allows between a store write and the answer. */
export const POLL_INTERVAL_MS = 250;

export interface LoadedZone extends ZoneSource {
  /**
   * Re-reads the store now if its version moved (a NOTIFY, a PostgreSQL notification, the poll timer, tests).
   * Coalesced: while a reload runs, any number of calls make one more after it (it may have read the version
   * before the change that prompted them), never a queue.
   */
  refresh(): Promise<void>;
  /** How many times the store's version has been read (tests: a burst of refreshes is one or two reads). */
  reads(): number;
  /** How changes reach this process beyond the poll, for the start-up log: `postgres LISTEN boxcert_zone`, or null. */
  listening: string | null;
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
  let reads = 0;
  const reload = async (): Promise<void> => {
    reads++;
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
    }
  };
  let running: Promise<void> | null = null;
  let again: Promise<void> | null = null;
  const refresh = (): Promise<void> => {
    if (running === null) {
      running = reload().finally(() => {
        running = null;
      });
      return running;
    }
    again ??= running.then(() => {
      again = null;
      return refresh();
    });
    return again;
  };
  const timer = setInterval(() => void refresh(), pollMs);
  timer.unref();
  const stopListening = store.listenZoneChanges({
    onChange: () => void refresh(),
    onState: (event) => {
      if (event.listening) logger.info({ store: store.location, channel: ZONE_CHANNEL }, "listening for zone changes");
      else logger.warn({ store: store.location, error: event.error }, "the zone change listener lost its connection; reconnecting, polling meanwhile");
    },
  });
  return {
    snapshot: () => current,
    refresh,
    reads: () => reads,
    listening: stopListening === null ? null : `postgres LISTEN ${ZONE_CHANNEL}`,
    async close() {
      clearInterval(timer);
      await stopListening?.();
      await again;
      await running;
      await store.close();
    },
  };
}
