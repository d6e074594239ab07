/**
 * The box's registration with its database (docs/erp.md "The box registers with the database"): the
 * database learns the box's identity key from the first registration, which carries the one-time pairing
 * secret of the connection token, and the box's name, IP, HTTPS address, certificate expiry, version and
 * plain-HTTP port from every registration (its "last seen").
 *
 * When (registrationOwed, a pure decision):
 *   - a pairing secret is held (a connect that brought one): register with it;
 *   - registered with the database of the server the box is connected to, and one of the registered facts
 *     changed (their fingerprint in config.json differs), or the last registration is a day old.
 * The box asks after every certificate check (nudge) and on its own daily timer. Never two at a time: a
 * nudge during a registration makes it look again when it ends. A failure is retried with the shared backoff
 * (1 minute doubling to 6 hours, or the database's longer Retry-After); meanwhile a check asks again only
 * if something changed. A refused pairing secret (`pairing_invalid`: unknown, used or expired) is never
 * sent again by this process: the error is shown until a connect brings another one.
 *
 * On success the secret leaves config.json, and the server's origin (the only origin whose pages may call
 * the box across origins: web/cors.ts) and the facts' fingerprint are saved. The log says what happened,
 * never the secret or the subscription code; the database UUID is masked.
 */
import { createHash } from "node:crypto";
import type { Logger } from "pino";
import { RENEWAL_BACKOFF, backoffDelay, parseRetryAfter } from "@boxcert/shared";
import type { BackoffSchedule } from "@boxcert/shared";
import { originOf, pairedOriginOf } from "../config.ts";
import type { BoxConfig, ConfigPatch } from "../config.ts";
import type { BoxIdentity } from "../certificate/identity.ts";
import type { Clock, Timers } from "../clock.ts";
import { maskedUuid } from "../secrets.ts";
import { createDatabaseClient } from "./client.ts";
import type { DatabaseClient, RegistrationAnswer, RegistrationBody } from "./client.ts";

/** The box registers at least this often: the database shows when it last saw each box. */
export const REGISTRATION_INTERVAL_MS = 24 * 3600_000;
/** The database's answer to a pairing secret it did not hand out, or that is used or expired. */
export const PAIRING_INVALID = "pairing_invalid";

/** What the database records of the box at each registration; a change is registered at once. */
export interface RegisteredFacts {
  name: string;
  ip: string;
  httpsUrl: string | null;
  certificateExpiry: string | null;
  version: string;
  /**
   * The port of the box's plain-HTTP listener: the POS page's module (@boxcert/web) asks the box at
   * http://<ip>:<httpPort>/ when its HTTPS name does not work (the degraded path).
   */
  httpPort: number;
}

/** Why the box is not registered, or why its last registration failed. */
export type RegistrationProblem =
  | { kind: "not-paired" }
  | { kind: "refused"; code: string; detail: string }
  | { kind: "failed"; detail: string };

/** What the status API and the homepage show of the registration. */
export interface RegistrationView {
  /** The box registered with the database of the server it is connected to. */
  registered: boolean;
  /** When it last did, ISO 8601. */
  registeredAt: string | null;
  /** A pairing secret waits to be sent (the first registration has not succeeded yet). */
  pairingHeld: boolean;
  problem: RegistrationProblem | null;
}

/** A fingerprint of the facts, in a fixed field order: saved in config.json, compared at each check. */
export function factsFingerprint(facts: RegisteredFacts): string {
  const ordered = [facts.name, facts.ip, facts.httpsUrl, facts.certificateExpiry, facts.version, facts.httpPort];
  return createHash("sha256").update(JSON.stringify(ordered)).digest("base64url");
}

export interface OwedInput {
  config: Pick<BoxConfig, "server" | "pairingSecret" | "pairedOrigin" | "registeredFingerprint" | "registeredAt">;
  fingerprint: string;
  now: number;
  /** A pairing secret the database refused (pairing_invalid): never sent again. */
  refusedSecret: string | null;
}

export interface Owed {
  /** The pairing secret to send, for a first registration; null for a later one. */
  pairing: string | null;
  why: "pairing" | "facts changed" | "daily";
}

/** Whether the box owes its database a registration now, and with which secret. Pure. */
export function registrationOwed({ config, fingerprint, now, refusedSecret }: OwedInput): Owed | null {
  if (config.server === null) return null;
  if (config.pairingSecret !== null && config.pairingSecret !== refusedSecret) return { pairing: config.pairingSecret, why: "pairing" };
  if (pairedOriginOf(config) === null) return null;
  if (config.registeredFingerprint !== fingerprint) return { pairing: null, why: "facts changed" };
  if (config.registeredAt === null || now - Date.parse(config.registeredAt) >= REGISTRATION_INTERVAL_MS) return { pairing: null, why: "daily" };
  return null;
}

/** When the next daily registration is due, in ms from now; null when the box is not registered. */
export function nextDailyDelay(config: Pick<BoxConfig, "server" | "pairedOrigin" | "registeredAt">, now: number): number | null {
  if (pairedOriginOf(config) === null || config.registeredAt === null) return null;
  return Math.min(REGISTRATION_INTERVAL_MS, Math.max(0, Date.parse(config.registeredAt) + REGISTRATION_INTERVAL_MS - now));
}

/**
 * What a success writes, given config.json as it is then: nothing when the box was connected to another
 * server meanwhile; the secret removed only when it is still the one sent (a newer connect keeps its own).
 */
export function registeredPatch(current: BoxConfig, done: { server: string; pairing: string | null; fingerprint: string; at: string }): ConfigPatch {
  if (current.server === null || originOf(current.server) !== originOf(done.server)) return {};
  return {
    pairedOrigin: originOf(done.server),
    registeredFingerprint: done.fingerprint,
    registeredAt: done.at,
    ...(done.pairing !== null && current.pairingSecret === done.pairing ? { pairingSecret: null } : {}),
  };
}

/** The problem's text for the status API (the homepage words it in the page's language). */
export function describeProblem(problem: RegistrationProblem): string {
  switch (problem.kind) {
    case "not-paired":
      return "not paired: the box was connected without a pairing secret; connect it with a connection token from the database's IoT page to register it";
    case "refused":
      return `the database refused the registration (${problem.code}): ${problem.detail}`;
    case "failed":
      return problem.detail;
  }
}

export interface RegistrationOptions {
  identity: BoxIdentity;
  clock: Clock;
  timers: Timers;
  logger: Logger;
  /** For the backoff's jitter. */
  random?: () => number;
  /** The retry schedule after a failure (RENEWAL_BACKOFF: 1 minute doubling to 6 hours). */
  backoff?: BackoffSchedule;
  /** Extra CA certificates (PEM) trusted for the database's TLS (`--database-ca`). */
  ca?: string;
  /** config.json as it is now (read again: `boxcert box connect` may have changed it). */
  config(): Promise<BoxConfig>;
  /** Writes a change that depends on config.json as it is then, and applies it. */
  changeConfig(update: (current: BoxConfig) => ConfigPatch): Promise<BoxConfig>;
  /** The facts the box would register now. */
  facts(): RegisteredFacts;
}

export class DatabaseRegistration {
  #o: RegistrationOptions;
  #running: Promise<void> | null = null;
  #again = false;
  #timer: unknown = null;
  #stopped = false;
  #failures = 0;
  /** The registration that failed last (its fingerprint and secret): a check does not repeat it before the backoff. */
  #failedAttempt: string | null = null;
  #refusedSecret: string | null = null;
  /** The last attempt's problem, for the server it was made to. */
  #problem: { server: string; problem: RegistrationProblem } | null = null;
  #client: { server: string; client: DatabaseClient } | null = null;

  constructor(options: RegistrationOptions) {
    this.#o = options;
  }

  /** A check ended (or the configuration changed): register if one is owed. Never waits for it. */
  nudge(): void {
    this.#start(false);
  }

  /** Resolves when no registration runs (stop(), and Box.checkNow() for the registration its check started). */
  async settled(): Promise<void> {
    while (this.#running) await this.#running;
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#clearTimer();
    await this.settled();
    this.#client?.client.close();
    this.#client = null;
  }

  view(config: BoxConfig): RegistrationView {
    const registered = pairedOriginOf(config) !== null;
    const notPaired = config.server !== null && !registered && config.pairingSecret === null;
    const own = this.#problem !== null && this.#problem.server === config.server ? this.#problem.problem : null;
    return {
      registered,
      registeredAt: registered ? config.registeredAt : null,
      pairingHeld: config.pairingSecret !== null,
      problem: own ?? (notPaired ? { kind: "not-paired" } : null),
    };
  }

  #start(fromTimer: boolean): void {
    if (this.#stopped) return;
    if (this.#running) {
      this.#again = true;
      return;
    }
    const run = this.#run(fromTimer)
      .catch((err: unknown) => this.#o.logger.error({ event: "database_registration_crashed", err }, "the registration with the database crashed"))
      .finally(() => {
        this.#running = null;
      });
    this.#running = run;
  }

  async #run(fromTimer: boolean): Promise<void> {
    let timed = fromTimer;
    do {
      this.#again = false;
      const config = await this.#o.config();
      const facts = this.#o.facts();
      const fingerprint = factsFingerprint(facts);
      const owed = registrationOwed({ config, fingerprint, now: this.#o.clock(), refusedSecret: this.#refusedSecret });
      if (owed === null) {
        this.#idle(config);
        continue;
      }
      const attempt = `${fingerprint} ${owed.pairing ?? ""}`;
      // During a backoff the timer owns the retry; a check retries at once only what changed.
      if (!timed && this.#failures > 0 && attempt === this.#failedAttempt) continue;
      timed = false;
      await this.#register(config, { facts, fingerprint }, owed, attempt);
    } while (this.#again && !this.#stopped);
  }

  async #register(config: BoxConfig, sent: { facts: RegisteredFacts; fingerprint: string }, owed: Owed, attempt: string): Promise<void> {
    const server = config.server as string;
    const body: RegistrationBody = {
      identifier: config.identifier,
      identityKey: this.#o.identity.publicKey,
      ...sent.facts,
      timestamp: new Date(this.#o.clock()).toISOString(),
      ...(owed.pairing !== null ? { pairing: owed.pairing } : {}),
    };
    const answer = await this.#clientFor(server).register(body);
    if (answer.kind === "registered") return this.#succeeded(config, body, sent.fingerprint, owed);
    // The database's words are logged and shown: never with the secret in them, should it echo it.
    const safe = (text: string): string => (owed.pairing === null ? text : text.replaceAll(owed.pairing, "[redacted]"));
    if (answer.kind === "refused" && answer.code === PAIRING_INVALID && owed.pairing !== null) {
      // Final: the database consumed, expired or never made this secret; retrying cannot change that.
      this.#refusedSecret = owed.pairing;
      this.#failures = 0;
      this.#failedAttempt = null;
      this.#problem = { server, problem: { kind: "refused", code: answer.code, detail: safe(answer.message) } };
      this.#logFailure(config, answer, safe, null);
      this.#planDaily(config);
      return;
    }
    this.#failed(config, answer, safe, attempt);
  }

  /** Saves what was registered: the fingerprint of the facts as sent, whatever changed since (a check looks again). */
  async #succeeded(config: BoxConfig, body: RegistrationBody, fingerprint: string, owed: Owed): Promise<void> {
    const server = config.server as string;
    const at = new Date(this.#o.clock()).toISOString();
    const { name, ip, httpsUrl, certificateExpiry, version, httpPort } = body;
    const saved = await this.#o.changeConfig((current) => registeredPatch(current, { server, pairing: owed.pairing, fingerprint, at }));
    this.#failures = 0;
    this.#failedAttempt = null;
    this.#problem = null;
    this.#o.logger.info(
      { event: "database_registered", server: originOf(server), dbUuid: maskedUuid(config.dbUuid), paired: owed.pairing !== null, why: owed.why, name, ip, httpsUrl, certificateExpiry, version, httpPort },
      owed.pairing !== null ? "paired and registered with the database" : "registered with the database",
    );
    this.#planDaily(saved);
  }

  #failed(config: BoxConfig, answer: Exclude<RegistrationAnswer, { kind: "registered" }>, safe: (text: string) => string, attempt: string): void {
    const server = config.server as string;
    const detail =
      answer.kind === "refused" ? safe(answer.message) : `registering with ${originOf(server)}: ${safe(answer.detail)}`;
    this.#problem = { server, problem: answer.kind === "refused" ? { kind: "refused", code: answer.code, detail } : { kind: "failed", detail } };
    this.#failures += 1;
    this.#failedAttempt = attempt;
    const backoff = backoffDelay(this.#o.backoff ?? RENEWAL_BACKOFF, this.#failures - 1, this.#o.random);
    const retryAfter = answer.kind === "failed" ? (parseRetryAfter(answer.retryAfter, this.#o.clock()) ?? 0) : 0;
    const delay = Math.min(REGISTRATION_INTERVAL_MS, Math.max(backoff, retryAfter));
    this.#logFailure(config, answer, safe, delay);
    this.#setTimer(delay);
  }

  #logFailure(config: BoxConfig, answer: Exclude<RegistrationAnswer, { kind: "registered" }>, safe: (text: string) => string, retryInMs: number | null): void {
    this.#o.logger.warn(
      {
        event: "database_registration_failed",
        server: originOf(config.server as string),
        dbUuid: maskedUuid(config.dbUuid),
        code: answer.kind === "refused" ? answer.code : null,
        detail: safe(answer.kind === "refused" ? answer.message : answer.detail),
        retryInMs,
      },
      retryInMs === null ? "the database refused the pairing secret; not retried" : "the registration with the database failed; retrying later",
    );
  }

  /** The client for this server URL: made when the box is connected to another server, warned about on http://. */
  #clientFor(server: string): DatabaseClient {
    if (this.#client?.server === server) return this.#client.client;
    this.#client?.client.close();
    const { ca, identity } = this.#o;
    const client = createDatabaseClient({ url: server, identity, ...(ca !== undefined ? { ca } : {}) });
    if (client.plaintext) {
      this.#o.logger.warn({ event: "database_plaintext", server: originOf(server) }, "the database's address is http://: the registration is not encrypted (tests and private networks only)");
    }
    this.#client = { server, client };
    return client;
  }

  /**
   * Nothing is owed: a failure streak is over (the facts the database lacked are back, or the box was
   * connected elsewhere), and a registered box has nothing to show but its last registration.
   */
  #idle(config: BoxConfig): void {
    this.#failures = 0;
    this.#failedAttempt = null;
    if (pairedOriginOf(config) !== null) this.#problem = null;
    this.#planDaily(config);
  }

  /** The next daily registration, or none for a box that is not registered. */
  #planDaily(config: BoxConfig): void {
    const delay = nextDailyDelay(config, this.#o.clock());
    if (delay === null) this.#clearTimer();
    else this.#setTimer(delay);
  }

  #setTimer(delay: number): void {
    this.#clearTimer();
    if (this.#stopped) return;
    this.#timer = this.#o.timers.setTimeout(() => {
      this.#timer = null;
      this.#start(true);
    }, delay);
  }

  #clearTimer(): void {
    if (this.#timer !== null) this.#o.timers.clearTimeout(this.#timer);
    this.#timer = null;
  }
}
