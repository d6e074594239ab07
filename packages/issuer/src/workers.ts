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

/** One worker per core unless the operator says otherwise. */
export const DEFAULT_WORKERS = availableParallelism();
/** A worker that dies is replaced after this long; more than CRASH_LIMIT deaths in CRASH_WINDOW_MS stop the issuer. */
const RESTART_DELAY_MS = 1000;
const CRASH_LIMIT = 5;
const CRASH_WINDOW_MS = 60_000;
/** How long workers get to finish their requests at shutdown before they are killed. */
const SHUTDOWN_GRACE_MS = 10_000;

/** What a worker tells the primary. */
export type WorkerReport = { type: "listening"; url: string };

export interface SupervisorOptions {
  workers: number;
  logger: Logger;
  /** Called once every worker listens (the first time). */
  onListening?: (url: string) => void;
}

function isWorkerReport(message: unknown): message is WorkerReport {
  return typeof message === "object" && message !== null && (message as { type?: unknown }).type === "listening";
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
        listening.add(worker.id);
        logger.debug({ worker: worker.id, pid: worker.process.pid }, "issuer worker listening");
        if (!started && listening.size >= options.workers) {
          started = true;
          options.onListening?.(message.url);
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
