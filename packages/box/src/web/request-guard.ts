/**
 * Cross-site protection of every change (POST): a CSRF token AND an Origin check. One preHandler hook applies
 * it (hooks.ts) by the policy below: guardChecks says which checks a request gets.
 *
 *   - CSRF: the page sets a random `boxcert_csrf` cookie (HttpOnly, SameSite=Strict) and puts
 *     HMAC(process secret, cookie) in a hidden field; a POST must carry both, compared with timingSafeEqual.
 *     The secret is made at each start, so a form from before a restart is refused ("reload the page").
 *   - Origin: when the browser sends one, it must be the box's own origin (scheme of the listener, the Host
 *     the request was sent to). A page on another site cannot post here even with a stolen token.
 *   - Host: the name the request was sent to must be one the box answers to, so a DNS-rebinding page
 *     (evil.example resolving to the box) can neither make itself "same origin" nor read the box's pages.
 *     Accepted: an IP address literal, localhost, the machine's name (and `.local`), and the box's own
 *     HTTPS names exactly: each of its addresses encoded under its label and zone (ownHostNames in
 *     status.ts), never "anything under *.<label>.<zone>". A rebinding attack needs a name the attacker
 *     controls; an IP literal or the machine's name is never one, so those need no list.
 *   - Paired origin: POST /api/pos/test is called by the POS page of the database the box is paired with,
 *     from that database's origin (web/cors.ts), which holds no CSRF token of the box. Its protection is
 *     the Origin instead: present, and exactly the paired database's origin. A browser sets Origin on every
 *     cross-origin POST and no page can forge it, so no other site can make a browser send it.
 */
import { isIP } from "node:net";
import { hostOf, type CsrfTokens } from "@boxcert/shared";

export { CsrfTokens, cookieHeader, hostOf, parseCookies } from "@boxcert/shared";

export const CSRF_COOKIE = "boxcert_csrf";
export const CSRF_FIELD = "csrf";

export interface HostPolicy {
  /** The machine's own name (os.hostname()), also accepted with `.local`. */
  machineName: string;
  /** Whether a name is one of the box's own HTTPS names (`192-168-1-42.<label>.<zone>` for one of its addresses). */
  isBoxName: (host: string) => boolean;
}

export function isOwnHost(host: string | null, policy: HostPolicy): boolean {
  if (host === null) return false;
  if (isIP(host) !== 0 || host === "localhost") return true;
  const machine = policy.machineName.toLowerCase();
  if (host === machine || host === `${machine}.local`) return true;
  return policy.isBoxName(host);
}

export type GuardRefusal = "foreign-origin" | "foreign-host" | "csrf" | "unpaired-origin";

/** What the guard checks on one request. */
export interface GuardChecks {
  /** The Host is a name the box answers to. */
  host: boolean;
  /** The Origin (when sent) is the box's own, and the CSRF token matches its cookie. */
  originAndToken: boolean;
  /** The Origin is sent and is the paired database's (the POS page's calls: no CSRF token). */
  pairedOrigin: boolean;
}

/**
 * Routes the guard never applies to, whatever the method: the device API any page may call (CORS), by any
 * name. Only /api/ping, by choice: it answers "a box is here" and nothing about it. The POS page calls the
 * box by its own HTTPS name, which the Host check accepts, so it needs no exemption.
 */
export const GUARD_EXEMPT: readonly string[] = ["/api/ping"];

/** POSTs the paired database's pages make (cors.ts): checked by their Origin, not by the homepage's token. */
export const PAIRED_POSTS: readonly string[] = ["/api/pos/test"];

/**
 * The policy: every POST gets every check, but the paired database's POSTs, which get the Host check and
 * the paired Origin; every other method the Host check (a page, the status API, the diagnostics, the log
 * download, the assets: none is readable through a rebinding name).
 * A request that matched no route (a 404) is not guarded: there is nothing to protect.
 */
export function guardChecks(method: string, route: string | undefined): GuardChecks {
  if (route === undefined || GUARD_EXEMPT.includes(route)) return { host: false, originAndToken: false, pairedOrigin: false };
  const post = method === "POST";
  const paired = post && PAIRED_POSTS.includes(route);
  return { host: true, originAndToken: post && !paired, pairedOrigin: paired };
}

export interface GuardInput {
  scheme: "http" | "https";
  hostHeader: string | undefined;
  origin: string | undefined;
  cookie: string | undefined;
  token: string | undefined;
  csrf: CsrfTokens;
  hosts: HostPolicy;
  /** The origin of the database the box is paired with, or null when it is paired with none. */
  pairedOrigin: string | null;
}

/** Why a request is refused under these checks, or null when it may go on. */
export function checkRequest(checks: GuardChecks, input: GuardInput): GuardRefusal | null {
  if (checks.host && !isOwnHost(hostOf(input.hostHeader), input.hosts)) return "foreign-host";
  if (checks.pairedOrigin && (input.pairedOrigin === null || input.origin !== input.pairedOrigin)) return "unpaired-origin";
  return checks.originAndToken ? checkOriginAndToken(input) : null;
}

/** Why a POST is refused, or null when it may go on. */
export function checkPost(input: GuardInput): GuardRefusal | null {
  return checkRequest({ host: true, originAndToken: true, pairedOrigin: false }, input);
}

function checkOriginAndToken(input: GuardInput): GuardRefusal | null {
  if (input.origin !== undefined && input.origin !== `${input.scheme}://${(input.hostHeader ?? "").toLowerCase()}`) {
    // Browsers omit the default port in Origin and Host alike, so the strings compare as they are.
    return "foreign-origin";
  }
  if (!input.csrf.verify(input.cookie, input.token)) return "csrf";
  return null;
}
