/**
 * `boxcert erp duplicate --from DIR --to DIR2`: a copy of a database as a restored backup or a staging
 * copy would be, made the honest way: a new UUID and key (so the issuer tells it from the original and
 * never gives its boxes certificates), the kind `duplicate`, the same subscription code, the boxes list
 * copied and the pairing secrets not (a secret pairs one box with one database).
 *
 * The boxes are written first and database.json last (its commit point, database.ts): a copy interrupted
 * half-way is a folder without a database, which the next attempt refuses as not empty.
 */
import { randomUUID } from "node:crypto";
import { writeFileAtomic } from "@boxcert/shared";
import { assertEmptyDir, createDatabase, DataDirError, ensureDataDir, readDatabase, type Database, type DataPaths } from "./database.ts";
import { readStoreFile, serializeStore } from "./store.ts";

export interface Duplicated {
  original: Database;
  copy: Database;
  boxes: number;
}

export async function duplicateDatabase(from: DataPaths, to: DataPaths, now: number): Promise<Duplicated> {
  const original = await readDatabase(from);
  if (original === null) throw new DataDirError(`${from.dir} holds no database (no database.json)`);
  await assertEmptyDir(to.dir);
  await ensureDataDir(to.dir);
  const { boxes } = await readStoreFile(from.store);
  await writeFileAtomic(to.store, serializeStore({ boxes, pairings: [] }), 0o600);
  const copy = await createDatabase(to, {
    dbUuid: randomUUID(),
    enterpriseCode: original.record.enterpriseCode,
    kind: "duplicate",
    createdAt: new Date(now).toISOString(),
    duplicatedFrom: original.record.dbUuid,
  });
  return { original, copy, boxes: boxes.length };
}
