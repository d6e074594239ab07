/**
 * The issuance path: enrolling a box and answering its certificate requests. Pure orchestration over the
 * registry, the eligibility decision and a CertificateSource; the HTTP layer (app.ts) only maps outcomes.
 */
import { randomInt } from "node:crypto";
import { certificateNames, REFUSALS, REQUEST_MAX_SKEW_MS, type CertificateResponse, type EnrollResponse, type RefusalReason } from "@boxcert/shared";
import type { Logger } from "pino";
import type { Registry, StoredCertificate } from "./registry.ts";
import { pickInWindow, type CertificateSource, type IssuedCertificate } from "./certificate-source.ts";
import { decideEligibility } from "./eligibility.ts";
import { identityPublicKey, verifyBodySignature } from "./identity.ts";
import { verifyCsr, CsrError } from "./csr.ts";
import { SourceRefusedError, SourceUnavailableError } from "./acme.ts";
import { LockTimeoutError, withStoreLock } from "./store/lock.ts";

export type Clock = () => number;

export type Outcome<T> =
  | { kind: "ok"; body: T }
  | { kind: "refused"; reason: RefusalReason; message: string }
  | { kind: "error"; status: number; code: string; message: string; retryAfterSeconds?: number };

export interface SignedInput {
  raw: Buffer;
  signature: string | undefined;
  dbUuid: string;
  enterpriseCode: string;
  identifier: string;
  identityKey: string;
  timestamp: string;
}

export interface IssuanceOptions {
  registry: Registry;
  source: CertificateSource;
  zone: string;
  lifetimeMs: number;
  /** Certificates one label may get in a rolling week (a runaway box must not burn a CA's rate limit). */
  maxCertificatesPerWeek: number;
  clock: Clock;
  logger: Logger;
  /** [0, 1): where in 60–70% of the lifetime renewAfter falls. Injected for tests. */
  random?: () => number;
}

const WEEK_MS = 7 * 24 * 3600_000;
/** A box's last_seen_at is moved forward when it is at least this old (admin shows it; minutes are enough). */
const LAST_SEEN_RESOLUTION_MS = 5 * 60_000;
/**
 * The store lock `box:<label>` (sources with serializePerBox): a crashed holder blocks the box this long,
 * longer than an ACME order can take (30 s, plus the dns check's 10 s); a waiter gives up after BOX_LOCK_WAIT_MS.
 */
const BOX_LOCK_TTL_MS = 2 * 60_000;
const BOX_LOCK_WAIT_MS = 60_000;

function refused<T>(reason: RefusalReason, message: string = REFUSALS[reason].message): Outcome<T> {
  return { kind: "refused", reason, message };
}

function error<T>(status: number, code: string, message: string, retryAfterSeconds?: number): Outcome<T> {
  return { kind: "error", status, code, message, ...(retryAfterSeconds !== undefined ? { retryAfterSeconds } : {}) };
}

/** Runs the tasks given under one key one after the other, and tasks under different keys freely. */
class OneAtATime {
  private readonly tails = new Map<string, Promise<unknown>>();

  run<T>(key: string, task: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(key);
    const result = previous ? previous.then(task, task) : task();
    const tail = result.then(noop, noop);
    this.tails.set(key, tail);
    void tail.then(() => {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    });
    return result;
  }
}

function noop(): void {}

export class Issuance {
  private readonly random: () => number;
  private readonly oneRequestPerBox = new OneAtATime();
  constructor(private readonly options: IssuanceOptions) {
    this.random = options.random ?? (() => randomInt(0, 1_000_000) / 1_000_000);
  }

  /** Checks the request's freshness and its signature by the identity key it carries. */
  private authenticate<T>(input: SignedInput): Outcome<T> | null {
    const at = Date.parse(input.timestamp);
    const now = this.options.clock();
    if (Number.isNaN(at)) return error(400, "bad_request", "timestamp is not an ISO 8601 date");
    if (Math.abs(now - at) > REQUEST_MAX_SKEW_MS) {
      return error(401, "stale_request", `the request timestamp ${input.timestamp} is more than ${REQUEST_MAX_SKEW_MS / 60000} minutes from the issuer's clock ${new Date(now).toISOString()}; check the box's clock`);
    }
    const key = identityPublicKey(input.identityKey);
    if (!key) return error(400, "bad_identity_key", "identityKey is not an ECDSA P-256 public key (SPKI DER, base64)");
    if (!verifyBodySignature(input.raw, input.signature, key)) {
      return error(401, "bad_signature", "the boxcert-signature header does not sign this body with identityKey");
    }
    return null;
  }

  async enroll(input: SignedInput): Promise<Outcome<EnrollResponse>> {
    const failed = this.authenticate<EnrollResponse>(input);
    if (failed) return failed;
    const now = new Date(this.options.clock());
    const result = await this.options.registry.enroll(input, now);
    if (!result.eligibility.eligible) return refused(result.eligibility.reason, result.eligibility.message);
    const box = result.box!;
    if (box.identityKey !== input.identityKey) return refused("identity_mismatch");
    if (result.created) this.options.logger.info({ label: box.label, identifier: input.identifier, seat: box.seat }, "box enrolled");
    return { kind: "ok", body: { label: box.label, zone: this.options.zone, names: certificateNames(box.label, this.options.zone) } };
  }

  async certificate(input: SignedInput & { label: string; csr: string }): Promise<Outcome<CertificateResponse>> {
    const failed = this.authenticate<CertificateResponse>(input);
    if (failed) return failed;
    // From reading a box's certificates to committing its new one (a group commit, after this turn of the
    // event loop), the box's other requests wait: one retried in parallel gets the same certificate
    // (reused), and a box cannot pass its weekly limit by asking many times at once.
    // Across issuer processes too, for sources that ask (ACME): the store lock is taken before the state is
    // read, so a second request re-reads the store after the first's insert was committed.
    return this.oneRequestPerBox.run(`${input.dbUuid.toLowerCase()} ${input.identifier}`, () =>
      this.options.source.serializePerBox ? this.issueLocked(input) : this.issue(input),
    );
  }

  private async issueLocked(input: SignedInput & { label: string; csr: string }): Promise<Outcome<CertificateResponse>> {
    const name = `box:${input.label.toLowerCase()}`;
    try {
      return await withStoreLock(this.options.registry.store.db, name, BOX_LOCK_TTL_MS, () => this.issue(input), { waitMs: BOX_LOCK_WAIT_MS });
    } catch (err) {
      if (err instanceof LockTimeoutError) {
        this.options.logger.warn({ label: input.label, err: err.message }, "box lock still held");
        return error(503, "ca_unavailable", `another request for ${input.label} is still being served: ${err.message}`, 10);
      }
      throw err;
    }
  }

  private async issue(input: SignedInput & { label: string; csr: string }): Promise<Outcome<CertificateResponse>> {
    const { registry, zone } = this.options;
    const now = new Date(this.options.clock());
    const nowMs = now.getTime();
    const state = await registry.issuanceState(input.dbUuid, input.identifier, new Date(nowMs - WEEK_MS));
    const eligibility = decideEligibility(state.facts, input.enterpriseCode);
    if (!eligibility.eligible) return refused(eligibility.reason, eligibility.message);
    const box = state.facts.box;
    if (!box || box.label !== input.label.toLowerCase()) return refused("box_not_enrolled");
    if (box.identityKey !== input.identityKey) return refused("identity_mismatch");

    let csr;
    try {
      csr = verifyCsr(input.csr);
    } catch (err) {
      if (err instanceof CsrError) return error(400, "bad_csr", `the CSR is not acceptable: ${err.message}`);
      throw err;
    }
    const names = certificateNames(box.label, zone);
    const csrNames = [...new Set(csr.names)].sort();
    if (csrNames.length !== 2 || csrNames.join(",") !== [...names].sort().join(",") || (csr.commonName !== null && !names.includes(csr.commonName.toLowerCase()))) {
      return refused("csr_names_mismatch", `the CSR names ${JSON.stringify(csr.names)} differ from the names this box is owed: ${names.join(", ")}`);
    }

    const latest = state.latest;
    const { source } = this.options;
    let previous: StoredCertificate | null = null;
    if (latest && latest.publicKeySha256 === csr.publicKeySha256 && nowMs < Date.parse(latest.renewAfter) && nowMs < Date.parse(latest.notAfter)) {
      // null when it was revoked since the state was read: a new one is issued below.
      const stored = await registry.storedCertificate(latest.id);
      if (stored) {
        const renewAfter = await this.renewalInfoUpdate(stored, box.label, now);
        if (renewAfter === null) return { kind: "ok", body: this.response(box.label, stored, true) };
        if (renewAfter.getTime() > nowMs) return { kind: "ok", body: this.response(box.label, { ...stored, renewAfter: renewAfter.toISOString() }, true) };
        // The CA wants it renewed now: a new certificate below, replacing this one.
        previous = stored;
      }
    }
    if (source.wantsPreviousCertificate && latest && !previous) previous = await registry.storedCertificate(latest.id);
    if (state.issuedSince >= this.options.maxCertificatesPerWeek) {
      const retryAt = Date.parse(state.oldestSince ?? now.toISOString()) + WEEK_MS;
      const retryAfter = Math.max(1, Math.ceil((retryAt - nowMs) / 1000));
      this.options.logger.warn({ label: box.label, issuedSince: state.issuedSince }, "certificate rate limit reached for label");
      return error(429, "rate_limited", `label ${box.label} already got ${state.issuedSince} certificates this week (limit ${this.options.maxCertificatesPerWeek})`, retryAfter);
    }

    let issued;
    try {
      issued = await source.issue({
        label: box.label,
        zone,
        names,
        csr,
        lifetimeMs: this.options.lifetimeMs,
        now,
        ...(source.wantsPreviousCertificate && previous ? { previous: { chainPem: previous.chainPem, source: previous.source } } : {}),
      });
    } catch (err) {
      // The box keeps any valid certificate and comes back after Retry-After.
      if (err instanceof SourceUnavailableError) {
        this.options.logger.warn({ label: box.label, err: err.message }, "certificate source unavailable");
        return error(503, "ca_unavailable", err.message, err.retryAfterSeconds);
      }
      // 502: the request was valid and the box eligible; the upstream CA said no, with its reason.
      if (err instanceof SourceRefusedError) {
        this.options.logger.warn({ label: box.label, err: err.message, problem: err.problemType }, "certificate source refused");
        return error(502, "ca_refused", err.message);
      }
      throw err;
    }
    const renewAfter = this.renewAfter(issued, now);
    const stored: StoredCertificate = {
      serial: issued.serial,
      names,
      chainPem: issued.chainPem,
      notBefore: issued.notBefore.toISOString(),
      notAfter: issued.notAfter.toISOString(),
      renewAfter: renewAfter.toISOString(),
      publicKeySha256: csr.publicKeySha256,
      source: issued.source ?? source.name,
    };
    // last_seen_at is kept to LAST_SEEN_RESOLUTION_MS: a box renewing in a loop costs one write, not two.
    const touchBox = state.lastSeenAt === null || nowMs - Date.parse(state.lastSeenAt) >= LAST_SEEN_RESOLUTION_MS;
    await registry.insertCertificate(
      {
        boxId: box.id,
        serial: issued.serial,
        names,
        publicKeySha256: csr.publicKeySha256,
        chainPem: issued.chainPem,
        source: stored.source,
        notBefore: issued.notBefore,
        notAfter: issued.notAfter,
        renewAfter,
        now,
      },
      { touchBox },
    );
    this.options.logger.info({ label: box.label, serial: issued.serial, notAfter: stored.notAfter }, "certificate issued");
    return { kind: "ok", body: this.response(box.label, stored, false) };
  }

  /**
   * A random point in the source's renewal window (ACME: the CA's), or in 60–70% of the remaining lifetime,
   * measured from now, not from notBefore: a backdated notBefore would pull short lifetimes into the past.
   */
  private renewAfter(issued: IssuedCertificate, now: Date): Date {
    const notAfter = issued.notAfter.getTime();
    if (issued.renewalWindow) return new Date(Math.min(notAfter, pickInWindow(issued.renewalWindow, this.random(), now).getTime()));
    const start = Math.max(issued.notBefore.getTime(), now.getTime());
    return new Date(start + (notAfter - start) * (0.6 + 0.1 * this.random()));
  }

  /**
   * Asks the source for the certificate's current renewal window (RFC 9773, when due) and moves a stored
   * renewAfter that now falls after the window into it; null when nothing changed.
   */
  private async renewalInfoUpdate(stored: StoredCertificate, label: string, now: Date): Promise<Date | null> {
    const { source, registry } = this.options;
    if (!source.updatedRenewalWindow) return null;
    const window = await source.updatedRenewalWindow({ chainPem: stored.chainPem, source: stored.source });
    if (!window || Date.parse(stored.renewAfter) <= window.end.getTime()) return null;
    const renewAfter = pickInWindow(window, this.random(), now);
    await registry.setRenewAfter(stored.serial, renewAfter);
    this.options.logger.info({ label, serial: stored.serial, renewAfter: renewAfter.toISOString(), window: { start: window.start.toISOString(), end: window.end.toISOString() } }, "the CA moved the renewal window: renewAfter moved");
    return renewAfter;
  }

  private response(label: string, cert: StoredCertificate, reused: boolean): CertificateResponse {
    return {
      label,
      zone: this.options.zone,
      names: cert.names,
      chain: cert.chainPem,
      serial: cert.serial,
      notBefore: cert.notBefore,
      notAfter: cert.notAfter,
      renewAfter: cert.renewAfter,
      reused,
    };
  }
}
