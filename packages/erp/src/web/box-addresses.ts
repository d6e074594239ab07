/**
 * Where the POS page's browser module (@boxcert/web) may call a registered box: its HTTPS origin, and
 * the plain-HTTP origins its diagnosis and degraded path use (docs/web.md "How reach() finds out"):
 * `http://<ip>:<httpPort>` (the box by its IP address) and `http://<name>:<httpPort>` (does the name
 * resolve to the box, with TLS being what fails?). The page's markup and its CSP take them from here, so
 * the two cannot disagree.
 */
import type { BoxRecord } from "../store.ts";

/**
 * `boxcert box`'s default --http-port: what the page assumes for a box registered before boxes sent
 * their port (docs/erp.md), as @boxcert/web does when it is given none.
 */
export const DEFAULT_BOX_HTTP_PORT = 8069;

export function boxHttpPort(box: Pick<BoxRecord, "httpPort">): number {
  return box.httpPort ?? DEFAULT_BOX_HTTP_PORT;
}

/** `http://<host>:<port>` as a browser sees the origin (port 80 dropped, IPv6 in brackets). */
function plainOrigin(host: string, port: number): string {
  return new URL(`http://${host.includes(":") ? `[${host}]` : host}:${port}/`).origin;
}

/** The plain-HTTP origins the module asks a box at: by its IP address, and by its HTTPS name. */
export function plainHttpOrigins(box: Pick<BoxRecord, "ip" | "httpsUrl" | "httpPort">): string[] {
  const port = boxHttpPort(box);
  const origins = [plainOrigin(box.ip, port)];
  if (box.httpsUrl) origins.push(plainOrigin(new URL(box.httpsUrl).hostname, port));
  return origins;
}
