/**
 * PostgreSQL's LISTEN/NOTIFY for the zone: the version trigger (migrations.ts 0006) sends
 * `pg_notify('boxcert_zone', version)` at every commit that changes what dns answers, and a dns process
 * keeps one connection of its own LISTENing, outside the pool (a pooled connection is shared and may be
 * closed when idle). When that connection drops (PostgreSQL restarts, a proxy cuts it) it is opened again
 * with a backoff; meanwhile the caller's poll is the safety net, and each (re)connection reports a change so
 * whatever was committed while nobody listened is read.
 */
import type pg from "pg";
import { backoffDelay, type BackoffSchedule } from "@boxcert/shared";

export const ZONE_CHANNEL = "boxcert_zone";

/** A quarter second doubling to 5 s: a restarted server is usually back within seconds. */
export const LISTEN_BACKOFF: BackoffSchedule = { initialMs: 250, maxMs: 5000, factor: 2, jitter: 0.2 };

const CONNECT_TIMEOUT_MS = 10_000;

export type ZoneListenEvent = { listening: true } | { listening: false; error: string };

export interface ZoneChangeListener {
  /** Called on every notification, and after each (re)connection. Must return at once. */
  onChange: () => void;
  /** Connection state changes, for the caller's log: connected, or lost/failed (then retried). */
  onState?: (event: ZoneListenEvent) => void;
}

/** Starts listening; the function returned stops for good. `Client` is pg's, passed in so an SQLite store never loads pg. */
export function listenZoneChannel(Client: typeof pg.Client, url: string, listener: ZoneChangeListener): () => Promise<void> {
  let client: pg.Client | null = null;
  let stopped = false;
  let retry: NodeJS.Timeout | null = null;
  let attempt = 0;

  const lost = (c: pg.Client, error: string) => {
    if (client !== c) return; // already handled (an "error" is usually followed by "end")
    client = null;
    c.end().catch(() => {});
    if (stopped) return;
    listener.onState?.({ listening: false, error });
    if (retry === null) {
      retry = setTimeout(() => {
        retry = null;
        void connect();
      }, backoffDelay(LISTEN_BACKOFF, attempt++));
      retry.unref();
    }
  };

  const connect = async () => {
    if (stopped) return;
    // keepAlive finds a connection whose server vanished; the timeout a connect that never completes.
    const c = new Client({ connectionString: url, keepAlive: true, connectionTimeoutMillis: CONNECT_TIMEOUT_MS });
    client = c;
    // Without an "error" listener a broken connection would be an uncaught exception (a PostgreSQL restart).
    c.on("error", (err) => lost(c, err.message));
    c.on("end", () => lost(c, "connection ended"));
    c.on("notification", (message) => {
      if (message.channel === ZONE_CHANNEL) listener.onChange();
    });
    try {
      await c.connect();
      await c.query(`LISTEN ${ZONE_CHANNEL}`);
    } catch (err) {
      lost(c, (err as Error).message);
      return;
    }
    if (stopped || client !== c) {
      await c.end().catch(() => {});
      return;
    }
    attempt = 0;
    listener.onState?.({ listening: true });
    listener.onChange();
  };

  void connect();
  return async () => {
    stopped = true;
    if (retry !== null) clearTimeout(retry);
    const c = client;
    client = null;
    await c?.end().catch(() => {});
  };
}
