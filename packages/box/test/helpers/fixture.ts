/** A box in a fresh temporary data folder, on loopback port 0, against a test issuer. */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildBox } from "../../src/box.ts";
import type { Box, BoxOptions } from "../../src/box.ts";
import { dataPaths, ensureDataDir } from "../../src/data-dir.ts";
import { updateConfig } from "../../src/config.ts";
import type { DataPaths } from "../../src/data-dir.ts";

export async function tempDir(prefix = "boxcert-box-"): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

export interface BoxFixture {
  box: Box;
  paths: DataPaths;
  ports: { httpPort: number; httpsPort: number };
  stop(): Promise<void>;
}

/** Builds and starts a box; `dir` defaults to a new temporary folder (removed by stop()). */
export async function startBox(options: Partial<BoxOptions> & { issuerUrl: string }, dir?: string): Promise<BoxFixture> {
  const temp = dir ? null : await tempDir();
  const dataDir = dir ?? (temp as { dir: string }).dir;
  const box = buildBox({ dataDir, httpPort: 0, httpsPort: 0, host: "127.0.0.1", ip: "127.0.0.1", ...options });
  const ports = await box.start();
  return {
    box,
    paths: dataPaths(dataDir),
    ports,
    stop: async () => {
      await box.stop();
      await temp?.cleanup();
    },
  };
}

/** A data folder already connected to a database (server, database UUID, subscription code). */
export async function connectedDir(credential = { dbUuid: "db-1", enterpriseCode: "SECRET-CODE-42" }): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const temp = await tempDir();
  const paths = dataPaths(temp.dir);
  await ensureDataDir(paths);
  await updateConfig(paths, { server: "https://erp.example/", ...credential });
  return temp;
}
