/**
 * The agent: one certificate check with its I/O around the pure decision (check.ts), the state the
 * status API shows, and the hand-over of a new certificate to the HTTPS server (hot swap).
 *
 * The configuration and https.pem are read again at every check: `boxcert box connect` may have changed
 * the one while the agent runs, and the original reports an unreadable certificate file at each check.
 */
import { parseRetryAfter } from "@boxcert/shared";
import { ConfigError, readConfig } from "../config.ts";
import type { BoxConfig } from "../config.ts";
import { decideCheck, displayCode } from "./check.ts";
import type { BoxError, CheckTrigger } from "./check.ts";
import { readCertificateFile } from "./certificate-file.ts";
import type { StoredCertificate } from "./certificate-file.ts";
import { loadCertificate, type CertificateParts } from "./load.ts";
import type { CheckResult } from "./renewal.ts";

export interface AgentOptions extends CertificateParts {
  /** The certificate https.pem held at start, already being served. */
  served: StoredCertificate | null;
  /** Serve this certificate from now on (the HTTPS server's hot swap). */
  serve: (certificate: StoredCertificate) => void;
  /** The log level in the configuration changed. */
  onLogLevel?: (config: BoxConfig) => void;
}

function sameCertificate(a: StoredCertificate | null, b: StoredCertificate): boolean {
  return a !== null && a.chainPem === b.chainPem && a.key.spki.equals(b.key.spki);
}

/** When to check next for this certificate: its renewAfter, and never after it expires. */
function renewalPoint(certificate: StoredCertificate): number {
  return Math.min(certificate.info.renewAfter, certificate.info.notAfter);
}

export class BoxAgent {
  #o: AgentOptions;
  config: BoxConfig;
  served: StoredCertificate | null;
  error: BoxError | null = null;
  /** A request to the issuer runs now. */
  loading = false;

  constructor(options: AgentOptions) {
    this.#o = options;
    this.config = options.config;
    this.served = options.served;
  }

  /** Reads config.json again; keeps the last good one (and logs why) when the file went bad. */
  async refreshConfig(): Promise<BoxConfig> {
    try {
      const config = await readConfig(this.#o.paths);
      if (config) {
        const levelChanged = config.logLevel !== this.config.logLevel;
        this.config = config;
        if (levelChanged) this.#o.onLogLevel?.(config);
      }
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      this.#o.logger.error({ event: "config_unreadable" }, `${err.message}; keeping the configuration read before`);
    }
    return this.config;
  }

  #serve(certificate: StoredCertificate): void {
    const same = sameCertificate(this.served, certificate);
    // The same certificate may come with another renewAfter (a refresh): shown, nothing to swap.
    this.served = certificate;
    if (same) return;
    this.#o.serve(certificate);
    this.#o.logger.info(
      { event: "certificate_served", serial: certificate.info.serial, names: certificate.info.names },
      "serving a new certificate",
    );
  }

  #failed(error: BoxError, retryAfter: string | null = null): CheckResult {
    this.error = error;
    this.#o.logger.warn({ event: "check_failed", code: displayCode(error), reason: error.reason, detail: error.detail }, displayCode(error));
    const retryAfterMs = parseRetryAfter(retryAfter, this.#o.clock());
    return { ok: false, renewAfter: null, retryAfterMs, contacted: false };
  }

  /**
   * One check: the decision, then the load or refresh when one is owed. Never throws for a failure it can
   * name. A failed refresh is shown like a failed renewal: the valid certificate stays served ("renewing"
   * with the error), a refusal included, since the certificate will not be renewed either.
   */
  async check(trigger: CheckTrigger = "demand"): Promise<CheckResult> {
    const { logger, clock, paths } = this.#o;
    const config = await this.refreshConfig();
    const file = await readCertificateFile(paths.https);
    if (file.kind === "present") this.#serve(file.certificate);
    const decision = decideCheck({ ...config, file, now: clock(), trigger, failing: this.error !== null });
    logger.debug(
      { event: "check", trigger, decision: decision.action, reason: decision.action === "load" ? decision.reason : undefined },
      "certificate check",
    );
    if (decision.action === "fail") return this.#failed(decision.error);
    if (decision.action === "keep") {
      this.error = null;
      return { ok: true, renewAfter: renewalPoint(decision.certificate), retryAfterMs: null, contacted: false };
    }
    const refresh = decision.action === "refresh";
    // A refresh is not a renewal: the status stays "ok" while it asks (`checking` says a check runs).
    this.loading = !refresh;
    try {
      const outcome = await loadCertificate({
        paths,
        config,
        identity: this.#o.identity,
        client: this.#o.client,
        clock,
        logger,
        saved: file.kind === "present" ? file.certificate : null,
        refresh,
      });
      this.config = outcome.config;
      if (!outcome.ok) {
        const failed = this.#failed(outcome.error, outcome.retryAfter);
        return { ...failed, contacted: true };
      }
      this.#serve(outcome.certificate);
      this.error = null;
      return { ok: true, renewAfter: renewalPoint(outcome.certificate), retryAfterMs: null, contacted: true };
    } catch (err) {
      // Not the issuer's answer: a local failure while loading (disk full, permissions...).
      logger.error({ event: "load_crashed", err }, "loading the certificate failed");
      return this.#failed({
        code: "ERR_IOT_HTTPS_LOAD_REQUEST_EXCEPTION",
        detail: `loading the certificate failed on the box: ${(err as Error).message}`,
      });
    } finally {
      this.loading = false;
    }
  }
}
