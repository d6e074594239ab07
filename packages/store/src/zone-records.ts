/**
 * What the dns component answers from, in the store: challenge TXT values (written by the ACME path,
 * read by dns), box revocation, and the zone version the triggers move (migrations.ts 0002).
 */
import type { Kysely } from "kysely";
import type { Database } from "./schema.ts";
import { RegistryError } from "./registry-error.ts";
import { lockOwnerIsGone } from "./lock.ts";

export interface ZoneRecordsSnapshot {
  version: number;
  activeLabels: Set<string>;
  challenges: Map<string, string[]>;
  /** CA domains the issuer's ACME directories name, sorted. */
  caa: string[];
}

/** A CAA issuer domain: letters, digits, hyphens and dots (RFC 8659 issuer-domain-name). */
const CAA_DOMAIN = /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

const CHALLENGE_VALUE = /^[A-Za-z0-9_-]{1,255}$/;

export class ZoneRecords {
  constructor(private readonly db: Kysely<Database>) {}

  /** Adds a `_acme-challenge.<label>` TXT value; adding one that is there already is a no-op. */
  async addChallenge(label: string, value: string, now = new Date()): Promise<void> {
    if (!CHALLENGE_VALUE.test(value)) throw new RegistryError("invalid", `a challenge value is 1-255 base64url characters, not "${value.slice(0, 40)}"`);
    await this.db
      .insertInto("dns_challenges")
      .values({ label: label.toLowerCase(), value, created_at: now.toISOString() })
      .onConflict((oc) => oc.columns(["label", "value"]).doNothing())
      .execute();
  }

  async removeChallenge(label: string, value: string): Promise<void> {
    await this.db.deleteFrom("dns_challenges").where("label", "=", label.toLowerCase()).where("value", "=", value).execute();
  }

  /** Removes every challenge value of a label (an order starting under the label's lock: none is still needed). */
  async removeChallengesOf(label: string): Promise<number> {
    const result = await this.db.deleteFrom("dns_challenges").where("label", "=", label.toLowerCase()).executeTakeFirst();
    return Number(result.numDeletedRows);
  }

  /**
   * Removes the challenge values no running order can still need: an order writes its values under its
   * label's store lock (`lockName(label)`, lock.ts) and removes them before releasing it, so a value whose
   * lock is free, expired, or held by a process of this machine that is gone (killed mid-order) was left
   * behind. Values of orders running elsewhere (a live lock) are kept. Returns how many were removed.
   */
  async removeOrphanChallenges(lockName: (label: string) => string, now = new Date()): Promise<number> {
    const challenges = await this.db.selectFrom("dns_challenges").select(["id", "label"]).execute();
    let removed = 0;
    for (const { id, label } of challenges) {
      const lock = await this.db.selectFrom("locks").select(["owner", "expires_at"]).where("name", "=", lockName(label)).executeTakeFirst();
      if (lock && lock.expires_at > now.toISOString() && !lockOwnerIsGone(lock.owner)) continue;
      const result = await this.db.deleteFrom("dns_challenges").where("id", "=", id).executeTakeFirst();
      removed += Number(result.numDeletedRows);
    }
    return removed;
  }

  /** Removes challenge values older than `before` (left by a crash mid-order); returns how many. */
  async removeChallengesBefore(before: Date): Promise<number> {
    const result = await this.db.deleteFrom("dns_challenges").where("created_at", "<", before.toISOString()).executeTakeFirst();
    return Number(result.numDeletedRows);
  }

  /**
   * Records the CA domains a directory names (its `meta.caaIdentities`), for the dns component's CAA records.
   * Rows are only added or touched: another issuer process may use other directories.
   */
  async publishCaaIdentities(directory: string, domains: readonly string[], now = new Date()): Promise<string[]> {
    const valid = [...new Set(domains.map((d) => d.toLowerCase()))].filter((d) => CAA_DOMAIN.test(d));
    for (const domain of valid) {
      await this.db
        .insertInto("caa_identities")
        .values({ domain, directory, updated_at: now.toISOString() })
        .onConflict((oc) => oc.column("domain").doUpdateSet({ directory, updated_at: now.toISOString() }))
        .execute();
    }
    return valid;
  }

  async listChallenges(): Promise<Array<{ label: string; value: string; createdAt: string }>> {
    const rows = await this.db.selectFrom("dns_challenges").select(["label", "value", "created_at"]).orderBy("id").execute();
    return rows.map((r) => ({ label: r.label, value: r.value, createdAt: r.created_at }));
  }

  /** The version the triggers move; cheap enough to poll several times a second. */
  async version(): Promise<number> {
    const row = await this.db.selectFrom("zone_state").select("version").where("id", "=", 1).executeTakeFirst();
    return Number(row?.version ?? 0);
  }

  /** Everything dns answers from, read in one transaction so the version matches the data. */
  async snapshot(): Promise<ZoneRecordsSnapshot> {
    return this.db.transaction().execute(async (trx) => {
      const version = await trx.selectFrom("zone_state").select("version").where("id", "=", 1).executeTakeFirst();
      const boxes = await trx.selectFrom("boxes").select("label").where("freed_at", "is", null).where("revoked_at", "is", null).execute();
      const values = await trx.selectFrom("dns_challenges").select(["label", "value"]).orderBy("id").execute();
      const caa = await trx.selectFrom("caa_identities").select("domain").orderBy("domain").execute();
      const challenges = new Map<string, string[]>();
      for (const { label, value } of values) {
        const list = challenges.get(label);
        if (list) list.push(value);
        else challenges.set(label, [value]);
      }
      return { version: Number(version?.version ?? 0), activeLabels: new Set(boxes.map((b) => b.label)), challenges, caa: caa.map((r) => r.domain) };
    });
  }
}
