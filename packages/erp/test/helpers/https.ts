/** HTTPS requests from the tests, verified against the test CA (never with verification off). */
import https from "node:https";
import { checkServerIdentity } from "node:tls";
import type { IncomingHttpHeaders } from "node:http";

export interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
}

export interface RequestOptions {
  method?: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
}

export function httpsRequest(url: string, ca: string, options: RequestOptions = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const body = options.body === undefined ? undefined : Buffer.from(options.body);
    const req = https.request(url, {
      method: options.method ?? "GET",
      ca,
      agent: false,
      // The certificate is checked for the URL's host, whatever Host header a test sends.
      checkServerIdentity: (_host, cert) => checkServerIdentity(new URL(url).hostname, cert),
      headers: { ...(body ? { "content-length": String(body.length) } : {}), ...options.headers },
    });
    req.on("error", reject);
    req.on("response", (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (chunk: Buffer) => chunks.push(chunk));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(chunks).toString("utf8") }));
    });
    req.end(body);
  });
}

/** The cookies an answer sets, as `name=value` pairs ready for a Cookie header. */
export function setCookies(answer: Answer): Map<string, string> {
  const cookies = new Map<string, string>();
  for (const line of answer.headers["set-cookie"] ?? []) {
    const [pair] = line.split(";");
    const eq = (pair ?? "").indexOf("=");
    if (eq > 0) cookies.set(pair!.slice(0, eq), pair!.slice(eq + 1));
  }
  return cookies;
}
