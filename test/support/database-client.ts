/**
 * A scripted customer database for tests: its own P-256 key and signed reports to the issuer
 * (POST /v1/database, docs/erp.md), so tests can also send what a real database never would.
 */
import { generateKeyPairSync, randomUUID, sign, type KeyObject } from "node:crypto";
import { DATABASE_PATH, SIGNATURE_HEADER, type DatabaseKind, type DatabaseReport } from "@boxcert/shared";
import { post, type Answer } from "./box-client.ts";

export interface ScriptedDatabase {
  dbUuid: string;
  enterpriseCode: string;
  key: KeyObject;
  /** The public key as reports carry it: SPKI DER, base64. */
  spki: string;
}

export function scriptedDatabase(enterpriseCode: string, dbUuid: string = randomUUID()): ScriptedDatabase {
  const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  return { dbUuid, enterpriseCode, key: privateKey, spki: publicKey.export({ type: "spki", format: "der" }).toString("base64") };
}

export function reportFields(database: ScriptedDatabase, kind: DatabaseKind, now = new Date()): DatabaseReport {
  return { dbUuid: database.dbUuid, enterpriseCode: database.enterpriseCode, kind, databaseKey: database.spki, timestamp: now.toISOString() };
}

export function signReport(database: ScriptedDatabase, body: string): string {
  return sign("sha256", Buffer.from(body), { key: database.key, dsaEncoding: "der" }).toString("base64url");
}

/** Sends a report signed by the database's key; `fields` replaces or adds body fields (still signed). */
export function report(issuerUrl: string, database: ScriptedDatabase, kind: DatabaseKind, now = new Date(), fields: Record<string, unknown> = {}): Promise<Answer> {
  const body = JSON.stringify({ ...reportFields(database, kind, now), ...fields });
  return post(issuerUrl + DATABASE_PATH, body, { [SIGNATURE_HEADER]: signReport(database, body) });
}
