/**
 * The database's one outgoing request kind: a signed JSON POST to the issuer. node:https with one agent
 * whose secure context is built once: the bundled roots plus the optional --issuer-ca. Certificate
 * verification is never turned off; an http:// issuer (tests, private networks) is the caller's warning.
 */
import http from "node:http";
import https from "node:https";
import tls from "node:tls";

export const REQUEST_TIMEOUT_MS = 15_000;
const MAX_ANSWER_BYTES = 64 * 1024;

export interface HttpAnswer {
  status: number;
  text: string;
  retryAfter: string | null;
}

export interface JsonPoster {
  post(url: URL, body: Buffer, headers: Record<string, string>): Promise<HttpAnswer>;
  close(): void;
}

class RequestTimeout extends Error {}

/** What went wrong on the way, in words an operator can act on. */
export function describeNetworkError(err: unknown, target: URL): string {
  const where = target.host;
  if (err instanceof RequestTimeout) return `no answer from ${where} within ${REQUEST_TIMEOUT_MS / 1000} s`;
  const e = err as NodeJS.ErrnoException & { reason?: string };
  const code = e.code ?? "";
  if (code === "ECONNREFUSED") return `connection refused by ${where}`;
  if (code === "ENOTFOUND" || code === "EAI_AGAIN") return `name not resolved: ${target.hostname}`;
  if (code === "ECONNRESET") return `connection reset by ${where}`;
  if (/CERT|SELF_SIGNED|UNABLE_TO|ALTNAME/.test(code)) return `the certificate of ${where} is not trusted: ${e.reason ?? e.message} (${code}); give its CA with --issuer-ca`;
  return `request to ${where} failed: ${e.message}${code ? ` (${code})` : ""}`;
}

export function createJsonPoster(options: { ca?: string; timeoutMs?: number } = {}): JsonPoster {
  const timeoutMs = options.timeoutMs ?? REQUEST_TIMEOUT_MS;
  const httpsAgent = new https.Agent({
    keepAlive: false,
    ...(options.ca ? { secureContext: tls.createSecureContext({ ca: [...tls.rootCertificates, options.ca] }) } : {}),
  });
  const httpAgent = new http.Agent({ keepAlive: false });

  function post(url: URL, body: Buffer, headers: Record<string, string>): Promise<HttpAnswer> {
    const secure = url.protocol === "https:";
    const send = secure ? https.request : http.request;
    return new Promise((resolve, reject) => {
      const req = send(url, {
        method: "POST",
        agent: secure ? httpsAgent : httpAgent,
        headers: { "content-type": "application/json", "content-length": String(body.length), accept: "application/json", ...headers },
      });
      const timer = setTimeout(() => req.destroy(new RequestTimeout()), timeoutMs);
      const fail = (err: unknown): void => {
        clearTimeout(timer);
        reject(new Error(describeNetworkError(err, url)));
      };
      req.on("error", fail);
      req.on("response", (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on("data", (chunk: Buffer) => {
          size += chunk.length;
          if (size > MAX_ANSWER_BYTES) req.destroy(new Error(`the answer of ${url.host} is larger than ${MAX_ANSWER_BYTES / 1024} KiB`));
          else chunks.push(chunk);
        });
        res.on("error", fail);
        res.on("end", () => {
          clearTimeout(timer);
          const retryAfter = res.headers["retry-after"];
          resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString("utf8"), retryAfter: typeof retryAfter === "string" ? retryAfter : null });
        });
      });
      req.end(body);
    });
  }

  return {
    post,
    close: () => {
      httpsAgent.destroy();
      httpAgent.destroy();
    },
  };
}
