/**
 * WAL checkpoints off the event loop, for the long-running writer of an SQLite store (the issuer).
 *
 * SQLite copies the WAL back into the database file in the call of the commit that takes the WAL past
 * `wal_autocheckpoint` pages, and with synchronous=NORMAL that copy fsyncs the WAL and then the database.
 * Measured on the issuance path on a 2-vCPU VM: a certificate insert blocked the event loop ~230 us on
 * average with checkpoints in it, ~80 us with them in the worker, most of the difference waiting on fsync. A worker
 * thread with its own connection runs PASSIVE checkpoints (they never block writers) every
 * CHECKPOINT_INTERVAL_MS instead. The writer's own automatic checkpoint stays, at FALLBACK_PAGES: it bounds
 * the WAL if the worker falls behind or stops, and under sustained writes it is what lets the WAL start
 * over (a checkpoint that runs while commits land never ends with the whole WAL copied). Durability is
 * unchanged: the same commits and the same syncs, in another thread.
 */
import { Worker } from "node:worker_threads";
import { createRequire } from "node:module";
import type { Database as BetterSqliteDatabase } from "better-sqlite3";

/** A page written many times within it is copied once (measured: a third fewer page copies than every 100 ms). */
const CHECKPOINT_INTERVAL_MS = 1000;
/** 4 KiB pages: a WAL of at most ~40 MB when the worker does not keep up. */
const FALLBACK_PAGES = 10_000;

/**
 * Plain CommonJS so it runs whatever loads the TypeScript sources (tsx's hooks do not reach workers).
 * synchronous=NORMAL as on the writer's connection: a checkpoint syncs the WAL before it copies it.
 */
const WORKER_SOURCE = `
const { parentPort, workerData } = require("node:worker_threads");
const Database = require(workerData.driver);
const db = new Database(workerData.path, { fileMustExist: true });
db.pragma("synchronous = NORMAL");
db.pragma("busy_timeout = 1000");
const timer = setInterval(() => {
  try {
    db.pragma("wal_checkpoint(PASSIVE)");
  } catch (err) {
    // Another process holding the database a while is no reason to stop: the next round tries again.
    if (err.code !== "SQLITE_BUSY" && err.code !== "SQLITE_LOCKED") throw err;
  }
}, workerData.intervalMs);
parentPort.once("message", () => {
  clearInterval(timer);
  db.close();
  parentPort.close();
});
`;

export interface BackgroundCheckpoints {
  stop(): Promise<void>;
}

/** Moves the WAL checkpoints of `sqlite` (a WAL-mode connection to the file at `path`) to a worker thread. */
export function startBackgroundCheckpoints(sqlite: BetterSqliteDatabase, path: string): BackgroundCheckpoints {
  sqlite.pragma(`wal_autocheckpoint = ${FALLBACK_PAGES}`);
  const worker = new Worker(WORKER_SOURCE, {
    eval: true,
    execArgv: [], // not the issuer's loader hooks or profiler flags: the worker runs plain CommonJS
    workerData: { driver: createRequire(import.meta.url).resolve("better-sqlite3"), path, intervalMs: CHECKPOINT_INTERVAL_MS },
  });
  worker.unref();
  const exited = new Promise<void>((resolve) => worker.once("exit", () => resolve()));
  worker.on("error", (err) => {
    process.emitWarning(`background WAL checkpoints of ${path} stopped (the writer checkpoints every ${FALLBACK_PAGES} pages itself): ${err.message}`);
  });
  return {
    async stop() {
      worker.ref(); // awaited from here on: the process must not end before the worker's connection closes
      worker.postMessage("stop");
      await exited;
    },
  };
}
