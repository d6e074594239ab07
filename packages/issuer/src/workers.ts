/**
 * `boxcert issuer --workers N`: one primary process and N worker processes (node:cluster) sharing the
 * listening port. Each worker is a whole issuer (its own event loop, store connections and CA key); the
 * primary only prepares what must exist once (the store's schema, the CA and ACME account keys, so that
 * workers starting at once never race to create them), hands connections to the workers in turn, and
 * replaces a worker that dies. Workers hold no state of their own: every decision is in the store, so a
 * box may reach any worker of any issuer machine.
 *
 * Processes rather than worker threads: a process is the unit the kernel schedules, accounts memory to and
 * kills cleanly, and a worker that crashes (or leaks) takes nothing else down.
 */
import cluster, { type Worker } from "node:cluster";
import { availableParallelism } from "node:os";
import type { Logger } from "pino";
import type { MetricsSnapshot } from "./metrics.ts";

/** One worker per core unless the operator says otherwise. */
export const DEFAULT_WORKERS = availableParallelism();
/** A worker that dies is replaced after this long; more than CRASH_LIMIT deaths in CRASH_WINDOW_MS stop the issuer. */
const RESTART_DELAY_MS = 1000;
const CRASH_LIMIT = 5;
const CRASH_WINDOW_MS = 60_000;
/** How long workers get to finish their requests at shutdown before they are killed. */
const SHUTDOWN_GRACE_MS = 10_000;

/** How long the primary waits for a worker's metrics at a scrape; a worker that does not answer is left out. */
const METRICS_WAIT_MS = 2000;

/** What a worker tells the primary. */
export type WorkerReport = { type: "listening"; url: string } | { type: "metrics"; id: number; snapshot: MetricsSnapshot };

export interface SupervisorOptions {
  workers: number;
  logger: Logger;
  /** Called once every worker listens (the first time). */
  onListening?: (url: string) => void | Promise<void>;
}

function isWorkerReport(message: unknown): message is WorkerReport {
  const type = typeof message === "object" && message !== null ? (message as { type?: unknown }).type : undefined;
  return type === "listening" || type === "metrics";
}

/** Scrapes waiting for workers' answers, by request id (primary side). */
const metricsWaiting = new Map<number, (snapshot: MetricsSnapshot | null) => void>();
let nextMetricsRequest = 1;

/**
 * Runs in the primary at a scrape: asks every live worker for its metrics snapshot over the cluster's IPC
 * channel and returns those that answered within METRICS_WAIT_MS.
 */
export async function gatherWorkerMetrics(): Promise<MetricsSnapshot[]> {
  const workers = Object.values(cluster.workers ?? {}).filter((w): w is Worker => w !== undefined && w.isConnected());
  const answers = await Promise.all(
    workers.map(
      (worker) =>
        new Promise<MetricsSnapshot | null>((resolve) => {
          const id = nextMetricsRequest++;
          const timer = setTimeout(() => {
            metricsWaiting.delete(id);
            resolve(null);
          }, METRICS_WAIT_MS);
          metricsWaiting.set(id, (snapshot) => {
            clearTimeout(timer);
            metricsWaiting.delete(id);
            resolve(snapshot);
          });
          worker.send({ type: "metrics?", id }, (err: Error | null) => {
            if (err) metricsWaiting.get(id)?.(null);
          });
        }),
    ),
  );
  return answers.filter((a): a is MetricsSnapshot => a !== null);
}

/** Runs in a worker: answers the primary's metrics requests with `snapshot()`. */
export function answerMetricsRequests(snapshot: () => MetricsSnapshot): void {
  process.on("message", (message: unknown) => {
    const request = message as { type?: unknown; id?: unknown };
    if (request?.type !== "metrics?" || typeof request.id !== "number") return;
    process.send?.({ type: "metrics", id: request.id, snapshot: snapshot() } satisfies WorkerReport);
  });
}

/**
 * Runs in the primary: forks the workers, waits until each listens, replaces those that die, and stops them
 * all on SIGTERM or SIGINT. Rejects when a worker fails before listening (the same configuration would fail
 * in every worker: the worker printed why) or when workers keep dying.
 */
export function superviseWorkers(options: SupervisorOptions): Promise<void> {
  const { logger } = options;
  const listening = new Set<number>();
  const deaths: number[] = [];
  let started = false;
  let stopping = false;

  return new Promise<void>((resolve, reject) => {
    const fail = (message: string) => {
      stopping = true;
      for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill("SIGKILL");
      reject(new Error(message));
    };
    const fork = (): Worker => {
      const worker = cluster.fork();
      worker.on("message", (message: unknown) => {
        if (!isWorkerReport(message)) return;
        if (message.type === "metrics") {
          metricsWaiting.get(message.id)?.(message.snapshot);
          return;
        }
        listening.add(worker.id);
        logger.debug({ worker: worker.id, pid: worker.process.pid }, "issuer worker listening");
        if (!started && listening.size >= options.workers) {
          started = true;
          Promise.resolve(options.onListening?.(message.url)).catch((err: Error) => fail(err.message));
        }
      });
      return worker;
    };

    cluster.on("exit", (worker, code, signal) => {
      const wasListening = listening.delete(worker.id);
      if (stopping) {
        if (Object.keys(cluster.workers ?? {}).length === 0) resolve();
        return;
      }
      if (!wasListening && !started) {
        fail(`an issuer worker stopped before it listened (exit ${signal ?? code}); its error is above`);
        return;
      }
      const now = Date.now();
      deaths.push(now);
      while (deaths.length > 0 && deaths[0]! < now - CRASH_WINDOW_MS) deaths.shift();
      if (deaths.length > CRASH_LIMIT) {
        logger.fatal({ deaths: deaths.length, windowS: CRASH_WINDOW_MS / 1000 }, "issuer workers keep dying: stopping the issuer");
        fail(`issuer workers died ${deaths.length} times in ${CRASH_WINDOW_MS / 1000} s`);
        return;
      }
      logger.error({ worker: worker.id, pid: worker.process.pid, code, signal }, "an issuer worker died; starting another");
      setTimeout(() => {
        if (!stopping) fork();
      }, RESTART_DELAY_MS).unref();
    });

    const stop = (signal: NodeJS.Signals) => {
      if (stopping) return;
      stopping = true;
      logger.info({ signal }, "stopping the issuer's workers");
      const workers = Object.values(cluster.workers ?? {}).filter((w): w is Worker => w !== undefined);
      if (workers.length === 0) resolve();
      for (const worker of workers) worker.process.kill("SIGTERM");
      setTimeout(() => {
        for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill("SIGKILL");
      }, SHUTDOWN_GRACE_MS).unref();
    };
    process.once("SIGTERM", stop);
    process.once("SIGINT", stop);

    for (let i = 0; i < options.workers; i++) fork();
  });
}

/** Runs in a worker once its issuer listens. */
export function reportListening(url: string): void {
  process.send?.({ type: "listening", url } satisfies WorkerReport);
}

export function isIssuerWorker(): boolean {
  return cluster.isWorker;
}
