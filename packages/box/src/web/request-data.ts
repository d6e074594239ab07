/** What the hooks and the route modules read off a request beyond its own fields (http-app.ts). */
import { randomBytes } from "node:crypto";
import type { HttpRequest } from "./http-app.ts";

export type Form = Record<string, string>;

/** The request's form fields. Only string fields count: a JSON body (parsed too) cannot smuggle objects in. */
export function formOf(request: HttpRequest): Form {
  const form: Form = Object.create(null) as Form;
  if (typeof request.body === "object" && request.body !== null) {
    for (const [key, value] of Object.entries(request.body)) if (typeof value === "string") form[key] = value;
  }
  return form;
}

const NONCES = new WeakMap<HttpRequest, string>();

/** The nonce of this response's script, made on first use; the page and its CSP header (hooks.ts) share it. */
export function cspNonce(request: HttpRequest): string {
  let nonce = NONCES.get(request);
  if (nonce === undefined) {
    nonce = randomBytes(16).toString("base64");
    NONCES.set(request, nonce);
  }
  return nonce;
}
