/**
 * The box's signed JSON client, shared by the issuer client (certificate/issuer-client.ts) and the database
 * client (database/client.ts): both peers authenticate the box the same way (docs/protocol.md, docs/erp.md
 * "Signatures"), so signing, timeouts, TLS verification and the reading of answers live here once.
 *
 *   - every body is signed with the box identity key, in the `boxcert-signature` header;
 *   - one keep-alive agent with one secure context built once (passing `ca` on every request builds a new
 *     TLS context per connection, about 40% slower; docs/architecture.md);
 *   - a hard timeout per request;
 *   - https:// is always verified, against the bundled roots plus the optional extra CA; never disabled.
 *     http:// is accepted (tests, private networks): the caller logs the warning;
 *   - every outcome is classified: no answer (which: refused, not resolved, timeout, TLS...), or an HTTP
 *     answer with its status, its JSON body when it has one, the error the body names, and Retry-After.
 */
import http from "node:http";
import https from "node:https";
import tls from "node:tls";
import { SIGNATURE_HEADER } from "@boxcert/shared";
import type { BoxIdentity } from "./certificate/identity.ts";

export const SIGNED_REQUEST_TIMEOUT_MS = 15_000;
/** An answer the box reads is a few kilobytes; more is not one of its peers speaking the protocol. */
const MAX_ANSWER_BYTES = 1024 * 1024;

/** The outcome of one signed request, before a peer's client gives it its meaning. */
export type SignedAnswer =
  | { kind: "exception"; detail: string }
  | {
      kind: "http";
      status: number;
      /** The parsed JSON body; undefined when the body is empty or not JSON. */
      json: unknown;
      /** The `{"error": {"code", "message"}}` the body carries, when it does. */
      error: { code: string | null; message: string } | null;
      retryAfter: string | null;
      /** The body was larger than the box reads: json and error are not read. */
      tooLarge: boolean;
    };

export interface SignedClient {
  /** The peer's base URL. */
  readonly url: URL;
  /** True for an http:// peer (accepted, with a warning the caller logs). */
  readonly plaintext: boolean;
  post(path: string, body: object): Promise<SignedAnswer>;
  close(): void;
}

export interface SignedClientOptions {
  url: string;
  /** Extra trusted CA certificates (PEM), added to the bundled roots. */
  ca?: string;
  identity: BoxIdentity;
  timeoutMs?: number;
  /** What the peer is called in error messages ("issuer URL", "database URL"). */
  urlName: string;
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

/** The base URL's path with `path` appended: `https://erp.example/odoo/` + `/api/iot/boxes`. */
export function joinPath(base: URL, path: string): URL {
  const url = new URL(base.toString());
  url.pathname = `${base.pathname.replace(/\/+$/, "")}${path}`;
  return url;
}

function parseJson(text: string): unknown {
  try {
    return text === "" ? undefined : JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** The `{"error": {"code", "message"}}` both peers answer failures with, when the body is one. */
function errorOf(json: unknown): { code: string | null; message: string } | null {
  const error = (typeof json === "object" && json !== null ? (json as Record<string, unknown>).error : undefined) as
    | { code?: unknown; message?: unknown }
    | undefined;
  if (!error || typeof error.message !== "string") return null;
  return { code: typeof error.code === "string" ? error.code : null, message: error.message };
}

/** "the issuer answered HTTP 404 Not Found: no such path (not_found)": a status in words, with what the body said. */
export function describeStatus(peer: string, answer: Extract<SignedAnswer, { kind: "http" }>): string {
  const said = answer.error ? `: ${answer.error.message}${answer.error.code ? ` (${answer.error.code})` : ""}` : "";
  return `${peer} answered HTTP ${answer.status} ${http.STATUS_CODES[answer.status] ?? ""}`.trimEnd() + said;
}

function httpAnswer(status: number, text: string, retryAfter: string | null): SignedAnswer {
  const json = parseJson(text);
  return { kind: "http", status, json, error: errorOf(json), retryAfter, tooLarge: false };
}

function agentFor(plaintext: boolean, ca: string | undefined): http.Agent {
  if (plaintext) return new http.Agent({ keepAlive: true, maxSockets: 4 });
  return new https.Agent({
    keepAlive: true,
    maxSockets: 4,
    // One context, built once; without an extra CA the default one (bundled roots) is used.
    ...(ca ? { secureContext: tls.createSecureContext({ ca: [...tls.rootCertificates, ca] }) } : {}),
  });
}

export function createSignedClient(options: SignedClientOptions): SignedClient {
  const url = new URL(options.url);
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new Error(`${options.urlName} must start with https:// (or http:// for tests), not "${url.protocol}"`);
  }
  const timeoutMs = options.timeoutMs ?? SIGNED_REQUEST_TIMEOUT_MS;
  const plaintext = url.protocol === "http:";
  const agent = agentFor(plaintext, options.ca);

  function post(path: string, body: object): Promise<SignedAnswer> {
    const target = joinPath(url, path);
    const bytes = Buffer.from(JSON.stringify(body));
    const request = plaintext ? http.request : https.request;
    return new Promise((resolve) => {
      let settled = false;
      const settle = (answer: SignedAnswer): void => {
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
            settle({ kind: "http", status: res.statusCode ?? 0, json: undefined, error: null, retryAfter: null, tooLarge: true });
            req.destroy();
            return;
          }
          chunks.push(chunk);
        });
        res.on("error", (err) => settle({ kind: "exception", detail: describeNetworkError(err, target, timeoutMs) }));
        res.on("aborted", () => settle({ kind: "exception", detail: `the connection to ${target.host} closed while reading the answer` }));
        res.on("end", () => {
          const retryAfter = res.headers["retry-after"];
          settle(httpAnswer(res.statusCode ?? 0, Buffer.concat(chunks).toString("utf8"), typeof retryAfter === "string" ? retryAfter : null));
        });
      });
      req.end(bytes);
    });
  }

  return { url, plaintext, post, close: () => agent.destroy() };
}
