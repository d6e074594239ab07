/**
 * The box's data folder: one place that names every file in it. The folder is private (0700) because it
 * holds the identity key, the TLS key and the subscription code.
 */
import { mkdir, chmod } from "node:fs/promises";
import { join } from "node:path";

export interface DataPaths {
  dir: string;
  config: string;
  identityKey: string;
  /** The TLS key and its chain together, so they can never be out of step (see certificate-file.ts). */
  https: string;
  /** A TLS key made for a request whose certificate is not saved yet (see tls-key.ts). */
  pendingKey: string;
  /** The last CSR made, with the key and names it is for: reused while they are the same (csr.ts). */
  csr: string;
  logs: string;
  log: string;
}

export function dataPaths(dir: string): DataPaths {
  return {
    dir,
    config: join(dir, "config.json"),
    identityKey: join(dir, "identity.key"),
    https: join(dir, "https.pem"),
    pendingKey: join(dir, "https.pending-key.pem"),
    csr: join(dir, "https.csr.json"),
    logs: join(dir, "logs"),
    log: join(dir, "logs", "box.log"),
  };
}

export async function ensureDataDir(paths: DataPaths): Promise<void> {
  await mkdir(paths.dir, { recursive: true, mode: 0o700 });
  await chmod(paths.dir, 0o700);
  await mkdir(paths.logs, { recursive: true, mode: 0o700 });
  await chmod(paths.logs, 0o700);
}
