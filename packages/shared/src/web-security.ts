/**
 * What every boxcert web page (the box's homepage, the database's pages) needs against other sites, in one
 * place: the CSRF token (a random cookie and its HMAC under a per-process secret, compared in constant
 * time), cookie parsing that gives inherited names no meaning, the Set-Cookie header, and the host name of
 * a Host header. Each page's guard (its policy: which routes, which origins) stays with the page.
 */
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";

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

/** The cookies by name; an object without a prototype, so `__proto__` or `constructor` is just a name. */
export function parseCookies(header: string | undefined): Record<string, string> {
  const cookies = Object.create(null) as Record<string, string>;
  for (const part of (header ?? "").split(";")) {
    const eq = part.indexOf("=");
    if (eq <= 0) continue;
    const name = part.slice(0, eq).trim();
    if (!Object.hasOwn(cookies, name)) {
      try {
        cookies[name] = decodeURIComponent(part.slice(eq + 1).trim());
      } catch {
        // A cookie that is not ours and not valid URI encoding: ignored.
      }
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

/** A Set-Cookie value: Path=/, SameSite=Strict and HttpOnly unless told otherwise, Secure on HTTPS. */
export function cookieHeader(name: string, value: string, options: CookieOptions): string {
  return [
    `${name}=${encodeURIComponent(value)}`,
    "Path=/",
    `SameSite=${options.sameSite ?? "Strict"}`,
    options.httpOnly === false ? null : "HttpOnly",
    options.secure ? "Secure" : null,
    options.maxAgeS !== undefined ? `Max-Age=${options.maxAgeS}` : null,
  ]
    .filter((p): p is string => p !== null)
    .join("; ");
}

/** The host name of a Host header (without the port; IPv6 without brackets), lowercase. */
export function hostOf(hostHeader: string | undefined): string | null {
  if (!hostHeader) return null;
  const match = /^(\[[0-9a-fA-F:.]+\]|[^:]+)(?::\d{1,5})?$/.exec(hostHeader.trim());
  if (!match) return null;
  return (match[1] as string).replace(/^\[|\]$/g, "").toLowerCase();
}
