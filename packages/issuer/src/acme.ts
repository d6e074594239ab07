/**
 * ACME (RFC 8555) as a CertificateSource: one order per box for its two names, validated by DNS-01 through
 * boxcert's own dns (the TXT values go into the store, which dns serves), finalized with the box's CSR, so
 * the box's private key never leaves the box. The protocol itself (JWS, nonces, polling) is acme-client's.
 */
import { X509Certificate, createHash, createPrivateKey } from "node:crypto";
import { mkdir, readFile } from "node:fs/promises";
import { Agent } from "node:https";
import { dirname, join } from "node:path";
import * as acme from "acme-client";
import axios, { type AxiosAdapter } from "axios";
import type { Logger } from "pino";
import { backoffDelay, formatHostPort, parseRetryAfter, writeFileAtomic, type BackoffSchedule } from "@boxcert/shared";
import {
  SourceRefusedError,
  SourceUnavailableError,
  boxLockName,
  type CertificateSource,
  type ExclusivePerBox,
  type IssueRequest,
  type IssuedCertificate,
  type RenewalInfoSource,
  type RenewalWindow,
  type ReplacesPrevious,
} from "./certificate-source.ts";
import type { ZoneRecords } from "@boxcert/store";
import { waitForTxtValues, type DnsServerAddress } from "./acme-dns-check.ts";
import type { IssuerMetricsRecorder } from "./metrics.ts";
import { certificateId, defaultAcmeWindow, leafOf, parseRenewalInfo, RENEWAL_INFO_RETRY_DEFAULT_MS, type RenewalInfo } from "./acme-renewal-info.ts";

export const ACME_FOLDER = "acme";
const PROBLEM = "urn:ietf:params:acme:error:";
/** Leftover challenge values older than this are from a crash (an order takes seconds). */
const STALE_CHALLENGE_MS = 10 * 60_000;
/** How long the authoritative servers get to serve the values (dns refreshes from the store within 250 ms). */
const DNS_PROPAGATION_TIMEOUT_MS = 10_000;
/** What the box is told to wait when the CA gave no Retry-After. */
const DEFAULT_RETRY_AFTER_SECONDS = 60;
/** Order polling (acme-client waits 5 s by default): 25 ms doubling to 1 s (two more requests an order than from 100 ms, for a CA that validates in tens of milliseconds); a longer Retry-After wins. */
export const ORDER_POLLING: BackoffSchedule = { initialMs: 25, maxMs: 1000, factor: 2, jitter: 0.1 };
/** An order not done by then is reported as the CA being slow (503), and the box comes back. */
const ORDER_DEADLINE_MS = 30_000;
const HTTP_TIMEOUT_MS = 10_000;
/** A renewal-information GET that failed is tried again at the box's next refresh after this long. */
const RENEWAL_INFO_ERROR_RETRY_MS = 60_000;

/** The CA's HTTPS did not answer at all (refused, reset, timed out, TLS failure). */
export class AcmeTransportError extends Error {
  override name = "AcmeTransportError";
  constructor(readonly url: string, readonly code: string | undefined, message: string) {
    super(`${url}: ${message}`);
  }
}

/** An RFC 8555 problem document answered by the CA, with what acme-client drops (type, Retry-After). */
export class AcmeProblemError extends Error {
  override name = "AcmeProblemError";
  constructor(readonly type: string, readonly detail: string, readonly status: number, readonly url: string, readonly retryAfterSeconds: number | undefined) {
    super(`${url} answered ${status} ${type}: ${detail}`);
  }
}

/** One ACME directory: its URL and, when the CA requires it, the external account binding it gave us. */
export interface AcmeDirectoryOptions {
  url: string;
  /** RFC 8555 §7.3.4: the key identifier and the HMAC key (base64url), from the CA's account page. */
  eab?: { kid: string; hmacKey: string };
}

export interface AcmeSourceOptions {
  /** Tried in order: when one is down or rate-limits, the next one is asked. */
  directories: AcmeDirectoryOptions[];
  keysDir: string;
  zoneRecords: ZoneRecords;
  /** The zone's authoritative servers, asked directly over TCP before the CA is told to validate. */
  dnsServers: DnsServerAddress[];
  /** Called after challenge values are committed or removed; returns at once (DNS NOTIFY, dns-notify.ts). */
  zoneChanged?: () => void;
  contact?: string;
  /** PEM CA bundle trusted for the directories' own HTTPS (a test CA such as Pebble); never disables checks. */
  caBundlePem?: string;
  logger: Logger;
  now?: () => Date;
  /** [0, 1): where in the renewal window renewAfter falls; injected for tests. */
  random?: () => number;
  /** Counts each order's end by CA (the directory URL's host) and outcome (metrics.ts). */
  metrics?: Pick<IssuerMetricsRecorder, "recordAcmeOrder">;
}

let problemInterceptorInstalled = false;
/** The last Retry-After each URL answered (acme-client keeps no headers); read once by the order polling. */
const retryAfterByUrl = new Map<string, string>();

function takeRetryAfterMs(url: string): number | null {
  const value = retryAfterByUrl.get(url);
  retryAfterByUrl.delete(url);
  return parseRetryAfter(value, Date.now());
}

/**
 * acme-client turns a CA's problem into a bare Error with the detail only; this keeps the type and the
 * Retry-After. badNonce is left to acme-client, which retries it itself. The axios instance is
 * acme-client's own, shared by every client in the process.
 */
function installProblemInterceptor(): void {
  if (problemInterceptorInstalled) return;
  problemInterceptorInstalled = true;
  const settings = (acme.axios.defaults as unknown as { acmeSettings: { retryMaxAttempts: number; retryDefaultDelay: number } }).acmeSettings;
  // acme-client would wait 5, 10, 15... seconds on network errors and 5xx: the box is told to come back instead.
  settings.retryMaxAttempts = 0;
  acme.axios.defaults.timeout = HTTP_TIMEOUT_MS;
  // With no retries left, acme-client's own interceptor fails on a request that got no response with a
  // TypeError that hides the cause; errors without a `config` pass it untouched.
  const http = axios.getAdapter("http") as AxiosAdapter;
  acme.axios.defaults.adapter = async (config) => {
    try {
      return await http(config);
    } catch (err) {
      const e = err as { response?: unknown; code?: string; message?: string };
      if (e.response) throw err;
      throw new AcmeTransportError(String(config.url), e.code, e.code ?? e.message ?? String(err));
    }
  };
  acme.axios.interceptors.response.use((response) => {
    const retryAfter = response.headers["retry-after"];
    if (typeof retryAfter === "string" && response.config.url) {
      if (retryAfterByUrl.size >= 1000) retryAfterByUrl.clear(); // headers on URLs nobody polls again
      retryAfterByUrl.set(response.config.url, retryAfter);
    }
    const data = response.data as { type?: unknown; detail?: unknown } | undefined;
    if (response.status >= 400 && data && typeof data.type === "string" && data.type !== `${PROBLEM}badNonce`) {
      const retryAfterMs = response.config.url ? takeRetryAfterMs(response.config.url) : null;
      throw new AcmeProblemError(data.type, String(data.detail ?? ""), response.status, String(response.config.url), retryAfterMs === null ? undefined : Math.max(1, Math.ceil(retryAfterMs / 1000)));
    }
    return response;
  });
}

export function accountKeyPath(keysDir: string, directoryUrl: string): string {
  const hash = createHash("sha256").update(directoryUrl).digest("hex").slice(0, 16);
  return join(keysDir, ACME_FOLDER, `account-${hash}.key`);
}

/** The account key for this directory: made once (ECDSA P-256), kept 0600, reused at every start. */
async function loadOrCreateAccountKey(path: string): Promise<string> {
  try {
    const pem = await readFile(path, "utf8");
    try {
      createPrivateKey(pem);
    } catch (err) {
      throw new Error(`${path} is not a readable PEM private key (the ACME account key): ${(err as Error).message}`, { cause: err });
    }
    return pem;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
  }
  const pem = (await acme.crypto.createPrivateEcdsaKey("P-256")).toString();
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  await writeFileAtomic(path, pem, 0o600);
  try {
    // Two instances starting at once: the rename that won is the key everybody uses.
    return await readFile(path, "utf8");
  } catch {
    return pem;
  }
}

/**
 * Polls the order on ORDER_POLLING until `done(status)`, waiting longer when the CA's Retry-After says so.
 * An invalid order is the CA's refusal, with the failed challenge's reason when there is one.
 */
async function pollOrder(client: acme.Client, order: acme.Order, done: (status: string) => boolean): Promise<acme.Order> {
  const deadline = Date.now() + ORDER_DEADLINE_MS;
  let current = order;
  for (let attempt = 0; ; attempt++) {
    if (current.status === "invalid") throw await refusal(client, current);
    if (done(current.status)) return current;
    const retryAfterMs = takeRetryAfterMs(current.url);
    const wait = Math.max(backoffDelay(ORDER_POLLING, attempt), retryAfterMs ?? 0);
    if (Date.now() + wait > deadline) {
      throw new SourceUnavailableError(`the order ${current.url} is still ${current.status} at the CA after ${ORDER_DEADLINE_MS / 1000} s`, Math.max(1, Math.ceil((retryAfterMs ?? DEFAULT_RETRY_AFTER_SECONDS * 1000) / 1000)));
    }
    await new Promise((resolve) => setTimeout(resolve, wait));
    current = await client.getOrder(current);
  }
}

async function refusal(client: acme.Client, order: acme.Order): Promise<SourceRefusedError> {
  const orderProblem = (order as acme.Order & { error?: { type?: string; detail?: string } }).error;
  for (const authz of await client.getAuthorizations(order)) {
    const failed = authz.challenges.find((c) => (c as { error?: unknown }).error) as { error?: { type?: string; detail?: string } } | undefined;
    if (failed?.error) {
      const type = String(failed.error.type ?? "").replace(PROBLEM, "");
      return new SourceRefusedError(`the CA could not validate ${authz.identifier.value} (${type}): ${failed.error.detail ?? ""}`, type);
    }
  }
  const type = String(orderProblem?.type ?? "invalid").replace(PROBLEM, "");
  return new SourceRefusedError(`the order ${order.url} became invalid (${type}): ${orderProblem?.detail ?? "no reason given"}`, type);
}

function derToPem(der: Buffer, type: string): string {
  const lines = der.toString("base64").match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${type}-----\n${lines.join("\n")}\n-----END ${type}-----\n`;
}

function pemCertificates(pem: string): string[] {
  return pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
}

/** A directory's state in this process: its client (once registered) and a rate limit's end. */
class AcmeDirectory {
  readonly name: string;
  /** The directory URL's host: the CA's label in metrics (bounded: directories come from flags). */
  readonly host: string;
  private client: acme.Client | undefined;
  /** Set from a rateLimited answer's Retry-After: the directory is not asked before then. */
  limitedUntil = 0;
  /** `meta` fields read once from the directory document. */
  private meta: { renewalInfo: string | null; caaIdentities: string[]; externalAccountRequired: boolean } | undefined;

  constructor(readonly options: AcmeDirectoryOptions, private readonly accountKey: string, private readonly source: AcmeSourceOptions) {
    this.host = new URL(options.url).host;
    this.name = `acme:${this.host}`;
  }

  /** The directory document (acme-client caches it); what RFC 8555 §7.1.1 and RFC 9773 add to it. */
  async directoryMeta(): Promise<{ renewalInfo: string | null; caaIdentities: string[]; externalAccountRequired: boolean }> {
    if (this.meta) return this.meta;
    const probe = this.client ?? new acme.Client({ directoryUrl: this.options.url, accountKey: this.accountKey });
    const dir = (await (probe as unknown as { http: { getDirectory(): Promise<Record<string, unknown>> } }).http.getDirectory()) ?? {};
    const meta = (dir["meta"] ?? {}) as { caaIdentities?: unknown; externalAccountRequired?: unknown };
    this.meta = {
      renewalInfo: typeof dir["renewalInfo"] === "string" ? dir["renewalInfo"] : null,
      caaIdentities: Array.isArray(meta.caaIdentities) ? meta.caaIdentities.filter((d): d is string => typeof d === "string") : [],
      externalAccountRequired: meta.externalAccountRequired === true,
    };
    return this.meta;
  }

  /** Registration is idempotent: the CA answers the existing account for a key it knows. */
  async account(): Promise<acme.Client> {
    if (this.client) return this.client;
    const { eab } = this.options;
    const client = new acme.Client({ directoryUrl: this.options.url, accountKey: this.accountKey, ...(eab ? { externalAccountBinding: eab } : {}) });
    const contact = this.source.contact ? { contact: [`mailto:${this.source.contact}`] } : {};
    // An account key the CA knows already (every start after the first) is looked up, never "updated" with
    // nothing new: acme-client follows an existing account's 200 with an update of the fields it was given,
    // and a CA may refuse an update that changes nothing (Pebble: malformed), so an issuer without
    // --acme-contact could not order again after a restart.
    try {
      await client.createAccount({ onlyReturnExisting: true });
      if (this.source.contact) await client.updateAccount(contact);
    } catch (err) {
      if (!(err instanceof AcmeProblemError && err.type === `${PROBLEM}accountDoesNotExist`)) throw err;
      await client.createAccount({ termsOfServiceAgreed: true, ...contact });
    }
    this.source.logger.info({ directory: this.options.url, account: client.getAccountUrl(), eab: eab ? eab.kid : undefined }, "ACME account ready");
    this.client = client;
    return client;
  }

  forgetAccount(): void {
    this.client = undefined;
  }

  /** The CA's renewal window for a certificate it issued, with when to ask again; null without renewalInfo. */
  async renewalInfo(chainPem: string): Promise<RenewalInfo | null> {
    const { renewalInfo } = await this.directoryMeta();
    if (!renewalInfo) return null;
    const id = certificateId(leafOf(chainPem));
    if (!id) return null;
    const url = `${renewalInfo.replace(/\/+$/, "")}/${id}`;
    const response = await acme.axios.get(url, { headers: { accept: "application/json" }, validateStatus: () => true });
    const retryAfterMs = takeRetryAfterMs(url);
    if (response.status !== 200) throw new Error(`${url} answered ${response.status}`);
    return parseRenewalInfo(response.data, retryAfterMs);
  }
}

export class AcmeSource implements CertificateSource, ExclusivePerBox, ReplacesPrevious, RenewalInfoSource {
  readonly name: string;
  readonly exclusivePerBox = true;
  readonly replacesPrevious = true;
  private readonly now: () => Date;
  private readonly random: () => number;
  /** Settles when every directory's CAA identities were published (or could not be read). */
  caaPublished: Promise<void> = Promise.resolve();
  /** When each certificate's renewal information may be asked again (its Retry-After), by certificate ID. */
  private readonly renewalInfoDue = new Map<string, number>();

  private constructor(private readonly options: AcmeSourceOptions, private readonly directories: AcmeDirectory[]) {
    this.name = directories[0]!.name;
    this.now = options.now ?? (() => new Date());
    this.random = options.random ?? Math.random;
  }

  /**
   * Loads (or makes) each directory's account key, removes challenge values a crash left, and publishes the
   * directories' CAA identities for the dns component. Registers at the first issue.
   */
  static async start(options: AcmeSourceOptions): Promise<AcmeSource> {
    if (options.directories.length === 0) throw new Error("--ca acme needs at least one --acme-directory URL");
    if (options.dnsServers.length === 0) throw new Error("--ca acme needs at least one --acme-dns-server HOST:PORT (the zone's authoritative dns)");
    installProblemInterceptor();
    // Process-wide: acme-client has one axios instance; an issuer process has one CA bundle.
    if (options.caBundlePem) acme.axios.defaults.httpsAgent = new Agent({ ca: options.caBundlePem, keepAlive: true });
    const directories: AcmeDirectory[] = [];
    for (const directory of options.directories) {
      directories.push(new AcmeDirectory(directory, await loadOrCreateAccountKey(accountKeyPath(options.keysDir, directory.url)), options));
    }
    const source = new AcmeSource(options, directories);
    const now = source.now();
    // Left by an order that was killed: its lock is free, expired or held by a process of this machine that
    // is gone; the age limit catches what another machine's dead issuer left before its lock expired.
    const orphans = await options.zoneRecords.removeOrphanChallenges(boxLockName, now);
    const stale = await options.zoneRecords.removeChallengesBefore(new Date(now.getTime() - STALE_CHALLENGE_MS));
    if (orphans + stale > 0) {
      options.logger.warn({ removed: orphans + stale }, "removed challenge values left by an earlier run");
      options.zoneChanged?.();
    }
    // In the background: a directory that does not answer must not hold the issuer's start for its timeout.
    source.caaPublished = Promise.all(directories.map((d) => source.publishCaa(d))).then(() => undefined);
    return source;
  }

  /** Puts the directory's `meta.caaIdentities` in the store (dns serves them as CAA); a CA that is down is not fatal. */
  private async publishCaa(directory: AcmeDirectory): Promise<void> {
    const { logger, zoneRecords } = this.options;
    try {
      const meta = await directory.directoryMeta();
      if (meta.externalAccountRequired && !directory.options.eab) {
        logger.error({ directory: directory.options.url }, "this CA requires external account binding: give --acme-eab-kid and --acme-eab-hmac after its --acme-directory");
      }
      if (meta.caaIdentities.length === 0) {
        logger.warn({ directory: directory.options.url }, "the directory names no CAA identity: give its CA domain to dns with --caa");
        return;
      }
      const published = await zoneRecords.publishCaaIdentities(directory.options.url, meta.caaIdentities, this.now());
      logger.info({ directory: directory.options.url, caa: published, renewalInfo: meta.renewalInfo !== null }, "CAA identities published for dns");
    } catch (err) {
      logger.warn({ directory: directory.options.url, err: (err as Error).message }, "cannot read the ACME directory now (its CAA identities are published at the next start)");
    }
  }

  /**
   * Asks each directory in order; one that is down or rate-limited (503 territory) or refuses makes the next
   * one asked. The box is told 503 when any of them may work later, else the refusals.
   */
  async issue(request: IssueRequest): Promise<IssuedCertificate> {
    const failures: Error[] = [];
    const nowMs = this.now().getTime();
    const usable = this.directories.filter((d) => d.limitedUntil <= nowMs);
    for (const directory of usable) {
      try {
        return await this.issueFrom(directory, request);
      } catch (err) {
        failures.push(err as Error);
        if (usable.length > 1) {
          this.options.logger.warn({ directory: directory.options.url, label: request.label, err: (err as Error).message }, "ACME directory failed: trying the next");
        }
      }
    }
    const limited = this.directories.filter((d) => d.limitedUntil > nowMs);
    const waits = [
      ...failures.filter((e): e is SourceUnavailableError => e instanceof SourceUnavailableError).map((e) => e.retryAfterSeconds),
      ...limited.map((d) => Math.max(1, Math.ceil((d.limitedUntil - nowMs) / 1000))),
    ];
    const reasons = [...failures.map((e) => e.message), ...limited.map((d) => `${d.options.url} is rate-limited until ${new Date(d.limitedUntil).toISOString()}`)];
    if (failures.length === 1 && limited.length === 0) throw failures[0]!;
    if (waits.length > 0) throw new SourceUnavailableError(reasons.join("; "), Math.min(...waits));
    const refused = failures.find((e): e is SourceRefusedError => e instanceof SourceRefusedError);
    throw new SourceRefusedError(reasons.join("; "), refused?.problemType ?? "refused");
  }

  /** RFC 9773 renewal information for a stored certificate, at most once per its Retry-After; null when not due. */
  async updatedRenewalWindow(certificate: { chainPem: string; source: string }): Promise<RenewalWindow | null> {
    const directory = this.directories.find((d) => d.name === certificate.source);
    if (!directory) return null;
    let id: string | null;
    try {
      id = certificateId(leafOf(certificate.chainPem));
    } catch {
      return null;
    }
    if (!id) return null;
    const nowMs = this.now().getTime();
    if ((this.renewalInfoDue.get(id) ?? 0) > nowMs) return null;
    try {
      const info = await directory.renewalInfo(certificate.chainPem);
      if (!info) {
        this.renewalInfoDue.set(id, nowMs + RENEWAL_INFO_RETRY_DEFAULT_MS);
        return null;
      }
      if (this.renewalInfoDue.size >= 100_000) this.renewalInfoDue.clear();
      this.renewalInfoDue.set(id, nowMs + info.retryAfterMs);
      return info.window;
    } catch (err) {
      this.renewalInfoDue.set(id, nowMs + RENEWAL_INFO_ERROR_RETRY_MS);
      this.options.logger.warn({ id, err: (err as Error).message }, "cannot read renewal information (the stored renewAfter stands)");
      return null;
    }
  }

  /** One order at one directory, from its account to the certificate: where an order ends, and is counted. */
  private async issueFrom(directory: AcmeDirectory, request: IssueRequest): Promise<IssuedCertificate> {
    const metrics = this.options.metrics;
    try {
      let issued: IssuedCertificate;
      try {
        issued = await this.order(directory, request, await directory.account());
      } catch (err) {
        if (!(err instanceof AcmeProblemError && err.type === `${PROBLEM}accountDoesNotExist`)) throw err;
        // A CA that forgot the account (a restarted Pebble): register again, once.
        this.options.logger.warn({ directory: directory.options.url }, "the CA no longer knows the ACME account: registering again");
        directory.forgetAccount();
        issued = await this.order(directory, request, await directory.account());
      }
      metrics?.recordAcmeOrder(directory.host, "valid");
      return issued;
    } catch (err) {
      const classified = this.classify(err, request, directory);
      const rateLimited = classified instanceof SourceUnavailableError && err instanceof AcmeProblemError && (err.type === `${PROBLEM}rateLimited` || err.status === 429);
      if (rateLimited) directory.limitedUntil = this.now().getTime() + classified.retryAfterSeconds * 1000;
      metrics?.recordAcmeOrder(directory.host, rateLimited ? "rate_limited" : classified instanceof SourceRefusedError ? "ca_refused" : "ca_unavailable");
      throw classified;
    }
  }

  /** The RFC 9773 `replaces` value: the box's previous certificate, when this directory issued it and offers ARI. */
  private async replaces(directory: AcmeDirectory, request: IssueRequest): Promise<string | null> {
    const previous = request.previous;
    if (!previous || previous.source !== directory.name) return null;
    if (!(await directory.directoryMeta()).renewalInfo) return null;
    try {
      return certificateId(leafOf(previous.chainPem));
    } catch {
      return null;
    }
  }

  private async createOrder(directory: AcmeDirectory, client: acme.Client, request: IssueRequest): Promise<acme.Order> {
    const identifiers = request.names.map((value) => ({ type: "dns", value }));
    const replaces = await this.replaces(directory, request);
    if (replaces) {
      try {
        const order = await client.createOrder({ identifiers, replaces } as Parameters<acme.Client["createOrder"]>[0]);
        this.options.logger.info({ label: request.label, order: order.url, replaces }, "ACME order created");
        return order;
      } catch (err) {
        // A CA that will not take this `replaces` (already replaced, unknown): an order without it is still right.
        if (!(err instanceof AcmeProblemError && [`${PROBLEM}malformed`, `${PROBLEM}conflict`, `${PROBLEM}alreadyReplaced`].includes(err.type))) throw err;
        this.options.logger.warn({ label: request.label, replaces, err: err.message }, "the CA refused `replaces`: ordering without it");
      }
    }
    const order = await client.createOrder({ identifiers });
    this.options.logger.info({ label: request.label, order: order.url }, "ACME order created");
    return order;
  }

  private async order(directory: AcmeDirectory, request: IssueRequest, client: acme.Client): Promise<IssuedCertificate> {
    const { label, zone } = request;
    const started = Date.now();
    const order = await this.createOrder(directory, client, request);
    const authorizations = await client.getAuthorizations(order);
    const pending: Array<{ challenge: acme.Authorization["challenges"][number]; value: string }> = [];
    for (const authz of authorizations) {
      if (authz.status === "valid") continue;
      const challenge = authz.challenges.find((c) => c.type === "dns-01");
      if (!challenge) throw new SourceRefusedError(`the CA offers no dns-01 challenge for ${authz.identifier.value}`, "noDns01");
      const keyAuthorization = await client.getChallengeKeyAuthorization(challenge);
      pending.push({ challenge, value: keyAuthorization });
    }
    const values = pending.map((p) => p.value);
    // This order holds the label's lock (ExclusivePerBox): any value already there was left by one killed.
    const leftBehind = await this.options.zoneRecords.removeChallengesOf(label);
    if (leftBehind > 0) this.options.logger.warn({ label, removed: leftBehind }, "removed challenge values an interrupted order left");
    try {
      for (const value of values) await this.options.zoneRecords.addChallenge(label, value);
      if (values.length > 0) {
        this.options.zoneChanged?.();
        const name = `_acme-challenge.${label}.${zone}`;
        await waitForTxtValues(this.options.dnsServers, name, values, DNS_PROPAGATION_TIMEOUT_MS).catch((err: Error) => {
          throw new SourceUnavailableError(`checking DNS propagation of ${name} (servers ${this.options.dnsServers.map(formatHostPort).join(", ")}): ${err.message}`, DEFAULT_RETRY_AFTER_SECONDS, { cause: err });
        });
      }
      for (const { challenge } of pending) await client.completeChallenge(challenge);
      const ready = await pollOrder(client, order, (status) => status !== "pending");
      const csrPem = derToPem(request.csr.der, "CERTIFICATE REQUEST");
      const finalized = ready.status === "valid" ? ready : await client.finalizeOrder(ready, csrPem);
      const valid = await pollOrder(client, finalized, (status) => status === "valid");
      const chainPem = await client.getCertificate(valid);
      const issued = await this.withRenewalWindow(directory, this.parseChain(chainPem, directory.name));
      this.options.logger.info({ label, serial: issued.serial, directory: directory.options.url, ms: Date.now() - started }, "ACME order completed");
      return issued;
    } finally {
      for (const value of values) {
        await this.options.zoneRecords.removeChallenge(label, value).catch((err: Error) => {
          this.options.logger.error({ label, err: err.message }, "cannot remove a challenge value (the next start removes it)");
        });
      }
      if (values.length > 0) this.options.zoneChanged?.();
    }
  }

  /** The CA's window (ARI) when it offers one and answers, else two-thirds of the lifetime. */
  private async withRenewalWindow(directory: AcmeDirectory, issued: IssuedCertificate): Promise<IssuedCertificate> {
    try {
      const info = await directory.renewalInfo(issued.chainPem);
      if (info) {
        const id = certificateId(leafOf(issued.chainPem));
        if (id) this.renewalInfoDue.set(id, this.now().getTime() + info.retryAfterMs);
        return { ...issued, renewalWindow: info.window };
      }
    } catch (err) {
      this.options.logger.warn({ serial: issued.serial, err: (err as Error).message }, "cannot read renewal information: renewing at two-thirds of the lifetime");
    }
    return { ...issued, renewalWindow: defaultAcmeWindow(issued.notBefore, issued.notAfter) };
  }

  /** Leaf first, intermediates after; a self-signed root, if the CA sent one, is dropped. */
  private parseChain(chainPem: string, source: string): IssuedCertificate {
    const blocks = pemCertificates(chainPem);
    if (blocks.length === 0) throw new Error("the CA's certificate download holds no certificate");
    const kept = blocks.filter((pem, i) => {
      if (i === 0) return true;
      const cert = new X509Certificate(pem);
      return !(cert.subject === cert.issuer && cert.checkIssued(cert));
    });
    const leaf = new X509Certificate(kept[0]!);
    return {
      chainPem: kept.map((pem) => `${pem}\n`).join(""),
      serial: leaf.serialNumber.toLowerCase().replace(/^(00)+(?=.)/, ""),
      notBefore: new Date(leaf.validFrom),
      notAfter: new Date(leaf.validTo),
      source,
    };
  }

  /** Maps what went wrong to what the box is told: come back later (503), or the CA's refusal. */
  private classify(err: unknown, request: IssueRequest, directory: AcmeDirectory): Error {
    if (err instanceof SourceUnavailableError || err instanceof SourceRefusedError) return err;
    const what = `ordering a certificate for ${request.names.join(", ")} from ${directory.options.url}`;
    if (err instanceof AcmeProblemError) {
      const type = err.type.startsWith(PROBLEM) ? err.type.slice(PROBLEM.length) : err.type;
      if (type === "rateLimited" || err.status === 429 || err.status >= 500) {
        return new SourceUnavailableError(`${what}: the CA answered ${type}: ${err.detail}`, err.retryAfterSeconds ?? DEFAULT_RETRY_AFTER_SECONDS, { cause: err });
      }
      return new SourceRefusedError(`${what}: the CA refused (${type}): ${err.detail}`, type, { cause: err });
    }
    if (err instanceof AcmeTransportError) {
      return new SourceUnavailableError(`${what}: the CA did not answer: ${err.message}`, DEFAULT_RETRY_AFTER_SECONDS, { cause: err });
    }
    // Anything else (a directory that answers garbage, an unexpected status) is not the box's doing either.
    const message = (err as Error | undefined)?.message ?? String(err);
    return new SourceUnavailableError(`${what}: ${message}`, DEFAULT_RETRY_AFTER_SECONDS, { cause: err });
  }
}
