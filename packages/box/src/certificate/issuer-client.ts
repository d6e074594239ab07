/**
 * The box's HTTP client for the issuer (wire.ts): signed JSON POSTs, one keep-alive agent with one secure
 * context built once (passing `ca` on every request builds a new TLS context per connection, about 40%
 * slower; docs/architecture.md), a hard timeout per request, and every failure classified into what the box shows:
 *
 *   network failure                -> exception (the detail says which: refused, not resolved, timeout, TLS...)
 *   403 {refusal:{reason,message}} -> refusal (a known reason only)
 *   any other non-2xx              -> status (with Retry-After)
 *   2xx with a JSON body           -> ok
 *
 * An https:// issuer is always verified, against the bundled roots plus the optional extra CA. Never disabled.
 * The same roots verify the chains the issuer hands out (chain-trust.ts): required for an https:// issuer
 * or when an extra CA is given; only an http:// issuer without one (the tests' plaintext mode, already a
 * warning) has no anchors to verify against, and box.ts logs that at start.
 */
import http from "node:http";
import https from "node:https";
import tls from "node:tls";
import { isRefusalReason, SIGNATURE_HEADER } from "@boxcert/shared";
import type { RefusalReason } from "@boxcert/shared";
import type { BoxIdentity } from "./identity.ts";
import { chainTrust } from "./chain-trust.ts";
import type { ChainTrust } from "./chain-trust.ts";

export const ISSUER_TIMEOUT_MS = 15_000;
const MAX_ANSWER_BYTES = 1024 * 1024;

export type IssuerAnswer =
  | { kind: "ok"; status: number; body: unknown }
  | { kind: "exception"; detail: string }
  | { kind: "refusal"; status: number; reason: RefusalReason; message: string }
  | { kind: "status"; status: number; detail: string; retryAfter: string | null };

export interface IssuerClient {
  /** The issuer's base URL. */
  readonly url: URL;
  /** True for an http:// issuer (accepted, with a warning in the log). */
  readonly plaintext: boolean;
  /** The roots a certificate chain from this issuer must lead to; null when none is verified (see above). */
  readonly chainTrust: ChainTrust | null;
  post(path: string, body: object): Promise<IssuerAnswer>;
  close(): void;
}

export interface IssuerClientOptions {
  url: string;
  /** Extra trusted CA certificates (PEM), added to the bundled roots. */
  ca?: string;
  identity: BoxIdentity;
  timeoutMs?: number;
}

const UNTRUSTED_CODES = new Set([
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "UNABLE_TO_GET_ISSUER_CERT",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "CERT_HAS_EXPIRED",
  "CERT_NOT_YET_VALID",
  "CERT_UNTRUSTED",
  "CERT_REJECTED",
  "CERT_REVOKED",
  "CERT_SIGNATURE_FAILURE",
  "INVALID_CA",
  "ERR_TLS_CERT_ALTNAME_INVALID",
]);

class RequestTimeout extends Error {}

/** What went wrong on the network, in words a support ticket can quote. */
export function describeNetworkError(err: unknown, target: URL, timeoutMs: number): string {
  const host = target.hostname;
  const port = target.port || (target.protocol === "https:" ? "443" : "80");
  const where = `${host}:${port}`;
  if (err instanceof RequestTimeout) return `timeout after ${Number((timeoutMs / 1000).toFixed(1))} s waiting for ${where}`;
  const e = err as NodeJS.ErrnoException & { reason?: string };
  const code = e.code ?? "";
  if (code === "ECONNREFUSED") return `connection refused by ${where}`;
  if (code === "ENOTFOUND") return `name not resolved: ${host}`;
  if (code === "EAI_AGAIN") return `name not resolved (temporary DNS failure): ${host}`;
  if (code === "ECONNRESET") return `connection reset by ${where}`;
  if (code === "ETIMEDOUT") return `connection to ${where} timed out`;
  if (code === "EHOSTUNREACH" || code === "ENETUNREACH") return `${where} is unreachable (${code})`;
  if (UNTRUSTED_CODES.has(code)) return `certificate not trusted: ${e.reason ?? e.message} (${code}) for ${where}`;
  if (code.startsWith("ERR_SSL_") || code === "EPROTO") return `TLS handshake with ${where} failed: ${e.message}`;
  return `request to ${where} failed: ${e.message}${code ? ` (${code})` : ""}`;
}

function joinPath(base: URL, path: string): URL {
  const url = new URL(base.toString());
  url.pathname = `${base.pathname.replace(/\/+$/, "")}${path}`;
  return url;
}

function classify(status: number, text: string, retryAfter: string | null): IssuerAnswer {
  let json: unknown;
  try {
    json = text === "" ? undefined : JSON.parse(text);
  } catch {
    json = undefined;
  }
  if (status >= 200 && status < 300) {
    if (json === undefined) return { kind: "status", status, detail: "the issuer's answer is not JSON", retryAfter };
    return { kind: "ok", status, body: json };
  }
  const record = (typeof json === "object" && json !== null ? json : {}) as Record<string, unknown>;
  const refusal = record.refusal as { reason?: unknown; message?: unknown } | undefined;
  if (status === 403 && refusal && isRefusalReason(refusal.reason)) {
    const message = typeof refusal.message === "string" ? refusal.message : refusal.reason;
    return { kind: "refusal", status, reason: refusal.reason, message };
  }
  const error = record.error as { code?: unknown; message?: unknown } | undefined;
  const said =
    error && typeof error.message === "string"
      ? `: ${error.message}${typeof error.code === "string" ? ` (${error.code})` : ""}`
      : "";
  return { kind: "status", status, detail: `the issuer answered HTTP ${status} ${http.STATUS_CODES[status] ?? ""}`.trimEnd() + said, retryAfter };
}

export function createIssuerClient(options: IssuerClientOptions): IssuerClient {
  const url = new URL(options.url);
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new Error(`issuer URL must start with https:// (or http:// for tests), not "${url.protocol}"`);
  }
  const timeoutMs = options.timeoutMs ?? ISSUER_TIMEOUT_MS;
  const plaintext = url.protocol === "http:";
  const agent = plaintext
    ? new http.Agent({ keepAlive: true, maxSockets: 4 })
    : new https.Agent({
        keepAlive: true,
        maxSockets: 4,
        // One context, built once; without an extra CA the default one (bundled roots) is used.
        ...(options.ca ? { secureContext: tls.createSecureContext({ ca: [...tls.rootCertificates, options.ca] }) } : {}),
      });

  function post(path: string, body: object): Promise<IssuerAnswer> {
    const target = joinPath(url, path);
    const bytes = Buffer.from(JSON.stringify(body));
    const request = plaintext ? http.request : https.request;
    return new Promise((resolve) => {
      let settled = false;
      const settle = (answer: IssuerAnswer): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve(answer);
      };
      const req = request(target, {
        method: "POST",
        agent,
        headers: {
          "content-type": "application/json",
          "content-length": String(bytes.length),
          accept: "application/json",
          [SIGNATURE_HEADER]: options.identity.sign(bytes),
        },
      });
      const timer = setTimeout(() => req.destroy(new RequestTimeout()), timeoutMs);
      req.on("error", (err) => settle({ kind: "exception", detail: describeNetworkError(err, target, timeoutMs) }));
      req.on("response", (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on("data", (chunk: Buffer) => {
          size += chunk.length;
          if (size > MAX_ANSWER_BYTES) {
            settle({ kind: "status", status: res.statusCode ?? 0, detail: "the issuer's answer is larger than 1 MiB", retryAfter: null });
            req.destroy();
            return;
          }
          chunks.push(chunk);
        });
        res.on("error", (err) => settle({ kind: "exception", detail: describeNetworkError(err, target, timeoutMs) }));
        res.on("aborted", () => settle({ kind: "exception", detail: `the connection to ${target.host} closed while reading the answer` }));
        res.on("end", () => {
          const retryAfter = res.headers["retry-after"];
          settle(classify(res.statusCode ?? 0, Buffer.concat(chunks).toString("utf8"), typeof retryAfter === "string" ? retryAfter : null));
        });
      });
      req.end(bytes);
    });
  }

  const trust = plaintext && options.ca === undefined ? null : chainTrust(options.ca);
  return { url, plaintext, chainTrust: trust, post, close: () => agent.destroy() };
}
