/**
 * The issuer half of the box's diagnostics: can the box reach the issuer (any HTTP answer counts), how long
 * a fresh connection takes, and how far the box's clock is from the issuer's `Date` header. The issuer's TLS
 * certificate is always verified (bundled roots plus the configured extra CA), as for real requests.
 */
import http from "node:http";
import https from "node:https";
import tls from "node:tls";
import { REQUEST_MAX_SKEW_MS } from "@boxcert/shared";
import { describeNetworkError } from "../signed-client.ts";
import type { Clock } from "../clock.ts";
import type { Severity } from "./dns.ts";

/** The issuer's unauthenticated health route; any other answer (404 included) still proves it is reachable. */
export const ISSUER_PROBE_PATH = "/healthz";
/** Beyond this the homepage warns: certificates and signed requests depend on the time. */
export const CLOCK_WARN_MS = 60_000;
/** The `Date` header has whole seconds: an offset is known to about ±1 s. */
export const CLOCK_RESOLUTION_MS = 1000;

export type ClockVerdict = "ok" | "warn" | "error" | "unknown";

export interface IssuerProbe {
  /** The URL asked. */
  url: string;
  /** Any HTTP answer came back. */
  reachable: boolean;
  status: number | null;
  /** From sending the request on a new connection (DNS, TCP, TLS included) to the answer's headers, ms. */
  latencyMs: number | null;
  /** Why it was not reachable, in words a support ticket can quote. */
  error: string | null;
  /** The issuer's `Date` header, ISO 8601, or null. */
  serverDate: string | null;
  /** Issuer's clock minus the box's, ms (positive: the box is behind). Resolution ±1 s. */
  clockOffsetMs: number | null;
  clock: ClockVerdict;
}

/**
 * The box's clock against a `Date` header: the header says the second in which the server answered, so its
 * best estimate is the middle of that second; the box's is the middle of the request. Null without a date.
 */
export function clockOffset(sentAt: number, receivedAt: number, dateHeader: string | null | undefined): number | null {
  if (!dateHeader) return null;
  const serverSecond = Date.parse(dateHeader);
  if (Number.isNaN(serverSecond)) return null;
  return Math.round(serverSecond + CLOCK_RESOLUTION_MS / 2 - (sentAt + receivedAt) / 2);
}

export function clockVerdict(offsetMs: number | null): ClockVerdict {
  if (offsetMs === null) return "unknown";
  const off = Math.abs(offsetMs);
  if (off > REQUEST_MAX_SKEW_MS) return "error";
  if (off > CLOCK_WARN_MS) return "warn";
  return "ok";
}

export const CLOCK_SEVERITY: Record<ClockVerdict, Severity> = { ok: "ok", warn: "warn", error: "error", unknown: "warn" };

function probeUrl(issuerUrl: string): URL {
  const url = new URL(issuerUrl);
  if (url.protocol !== "http:" && url.protocol !== "https:") throw new Error(`the issuer URL must start with https:// (or http://), not "${url.protocol}"`);
  url.pathname = `${url.pathname.replace(/\/+$/, "")}${ISSUER_PROBE_PATH}`;
  url.search = "";
  url.hash = "";
  return url;
}

function trusted(issuerCa: string | Buffer[] | undefined): Array<string | Buffer> | undefined {
  if (issuerCa === undefined || issuerCa.length === 0) return undefined;
  return [...tls.rootCertificates, ...(typeof issuerCa === "string" ? [issuerCa] : issuerCa)];
}

export interface ProbeOptions {
  issuerUrl: string;
  issuerCa?: string | Buffer[] | undefined;
  timeoutMs: number;
  clock: Clock;
}

/** One GET on a new connection. Never throws. */
export function probeIssuer(options: ProbeOptions): Promise<IssuerProbe> {
  let target: URL;
  try {
    target = probeUrl(options.issuerUrl);
  } catch (err) {
    const message = err instanceof TypeError ? `"${options.issuerUrl}" is not a URL` : (err as Error).message;
    return Promise.resolve(unreachable(options.issuerUrl, message));
  }
  const url = target.toString();
  return new Promise((resolve) => {
    let settled = false;
    const started = performance.now();
    const sentAt = options.clock();
    const settle = (probe: IssuerProbe): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(probe);
    };
    const headers = { accept: "application/json", "user-agent": "boxcert-box diagnostics" };
    let req: http.ClientRequest;
    try {
      req =
        target.protocol === "https:"
          ? https.request(target, { method: "GET", agent: false, headers, ca: trusted(options.issuerCa) })
          : http.request(target, { method: "GET", agent: false, headers });
    } catch (err) {
      settle(unreachable(url, `request to ${target.host} failed: ${(err as Error).message}`));
      return;
    }
    const timer = setTimeout(() => {
      settle(unreachable(url, `timeout after ${Number((options.timeoutMs / 1000).toFixed(1))} s waiting for ${target.host}`));
      req.destroy();
    }, options.timeoutMs);
    req.on("error", (err) => settle(unreachable(url, describeNetworkError(err, target, options.timeoutMs))));
    req.on("response", (res) => {
      const receivedAt = options.clock();
      const latencyMs = Math.round(performance.now() - started);
      const date = res.headers.date ?? null;
      const offset = clockOffset(sentAt, receivedAt, date);
      settle({
        url,
        reachable: true,
        status: res.statusCode ?? null,
        latencyMs,
        error: null,
        serverDate: date && !Number.isNaN(Date.parse(date)) ? new Date(Date.parse(date)).toISOString() : null,
        clockOffsetMs: offset,
        clock: clockVerdict(offset),
      });
      // The body is not needed: drop it and the connection.
      res.resume();
      req.destroy();
    });
    req.end();
  });
}

function unreachable(url: string, error: string): IssuerProbe {
  return { url, reachable: false, status: null, latencyMs: null, error, serverDate: null, clockOffsetMs: null, clock: "unknown" };
}
