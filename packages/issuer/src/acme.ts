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
import { backoffDelay, parseRetryAfter, writeFileAtomic, type BackoffSchedule } from "@boxcert/shared";
import type { CertificateSource, IssueRequest, IssuedCertificate } from "./certificate-source.ts";
import type { ZoneRecords } from "./zone-records.ts";
import { waitForTxtValues, type DnsServerAddress } from "./acme-dns-check.ts";

export const ACME_FOLDER = "acme";
const PROBLEM = "urn:ietf:params:acme:error:";
/** Leftover challenge values older than this are from a crash (an order takes seconds). */
const STALE_CHALLENGE_MS = 10 * 60_000;
/** How long the authoritative servers get to serve the values (dns refreshes from the store within 250 ms). */
const DNS_PROPAGATION_TIMEOUT_MS = 10_000;
/** What the box is told to wait when the CA gave no Retry-After. */
const DEFAULT_RETRY_AFTER_SECONDS = 60;
/** Order polling (acme-client waits 5 s by default): a fraction of a second, growing to 1 s; a longer Retry-After wins. */
export const ORDER_POLLING: BackoffSchedule = { initialMs: 100, maxMs: 1000, factor: 2, jitter: 0.1 };
/** An order not done by then is reported as the CA being slow (503), and the box comes back. */
const ORDER_DEADLINE_MS = 30_000;
const HTTP_TIMEOUT_MS = 10_000;

/** The CA's HTTPS did not answer at all (refused, reset, timed out, TLS failure). */
export class AcmeTransportError extends Error {
  override name = "AcmeTransportError";
  constructor(readonly url: string, readonly code: string | undefined, message: string) {
    super(`${url}: ${message}`);
  }
}

/** The certificate source cannot answer now (CA unreachable, slow, 5xx, rate limited): the box retries later. */
export class SourceUnavailableError extends Error {
  override name = "SourceUnavailableError";
  constructor(message: string, readonly retryAfterSeconds: number, options?: ErrorOptions) {
    super(message, options);
  }
}

/** The CA refused the order for a reason of its own (rejectedIdentifier, caa, unauthorized, ...). */
export class SourceRefusedError extends Error {
  override name = "SourceRefusedError";
  constructor(message: string, readonly problemType: string, options?: ErrorOptions) {
    super(message, options);
  }
}

/** An RFC 8555 problem document answered by the CA, with what acme-client drops (type, Retry-After). */
export class AcmeProblemError extends Error {
  override name = "AcmeProblemError";
  constructor(readonly type: string, readonly detail: string, readonly status: number, readonly url: string, readonly retryAfterSeconds: number | undefined) {
    super(`${url} answered ${status} ${type}: ${detail}`);
  }
}

export interface AcmeSourceOptions {
  directoryUrl: string;
  keysDir: string;
  zoneRecords: ZoneRecords;
  /** The zone's authoritative servers, asked directly over TCP before the CA is told to validate. */
  dnsServers: DnsServerAddress[];
  contact?: string;
  /** PEM CA bundle trusted for the directory's own HTTPS (a test CA such as Pebble); never disables checks. */
  caBundlePem?: string;
  logger: Logger;
  now?: () => Date;
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

export class AcmeSource implements CertificateSource {
  readonly name: string;
  readonly serializePerBox = true;
  private client: acme.Client | undefined;
  private readonly now: () => Date;

  private constructor(private readonly options: AcmeSourceOptions, private readonly accountKey: string) {
    this.name = `acme:${new URL(options.directoryUrl).host}`;
    this.now = options.now ?? (() => new Date());
  }

  /** Loads (or makes) the account key and removes challenge values a crash left; registers at first issue. */
  static async start(options: AcmeSourceOptions): Promise<AcmeSource> {
    if (options.dnsServers.length === 0) throw new Error("--ca acme needs at least one --acme-dns-server HOST:PORT (the zone's authoritative dns)");
    installProblemInterceptor();
    // Process-wide: acme-client has one axios instance; an issuer process has one directory.
    if (options.caBundlePem) acme.axios.defaults.httpsAgent = new Agent({ ca: options.caBundlePem, keepAlive: true });
    const source = new AcmeSource(options, await loadOrCreateAccountKey(accountKeyPath(options.keysDir, options.directoryUrl)));
    const now = source.now();
    const removed = await options.zoneRecords.removeChallengesBefore(new Date(now.getTime() - STALE_CHALLENGE_MS));
    if (removed > 0) options.logger.warn({ removed }, "removed challenge values left by an earlier run");
    return source;
  }

  async issue(request: IssueRequest): Promise<IssuedCertificate> {
    try {
      try {
        return await this.order(request, await this.account());
      } catch (err) {
        if (!(err instanceof AcmeProblemError && err.type === `${PROBLEM}accountDoesNotExist`)) throw err;
        // A CA that forgot the account (a restarted Pebble): register again, once.
        this.options.logger.warn({ directory: this.options.directoryUrl }, "the CA no longer knows the ACME account: registering again");
        this.client = undefined;
        return await this.order(request, await this.account());
      }
    } catch (err) {
      throw this.classify(err, request);
    }
  }

  /** Registration is idempotent: the CA answers the existing account for a key it knows. */
  private async account(): Promise<acme.Client> {
    if (this.client) return this.client;
    const client = new acme.Client({ directoryUrl: this.options.directoryUrl, accountKey: this.accountKey });
    await client.createAccount({ termsOfServiceAgreed: true, ...(this.options.contact ? { contact: [`mailto:${this.options.contact}`] } : {}) });
    this.options.logger.info({ directory: this.options.directoryUrl, account: client.getAccountUrl() }, "ACME account ready");
    this.client = client;
    return client;
  }

  private async order(request: IssueRequest, client: acme.Client): Promise<IssuedCertificate> {
    const { label, zone } = request;
    const started = Date.now();
    const order = await client.createOrder({ identifiers: request.names.map((value) => ({ type: "dns", value })) });
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
    try {
      for (const value of values) await this.options.zoneRecords.addChallenge(label, value);
      if (values.length > 0) {
        const name = `_acme-challenge.${label}.${zone}`;
        await waitForTxtValues(this.options.dnsServers, name, values, DNS_PROPAGATION_TIMEOUT_MS).catch((err: Error) => {
          throw new SourceUnavailableError(`checking DNS propagation of ${name} (servers ${this.options.dnsServers.map((s) => `${s.host}:${s.port}`).join(", ")}): ${err.message}`, DEFAULT_RETRY_AFTER_SECONDS, { cause: err });
        });
      }
      for (const { challenge } of pending) await client.completeChallenge(challenge);
      const ready = await pollOrder(client, order, (status) => status !== "pending");
      const csrPem = derToPem(request.csr.der, "CERTIFICATE REQUEST");
      const finalized = ready.status === "valid" ? ready : await client.finalizeOrder(ready, csrPem);
      const valid = await pollOrder(client, finalized, (status) => status === "valid");
      const chainPem = await client.getCertificate(valid);
      const issued = this.parseChain(chainPem);
      this.options.logger.info({ label, serial: issued.serial, ms: Date.now() - started }, "ACME order completed");
      return issued;
    } finally {
      for (const value of values) {
        await this.options.zoneRecords.removeChallenge(label, value).catch((err: Error) => {
          this.options.logger.error({ label, err: err.message }, "cannot remove a challenge value (the next start removes it)");
        });
      }
    }
  }

  /** Leaf first, intermediates after; a self-signed root, if the CA sent one, is dropped. */
  private parseChain(chainPem: string): IssuedCertificate {
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
    };
  }

  /** Maps what went wrong to what the box is told: come back later (503), or the CA's refusal. */
  private classify(err: unknown, request: IssueRequest): Error {
    if (err instanceof SourceUnavailableError || err instanceof SourceRefusedError) return err;
    const what = `ordering a certificate for ${request.names.join(", ")} from ${this.options.directoryUrl}`;
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
