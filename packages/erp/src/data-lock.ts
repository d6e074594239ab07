/**
 * One `boxcert erp` per data folder: the store (store.ts) is written by one process, so a second one
 * would overwrite the first's registrations. The running process keeps its pid in erp.pid, made with
 * O_EXCL; a file left by a process that is gone (kill -9, a power cut) is taken over.
 */
import { open, readFile, unlink } from "node:fs/promises";
import { DataDirError } from "./database.ts";

/** Locks this process holds: a container restarts with the same pid, so "our pid" alone is not proof. */
const HELD = new Set<string>();

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists, under another user.
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

async function holder(path: string): Promise<number | null> {
  const text = await readFile(path, "utf8").catch(() => "");
  const pid = Number(text.trim());
  if (!Number.isSafeInteger(pid) || pid <= 0) return null;
  if (pid === process.pid) return HELD.has(path) ? pid : null;
  return alive(pid) ? pid : null;
}

async function create(path: string): Promise<boolean> {
  try {
    const handle = await open(path, "wx", 0o600);
    await handle.writeFile(`${process.pid}\n`);
    await handle.close();
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "EEXIST") return false;
    throw err;
  }
}

/** Takes the data folder's lock; the function returned gives it back. */
export async function lockDataDir(path: string): Promise<() => Promise<void>> {
  if (!(await create(path))) {
    const pid = await holder(path);
    if (pid !== null) throw new DataDirError(`${path}: the data folder is used by another boxcert erp (pid ${pid}); one process per data folder`);
    await unlink(path).catch(() => undefined);
    if (!(await create(path))) throw new DataDirError(`${path}: another boxcert erp took the data folder at the same moment`);
  }
  HELD.add(path);
  return async () => {
    HELD.delete(path);
    await unlink(path).catch(() => undefined);
  };
}
