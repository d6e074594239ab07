/**
 * What protects the pages from other sites, applied to every route by one preHandler hook (app.ts):
 *
 *   Host    the name the request was sent to is the public URL's, localhost or an IP literal, so a
 *           DNS-rebinding page (evil.example made to resolve here) cannot pass for this origin
 *   Origin  a POST's Origin, when the browser sends one, is the public URL's origin or the listener's own
 *   CSRF    a POST carries HMAC(process secret, cookie) in a hidden field matching its random cookie
 *           (HttpOnly, SameSite=Strict), compared in constant time
 *
 * The boxes' registration (POST /api/iot/boxes) is exempt: boxes are not browsers, carry no cookie, and
 * each request is signed by the box's key, which is the whole of its authority.
 *
 * The cookie names carry `erp` because cookies are per host, not per port: a box and the database on one
 * machine (the demo, a test) must not overwrite each other's.
 */
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { isIP } from "node:net";
import { BOX_REGISTRATION_PATH } from "../wire.ts";

export const CSRF_COOKIE = "boxcert_erp_csrf";
export const SESSION_COOKIE = "boxcert_erp_session";
export const LANG_COOKIE = "boxcert_erp_lang";
export const CSRF_FIELD = "csrf";

export class CsrfTokens {
  #secret = randomBytes(32);

  newCookieValue(): string {
    return randomBytes(18).toString("base64url");
  }

  /** The hidden field's value for this cookie. */
  tokenFor(cookie: string): string {
    return createHmac("sha256", this.#secret).update(cookie).digest("base64url");
  }

  verify(cookie: string | undefined, token: string | undefined): boolean {
    if (!cookie || !token) return false;
    const expected = Buffer.from(this.tokenFor(cookie));
    const actual = Buffer.from(token);
    return expected.length === actual.length && timingSafeEqual(expected, actual);
  }
}

/** The cookies by name, in an object without a prototype (`__proto__` is just a name). */
export function parseCookies(header: string | undefined): Record<string, string> {
  const cookies = Object.create(null) as Record<string, string>;
  for (const part of (header ?? "").split(";")) {
    const eq = part.indexOf("=");
    if (eq <= 0) continue;
    const name = part.slice(0, eq).trim();
    if (Object.hasOwn(cookies, name)) continue;
    try {
      cookies[name] = decodeURIComponent(part.slice(eq + 1).trim());
    } catch {
      // Not ours, and not valid URI encoding: ignored.
    }
  }
  return cookies;
}

export interface CookieOptions {
  secure: boolean;
  httpOnly?: boolean;
  maxAgeS?: number;
  sameSite?: "Strict" | "Lax";
}

export function cookieHeader(name: string, value: string, options: CookieOptions): string {
  return [
    `${name}=${encodeURIComponent(value)}`,
    "Path=/",
    `SameSite=${options.sameSite ?? "Strict"}`,
    options.httpOnly === false ? null : "HttpOnly",
    options.secure ? "Secure" : null,
    options.maxAgeS !== undefined ? `Max-Age=${options.maxAgeS}` : null,
  ]
    .filter((part): part is string => part !== null)
    .join("; ");
}

/** The host name of a Host header (no port; IPv6 without brackets), lowercase; null when malformed. */
export function hostOf(hostHeader: string | undefined): string | null {
  if (!hostHeader) return null;
  const match = /^(\[[0-9a-fA-F:.]+\]|[^:]+)(?::\d{1,5})?$/.exec(hostHeader.trim());
  return match ? (match[1] as string).replace(/^\[|\]$/g, "").toLowerCase() : null;
}

/** A name an attacker cannot make resolve here: an IP literal, localhost, or the public URL's own name. */
export function isOwnHost(host: string | null, publicHost: string): boolean {
  if (host === null) return false;
  return isIP(host) !== 0 || host === "localhost" || host === publicHost;
}

export type GuardRefusal = "foreign-origin" | "foreign-host" | "csrf";

export interface GuardChecks {
  host: boolean;
  originAndToken: boolean;
}

export const GUARD_EXEMPT: readonly string[] = [BOX_REGISTRATION_PATH];

/** Every matched route gets the Host check, every POST the Origin and CSRF checks; a 404 nothing. */
export function guardChecks(method: string, route: string | undefined): GuardChecks {
  if (route === undefined || GUARD_EXEMPT.includes(route)) return { host: false, originAndToken: false };
  return { host: true, originAndToken: method === "POST" };
}

export interface GuardInput {
  hostHeader: string | undefined;
  origin: string | undefined;
  cookie: string | undefined;
  token: string | undefined;
  /** The listener's scheme: a browser on a plain-HTTP test listener sends http:// origins. */
  scheme: "http" | "https";
  publicUrl: URL;
  csrf: CsrfTokens;
}

/** Why the request is refused under these checks, or null. */
export function checkRequest(checks: GuardChecks, input: GuardInput): GuardRefusal | null {
  if (checks.host && !isOwnHost(hostOf(input.hostHeader), input.publicUrl.hostname.replace(/^\[|\]$/g, "").toLowerCase())) return "foreign-host";
  if (!checks.originAndToken) return null;
  const own = [input.publicUrl.origin, `${input.scheme}://${(input.hostHeader ?? "").toLowerCase()}`];
  if (input.origin !== undefined && !own.includes(input.origin)) return "foreign-origin";
  return input.csrf.verify(input.cookie, input.token) ? null : "csrf";
}
