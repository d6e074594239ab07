/**
 * The issuance path: enrolling a box and answering its certificate requests, as named steps. A certificate
 * request is authenticated (signature, freshness), authorised (eligibility, the box, its label and identity),
 * its CSR checked, then the box's current certificate is reused or the weekly limit applied, the source
 * issues, and the new certificate is recorded. Orchestration over IssuanceRecords, the eligibility decision
 * and a CertificateSource; outcomes carry error codes, and the HTTP layer (app.ts) picks the statuses.
 */
import { randomInt } from "node:crypto";
import { certificateNames, sameNames, type CertificateResponse, type EnrollResponse } from "@boxcert/shared";
import { LockTimeoutError, type ActiveBox, type EligibilityFacts, type IssuanceState, type StoredCertificate } from "@boxcert/store";
import type { Logger } from "pino";
import type { IssuanceRecords } from "./issuance-records.ts";
import {
  hasRenewalInfo,
  boxLockName,
  isExclusivePerBox,
  pickInWindow,
  replacesPrevious,
  SourceRefusedError,
  SourceUnavailableError,
  type CertificateSource,
  type IssuedCertificate,
} from "./certificate-source.ts";
import { decideEligibility } from "./eligibility.ts";
import { authenticateSignedBody } from "./identity.ts";
import { failed, refused, type Failed, type Outcome, type Refused } from "./outcome.ts";
import { verifyCsrOffLoop, CsrError, type VerifiedCsr } from "./csr.ts";

export type Clock = () => number;

export type { Failed, Outcome, Refused };

export interface SignedInput {
  raw: Buffer;
  signature: string | undefined;
  dbUuid: string;
  enterpriseCode: string;
  identifier: string;
  identityKey: string;
  timestamp: string;
}

export type CertificateInput = SignedInput & { label: string; csr: string };

/** What a box presents once its signature is checked. */
export interface EnrollmentCredentials {
  dbUuid: string;
  enterpriseCode: string;
  identifier: string;
  identityKey: string;
}

export interface IssuanceOptions {
  records: IssuanceRecords;
  source: CertificateSource;
  zone: string;
  lifetimeMs: number;
  /** Certificates one label may get in a rolling week (a runaway box must not burn a CA's rate limit). */
  maxCertificatesPerWeek: number;
  clock: Clock;
  logger: Logger;
  /** [0, 1): where in 60–70% of the lifetime renewAfter falls. Injected for tests. */
  random?: () => number;
  /** Called after a commit that changed the zone (a box enrolled: its label answers now); returns at once (DNS NOTIFY). */
  zoneChanged?: () => void;
}

const WEEK_MS = 7 * 24 * 3600_000;
/** A box's last_seen_at is moved forward when it is at least this old (admin shows it; minutes are enough). */
const LAST_SEEN_RESOLUTION_MS = 5 * 60_000;
/**
 * The store lock `box:<label>` (ExclusivePerBox sources): a crashed holder blocks the box this long, longer
 * than an ACME order can take (30 s, plus the dns check's 10 s); a waiter gives up after BOX_LOCK_WAIT_MS.
 */
const BOX_LOCK_TTL_MS = 2 * 60_000;
const BOX_LOCK_WAIT_MS = 60_000;

/** A step either hands its result to the next one or ends the request with an answer. */
type Step<T> = { next: T } | { answer: Outcome<CertificateResponse> };

/** What authorise() decided: the box may act (with the seat it holds or would get), or the refusal. */
export type Authorisation = { authorised: true; seat: number; box: EligibilityFacts["box"] } | { authorised: false; refusal: Refused };

/**
 * The authorisation step, on the facts of the store: eligibility (decided here, once per request), then,
 * for a certificate request, that the box is enrolled under this label, then that the identity key is the
 * box's. A box not enrolled yet passes with the seat it would take.
 */
export function authorise(facts: EligibilityFacts, credentials: Pick<EnrollmentCredentials, "enterpriseCode" | "identityKey">, label?: string): Authorisation {
  const eligibility = decideEligibility(facts, credentials.enterpriseCode);
  if (!eligibility.eligible) return { authorised: false, refusal: refused(eligibility.reason, eligibility.message) };
  const box = facts.box;
  if (label !== undefined && (!box || box.label !== label.toLowerCase())) return { authorised: false, refusal: refused("box_not_enrolled") };
  if (box && box.identityKey !== credentials.identityKey) return { authorised: false, refusal: refused("identity_mismatch") };
  return { authorised: true, seat: eligibility.seat, box };
}

/**
 * Enrolls an authenticated box: authorises it on the facts read under the subscription's lock, and a box
 * that is not enrolled yet takes the seat authorise() found free, with a new label.
 */
export async function enrollBox(
  records: IssuanceRecords,
  credentials: EnrollmentCredentials,
  now: Date,
): Promise<{ refusal: Refused | null; box: ActiveBox | null; created: boolean }> {
  const enrollment = await records.enroll(credentials, now, (facts) => {
    const authorisation = authorise(facts, credentials);
    return { seat: authorisation.authorised && !facts.box ? authorisation.seat : null, result: authorisation };
  });
  const { result, box, created } = enrollment;
  return { refusal: result.authorised ? null : result.refusal, box, created };
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

  async enroll(input: SignedInput): Promise<Outcome<EnrollResponse>> {
    const unauthenticated = await this.authenticate(input);
    if (unauthenticated) return unauthenticated;
    const { refusal, box, created } = await enrollBox(this.options.records, input, new Date(this.options.clock()));
    if (refusal) return refusal;
    const { label, seat } = box!;
    if (created) {
      this.options.zoneChanged?.();
      this.options.logger.info({ label, identifier: input.identifier, seat }, "box enrolled");
    }
    return { kind: "ok", body: { label, zone: this.options.zone, names: certificateNames(label, this.options.zone) } };
  }

  async certificate(input: CertificateInput): Promise<Outcome<CertificateResponse>> {
    const unauthenticated = await this.authenticate(input);
    if (unauthenticated) return unauthenticated;
    // From reading a box's certificates to committing its new one (a group commit, after this turn of the
    // event loop), the box's other requests wait: one retried in parallel gets the same certificate
    // (reused), and a box cannot pass its weekly limit by asking many times at once.
    // Across issuer processes too, for ExclusivePerBox sources (ACME): the store lock is taken before the
    // state is read, so a second request re-reads the store after the first's insert was committed.
    return this.oneRequestPerBox.run(`${input.dbUuid.toLowerCase()} ${input.identifier}`, () =>
      isExclusivePerBox(this.options.source) ? this.underBoxLock(input) : this.issue(input),
    );
  }

  /** The authentication step: the request is fresh and signed by the identity key it carries. */
  private authenticate(input: SignedInput): Promise<Failed | null> {
    return authenticateSignedBody(input, { keyField: "identityKey", publicKey: input.identityKey, whose: "box" }, this.options.clock());
  }

  private async underBoxLock(input: CertificateInput): Promise<Outcome<CertificateResponse>> {
    const name = boxLockName(input.label);
    try {
      return await this.options.records.exclusively(name, BOX_LOCK_TTL_MS, () => this.issue(input), { waitMs: BOX_LOCK_WAIT_MS });
    } catch (err) {
      if (err instanceof LockTimeoutError) {
        this.options.logger.warn({ label: input.label, err: err.message }, "box lock still held");
        return failed("ca_unavailable", `another request for ${input.label} is still being served: ${err.message}`, 10);
      }
      throw err;
    }
  }

  /** The certificate request once authenticated, step by step. */
  private async issue(input: CertificateInput): Promise<Outcome<CertificateResponse>> {
    const now = new Date(this.options.clock());
    const state = await this.options.records.issuanceState(input.dbUuid, input.identifier, new Date(now.getTime() - WEEK_MS));
    const authorisation = authorise(state.facts, input, input.label);
    if (!authorisation.authorised) return authorisation.refusal;
    const box = authorisation.box!;
    const names = certificateNames(box.label, this.options.zone);
    const csr = await this.checkCsr(input.csr, names);
    if ("answer" in csr) return csr.answer;
    const reused = await this.reuseOrLimit(state, box.label, csr.next, now);
    if ("answer" in reused) return reused.answer;
    const issued = await this.issueFromSource(box.label, names, csr.next, reused.next, now);
    if ("answer" in issued) return issued.answer;
    return this.record(box, state, names, csr.next, issued.next, now);
  }

  /** The CSR step: a well-formed request with an acceptable key, for exactly the names the box is owed. */
  private async checkCsr(pem: string, names: [string, string]): Promise<Step<VerifiedCsr>> {
    let csr: VerifiedCsr;
    try {
      csr = await verifyCsrOffLoop(pem);
    } catch (err) {
      if (err instanceof CsrError) return { answer: failed("bad_csr", `the CSR is not acceptable: ${err.message}`) };
      throw err;
    }
    const commonNameOwed = csr.commonName === null || names.includes(csr.commonName.toLowerCase());
    if (!sameNames([...new Set(csr.names)], names) || !commonNameOwed) {
      return { answer: refused("csr_names_mismatch", `the CSR names ${JSON.stringify(csr.names)} differ from the names this box is owed: ${names.join(", ")}`) };
    }
    return { next: csr };
  }

  /**
   * The reuse-or-limit step: the box's current certificate is handed out again while it is not due for
   * renewal and the key is the same; otherwise, past the weekly limit, rate_limited. Goes on with the
   * certificate a new one replaces, for sources that name it.
   */
  private async reuseOrLimit(state: IssuanceState, label: string, csr: VerifiedCsr, now: Date): Promise<Step<StoredCertificate | null>> {
    const { records, source } = this.options;
    const latest = state.latest;
    const nowMs = now.getTime();
    let previous: StoredCertificate | null = null;
    if (latest && latest.publicKeySha256 === csr.publicKeySha256 && nowMs < Date.parse(latest.renewAfter) && nowMs < Date.parse(latest.notAfter)) {
      // null when it was revoked since the state was read: a new one is issued below.
      const stored = await records.storedCertificate(latest.id);
      if (stored) {
        const renewAfter = await this.renewalInfoUpdate(stored, label, now);
        if (renewAfter === null) return { answer: { kind: "ok", body: this.response(label, stored, true) } };
        if (renewAfter.getTime() > nowMs) return { answer: { kind: "ok", body: this.response(label, { ...stored, renewAfter: renewAfter.toISOString() }, true) } };
        // The CA wants it renewed now: a new certificate, replacing this one.
        previous = stored;
      }
    }
    const limited = this.rateLimit(state, label, now);
    if (limited) return { answer: limited };
    if (replacesPrevious(source) && latest && !previous) previous = await records.storedCertificate(latest.id);
    return { next: replacesPrevious(source) ? previous : null };
  }

  private rateLimit(state: IssuanceState, label: string, now: Date): Failed | null {
    const { maxCertificatesPerWeek, logger } = this.options;
    if (state.issuedSince < maxCertificatesPerWeek) return null;
    const retryAt = Date.parse(state.oldestSince ?? now.toISOString()) + WEEK_MS;
    const retryAfter = Math.max(1, Math.ceil((retryAt - now.getTime()) / 1000));
    logger.warn({ label, issuedSince: state.issuedSince }, "certificate rate limit reached for label");
    return failed("rate_limited", `label ${label} already got ${state.issuedSince} certificates this week (limit ${maxCertificatesPerWeek})`, retryAfter);
  }

  /** The issue step: the source makes the certificate; its refusals and outages become answers. */
  private async issueFromSource(label: string, names: string[], csr: VerifiedCsr, previous: StoredCertificate | null, now: Date): Promise<Step<IssuedCertificate>> {
    const { source, zone, lifetimeMs, logger } = this.options;
    try {
      const issued = await source.issue({
        label,
        zone,
        names,
        csr,
        lifetimeMs,
        now,
        ...(previous ? { previous: { chainPem: previous.chainPem, source: previous.source } } : {}),
      });
      return { next: issued };
    } catch (err) {
      // The box keeps any valid certificate and comes back after Retry-After.
      if (err instanceof SourceUnavailableError) {
        logger.warn({ label, err: err.message }, "certificate source unavailable");
        return { answer: failed("ca_unavailable", err.message, err.retryAfterSeconds) };
      }
      // The request was valid and the box eligible; the upstream CA said no, with its reason.
      if (err instanceof SourceRefusedError) {
        logger.warn({ label, err: err.message, problem: err.problemType }, "certificate source refused");
        return { answer: failed("ca_refused", err.message) };
      }
      throw err;
    }
  }

  /** The record step: the new certificate is committed before the box gets it. */
  private async record(
    box: NonNullable<EligibilityFacts["box"]>,
    state: IssuanceState,
    names: string[],
    csr: VerifiedCsr,
    issued: IssuedCertificate,
    now: Date,
  ): Promise<Outcome<CertificateResponse>> {
    const renewAfter = this.renewAfter(issued, now);
    const stored: StoredCertificate = {
      serial: issued.serial,
      names,
      chainPem: issued.chainPem,
      notBefore: issued.notBefore.toISOString(),
      notAfter: issued.notAfter.toISOString(),
      renewAfter: renewAfter.toISOString(),
      publicKeySha256: csr.publicKeySha256,
      source: issued.source ?? this.options.source.name,
    };
    // last_seen_at is kept to LAST_SEEN_RESOLUTION_MS: a box renewing in a loop costs one write, not two.
    const touchBox = state.lastSeenAt === null || now.getTime() - Date.parse(state.lastSeenAt) >= LAST_SEEN_RESOLUTION_MS;
    // The box never gets a certificate the store does not have: when the insert's commit is not confirmed
    // (the store went away; a commit whose answer was lost may still have happened), the request fails
    // (503 store_unavailable when the store is unreachable) and the signed certificate is never sent; its
    // serial is logged so an operator sees it was signed and not delivered.
    let recordedMeanwhile: StoredCertificate | null;
    try {
      recordedMeanwhile = await this.options.records.insertCertificate(
        {
          boxId: box.id,
          latestIdSeen: state.latest?.id ?? 0,
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
    } catch (err) {
      this.options.logger.warn({ label: box.label, serial: issued.serial, err: (err as Error).message }, "certificate signed but its commit not confirmed: not delivered");
      throw err;
    }
    if (recordedMeanwhile) {
      // Another issuer process recorded one for this box and key while this one was made: that one is the
      // box's; this one was never recorded and is not sent.
      this.options.logger.info({ label: box.label, serial: recordedMeanwhile.serial, discarded: issued.serial }, "certificate recorded meanwhile by another issuer: answered that one");
      return { kind: "ok", body: this.response(box.label, recordedMeanwhile, true) };
    }
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
   * Asks a RenewalInfoSource for the certificate's current renewal window (RFC 9773, when due) and moves a
   * stored renewAfter that now falls after the window into it; null when nothing changed.
   */
  private async renewalInfoUpdate(stored: StoredCertificate, label: string, now: Date): Promise<Date | null> {
    const { source, records } = this.options;
    if (!hasRenewalInfo(source)) return null;
    const window = await source.updatedRenewalWindow({ chainPem: stored.chainPem, source: stored.source });
    if (!window || Date.parse(stored.renewAfter) <= window.end.getTime()) return null;
    const renewAfter = pickInWindow(window, this.random(), now);
    await records.setRenewAfter(stored.serial, renewAfter);
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
