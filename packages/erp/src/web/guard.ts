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
import { isIP } from "node:net";
import { hostOf, type CsrfTokens } from "@boxcert/shared";
import { BOX_REGISTRATION_PATH } from "../wire.ts";

export const CSRF_COOKIE = "boxcert_erp_csrf";
export const SESSION_COOKIE = "boxcert_erp_session";
export const LANG_COOKIE = "boxcert_erp_lang";
export const CSRF_FIELD = "csrf";

// The CSRF token, cookie parsing and the Host header's name are the box's too: one home in @boxcert/shared.
export { CsrfTokens, cookieHeader, hostOf, parseCookies } from "@boxcert/shared";
export type { CookieOptions } from "@boxcert/shared";

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
