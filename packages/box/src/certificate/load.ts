/**
 * The load: get a certificate from the issuer (wire.ts) and save it with its key.
 *
 *   enroll when no label is held for the current database -> label, zone, names (saved in config.json)
 *   pending key (made once, reused until saved) -> CSR -> POST /v1/certificate
 *   check the answer (our key, our names, a chain in order that verifies) -> https.pem, atomically
 *   -> remove the pending key
 *
 * The expected zone (config.json's zonePin, the vendor's --zone, else the expectedZone a connection token
 * named) guards against an issuer that is not the vendor's (spoofed over http://, or hostile): an
 * enrollment into another zone is refused and nothing is saved, and a label held from an enrollment into
 * another zone is not used: the box enrolls again, since the pin may have come after that enrollment
 * (and the vendor's issuer answers an enrolled box with its label in the vendor's zone). The chain must
 * lead to a root the issuer client trusts (chain-trust.ts), unless the client has none (http:// without
 * --issuer-ca: a test mode, logged at start).
 *
 * A `box_not_enrolled` refusal (the issuer forgot the label, or an operator freed it) makes the box forget
 * its label and enroll again, once.
 *
 * A refresh (check.ts) asks with a CSR for the key of the certificate already saved instead of a pending
 * key: the issuer answers with that same certificate (then only a changed renewAfter is written), or with a
 * new one for the same key when an operator revoked it (then https.pem is replaced, key unchanged). Should
 * the names owed differ from the saved certificate's (the box enrolled again), it is a load as usual.
 */
import { CERTIFICATE_PATH, ENROLL_PATH, certificateNames, isLabel, isZone, sameNames } from "@boxcert/shared";
import type { BoxCredentials, CertificateRequest, CertificateResponse, EnrollRequest, EnrollResponse } from "@boxcert/shared";
import type { Logger } from "pino";
import type { BoxConfig } from "../config.ts";
import { updateConfig } from "../config.ts";
import type { DataPaths } from "../data-dir.ts";
import type { BoxIdentity } from "./identity.ts";
import type { IssuerAnswer, IssuerClient } from "./issuer-client.ts";
import type { BoxError } from "./check.ts";
import { pendingTlsKey, removePendingKey } from "./tls-key.ts";
import type { TlsKey } from "./tls-key.ts";
import { csrFor } from "./csr.ts";
import { defaultRenewAfter, dnsNames, leafMatchesKey, parseChain, writeCertificateFile } from "./certificate-file.ts";
import { verifyChain } from "./chain-trust.ts";
import type { ChainTrust } from "./chain-trust.ts";
import type { StoredCertificate } from "./certificate-file.ts";
import type { Clock } from "../clock.ts";

/** What the agent and a load both work with. */
export interface CertificateParts {
  paths: DataPaths;
  config: BoxConfig;
  identity: BoxIdentity;
  client: IssuerClient;
  clock: Clock;
  logger: Logger;
}

export interface LoadContext extends CertificateParts {
  /** The configuration as just read; dbUuid and enterpriseCode are set (check.ts made sure). */
  config: BoxConfig;
  /** The certificate in https.pem, if any: its key is never reused for a new request (except a refresh). */
  saved: StoredCertificate | null;
  /** Ask for the saved certificate's key again (a refresh) instead of a new, pending key. */
  refresh?: boolean;
}

/**
 * What a successful load did: "issued" a certificate saved into https.pem (a new one, or a reused one for
 * a pending key); for a refresh, "confirmed" the saved certificate unchanged (nothing written),
 * "renewAfter changed" (https.pem written with the issuer's new renewAfter) or "replaced" (the issuer sent
 * another certificate for the same key, e.g. after a revocation; saved).
 */
export type LoadResult = "issued" | "confirmed" | "renewAfter changed" | "replaced";

export type LoadOutcome =
  | { ok: true; certificate: StoredCertificate; config: BoxConfig; reused: boolean; result: LoadResult }
  | { ok: false; error: BoxError; config: BoxConfig; retryAfter: string | null };

/** An issuer answer that is not a success, as the box's error. */
export function answerError(answer: Exclude<IssuerAnswer, { kind: "ok" }>, doing: string): { error: BoxError; retryAfter: string | null } {
  switch (answer.kind) {
    case "exception":
      return { error: { code: "ERR_IOT_HTTPS_LOAD_REQUEST_EXCEPTION", detail: `${doing}: ${answer.detail}` }, retryAfter: null };
    case "refusal":
      return {
        error: { code: "ERR_IOT_HTTPS_LOAD_REQUEST_NO_RESULT", detail: `${answer.message} (${answer.reason})`, reason: answer.reason },
        retryAfter: null,
      };
    case "status":
      return {
        error: { code: "ERR_IOT_HTTPS_LOAD_REQUEST_STATUS", status: answer.status, detail: `${doing}: ${answer.detail}` },
        retryAfter: answer.retryAfter,
      };
  }
}

/** A 2xx answer the box cannot use: shown like an unexpected status, with the reason. */
function badAnswer(status: number, detail: string): BoxError {
  return { code: "ERR_IOT_HTTPS_LOAD_REQUEST_STATUS", status, detail };
}

function parseEnrollResponse(body: unknown): EnrollResponse | string {
  const r = body as Partial<EnrollResponse> | null;
  if (!r || typeof r.label !== "string" || !isLabel(r.label)) return "the enrollment answer has no valid label";
  if (typeof r.zone !== "string" || !isZone(r.zone)) return "the enrollment answer has no valid zone";
  if (!Array.isArray(r.names) || !sameNames(r.names as string[], certificateNames(r.label, r.zone))) {
    return `the enrollment answer's names are not those of label ${r.label} in ${r.zone}`;
  }
  return { label: r.label, zone: r.zone, names: r.names as string[] };
}

/** The zone an enrollment must be in, and who said so (for the error's detail); null when none is known. */
function expectedZone(config: BoxConfig): { zone: string; from: string } | null {
  if (config.zonePin !== null) return { zone: config.zonePin, from: "boxcert box --zone" };
  if (config.expectedZone !== null) return { zone: config.expectedZone, from: "the connection token" };
  return null;
}

/** Why the box must enroll before asking for a certificate, or null when the label it holds will do. */
function enrollmentOwed(config: BoxConfig, dbUuid: string): string | null {
  if (!config.label || !config.zone) return "no label";
  if (config.enrolledFor !== dbUuid) return "another database";
  const expected = expectedZone(config);
  if (expected && config.zone !== expected.zone) return `the label is in zone ${config.zone}, not the expected ${expected.zone}`;
  return null;
}

/** Why an enrollment answer in this zone cannot be kept, or null. */
function zoneRefusal(config: BoxConfig, zone: string): string | null {
  const expected = expectedZone(config);
  if (!expected || zone === expected.zone) return null;
  return `the issuer enrolled the box in zone ${zone}, but the box expects zone ${expected.zone} (${expected.from}); enrollment not saved`;
}

type Chain = ReturnType<typeof parseChain>["certificates"];

/** Why the certificate does not belong to this request (its key, its names), or null. */
function leafProblem(chain: Chain, key: TlsKey, names: readonly string[]): string | null {
  const leaf = chain[0];
  if (!leaf) return "the certificate answer's chain is empty";
  if (!leafMatchesKey(leaf, key)) return "the issued certificate is not for this box's key";
  const leafNames = dnsNames(leaf);
  if (!sameNames(leafNames, names)) return `the issued certificate names ${leafNames.join(", ")}, not ${names.join(", ")}`;
  return null;
}

/** Why the chain is not leaf first, each certificate issued by the next, or null. */
function orderProblem(chain: Chain): string | null {
  for (let i = 0; i + 1 < chain.length; i++) {
    if (!(chain[i] as Chain[number]).checkIssued(chain[i + 1] as Chain[number])) {
      return `the chain is not in order: certificate ${i + 2} did not issue certificate ${i + 1}`;
    }
  }
  return null;
}

/**
 * Checks a certificate answer against what was asked and, with trust anchors, against them; returns the
 * chain and renewal point, or why not.
 */
function checkCertificateAnswer(
  body: unknown,
  expected: { key: TlsKey; names: readonly string[]; trust: ChainTrust | null; saved: string | null },
  now: number,
): { chainPem: string; renewAfter: number; reused: boolean } | string {
  const r = body as Partial<CertificateResponse> | null;
  if (!r || typeof r.chain !== "string") return "the certificate answer has no chain";
  let parsed: ReturnType<typeof parseChain>;
  try {
    parsed = parseChain(r.chain);
  } catch (err) {
    return `the certificate answer's chain cannot be parsed: ${(err as Error).message}`;
  }
  const { certificates } = parsed;
  const problem =
    leafProblem(certificates, expected.key, expected.names) ??
    orderProblem(certificates) ??
    // The chain the box already serves was verified when it was saved: a refresh confirming it (at every
    // start) does not parse the system's roots again.
    (expected.trust && parsed.pem !== expected.saved ? verifyChain(certificates, expected.trust, now) : null);
  if (problem) return problem;
  const leaf = certificates[0] as Chain[number];
  const notBefore = Date.parse(leaf.validFrom);
  const notAfter = Date.parse(leaf.validTo);
  if (!(now < notAfter)) return `the issued certificate expired on ${new Date(notAfter).toISOString()}`;
  const renewAfter = typeof r.renewAfter === "string" ? Date.parse(r.renewAfter) : Number.NaN;
  return {
    chainPem: parsed.pem,
    renewAfter: Number.isNaN(renewAfter) ? defaultRenewAfter(notBefore, notAfter) : renewAfter,
    reused: r.reused === true,
  };
}

export async function loadCertificate(ctx: LoadContext): Promise<LoadOutcome> {
  const { paths, identity, client, logger } = ctx;
  let config = ctx.config;
  const dbUuid = config.dbUuid as string;
  const credentials = (): BoxCredentials => ({
    dbUuid,
    enterpriseCode: config.enterpriseCode as string,
    identifier: config.identifier,
    identityKey: identity.publicKey,
    timestamp: new Date(ctx.clock()).toISOString(),
  });
  const fail = (error: BoxError, retryAfter: string | null = null): LoadOutcome => ({ ok: false, error, config, retryAfter });

  for (let enrollAgain = true; ; enrollAgain = false) {
    const owed = enrollmentOwed(config, dbUuid);
    if (owed) {
      logger.info({ event: "enroll", issuer: client.url.origin, identifier: config.identifier, why: owed }, "enrolling with the issuer");
      const request: EnrollRequest = credentials();
      const answer = await client.post(ENROLL_PATH, request);
      if (answer.kind !== "ok") {
        const { error, retryAfter } = answerError(answer, `enrolling with ${client.url.origin}`);
        return fail(error, retryAfter);
      }
      const enrolled = parseEnrollResponse(answer.body);
      if (typeof enrolled === "string") return fail(badAnswer(answer.status, enrolled));
      const refused = zoneRefusal(config, enrolled.zone);
      if (refused) return fail(badAnswer(answer.status, refused));
      config = await updateConfig(paths, { label: enrolled.label, zone: enrolled.zone, enrolledFor: dbUuid });
      logger.info({ event: "enrolled", label: enrolled.label, zone: enrolled.zone }, "enrolled");
    }
    const label = config.label as string;
    const names = certificateNames(label, config.zone as string);
    const saved = ctx.saved;
    const current = ctx.refresh && saved && sameNames(saved.info.names, names) ? saved : null;
    let key: TlsKey;
    if (current) {
      key = current.key;
      logger.info({ event: "certificate_refresh", label, serial: current.info.serial }, "asking the issuer whether the certificate still holds");
    } else {
      const pending = await pendingTlsKey(paths, saved?.key.spki ?? null);
      if (pending.discarded) logger.warn({ event: "pending_key_discarded", label }, `pending TLS key not reused: ${pending.discarded}`);
      key = pending.key;
      logger.info({ event: "certificate_request", label, reusedKey: pending.reused }, "asking the issuer for a certificate");
    }
    const request: CertificateRequest = { ...credentials(), label, csr: await csrFor(paths.csr, key, names) };
    const answer = await client.post(CERTIFICATE_PATH, request);
    if (answer.kind === "refusal" && answer.reason === "box_not_enrolled" && enrollAgain) {
      logger.warn({ event: "not_enrolled", label }, "the issuer no longer knows this box's label; enrolling again");
      config = await updateConfig(paths, { label: null, zone: null, enrolledFor: null });
      continue;
    }
    if (answer.kind !== "ok") {
      const { error, retryAfter } = answerError(answer, `asking ${client.url.origin} for a certificate`);
      return fail(error, retryAfter);
    }
    const checked = checkCertificateAnswer(answer.body, { key, names, trust: client.chainTrust, saved: current?.chainPem ?? null }, ctx.clock());
    if (typeof checked === "string") return fail(badAnswer(answer.status, checked));

    if (current && checked.chainPem === current.chainPem) {
      if (checked.renewAfter === current.info.renewAfter) {
        logger.info({ event: "certificate_confirmed", label, serial: current.info.serial }, "the issuer confirmed the certificate");
        return { ok: true, certificate: current, config, reused: checked.reused, result: "confirmed" };
      }
      const certificate = await writeCertificateFile(paths.https, key, checked.chainPem, checked.renewAfter);
      logger.info(
        {
          event: "renew_after_changed",
          label,
          serial: certificate.info.serial,
          from: new Date(current.info.renewAfter).toISOString(),
          renewAfter: new Date(certificate.info.renewAfter).toISOString(),
        },
        "the issuer changed the certificate's renewal point",
      );
      return { ok: true, certificate, config, reused: checked.reused, result: "renewAfter changed" };
    }

    const certificate = await writeCertificateFile(paths.https, key, checked.chainPem, checked.renewAfter);
    if (!current) await removePendingKey(paths);
    logger.info(
      {
        event: "certificate_saved",
        label,
        serial: certificate.info.serial,
        notAfter: new Date(certificate.info.notAfter).toISOString(),
        renewAfter: new Date(certificate.info.renewAfter).toISOString(),
        reused: checked.reused,
        ...(current ? { replaces: current.info.serial } : {}),
      },
      current ? "the issuer replaced the certificate (revoked?); new certificate saved" : "certificate saved",
    );
    return { ok: true, certificate, config, reused: checked.reused, result: current ? "replaced" : "issued" };
  }
}
