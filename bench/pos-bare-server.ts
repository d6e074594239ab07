/**
 * The reference for `npm run bench -- pos`: a bare `node:https` server on the box's own certificate and key
 * and the same TLS policy (tlsServerOptions), answering GET /api/status with the bytes the box answered and
 * the headers a paired box sends (CORS for the database's origin, `Vary: Origin`, no caching), and GET
 * /api/ping as the box does (boxClient's reach() asks it first). No fastify,
 * no hooks, no status building: what is left is Node's own cost per HTTPS round trip.
 * Usage: node --import tsx bench/pos-bare-server.ts PORT KEY_FILE CHAIN_FILE BODY_FILE ORIGIN
 */
import { createServer } from "node:https";
import { readFileSync } from "node:fs";
import { tlsServerOptions } from "@boxcert/shared";

const [port, keyFile, chainFile, bodyFile, origin] = process.argv.slice(2);
if (!port || !keyFile || !chainFile || !bodyFile || !origin) {
  console.error("usage: pos-bare-server.ts PORT KEY_FILE CHAIN_FILE BODY_FILE ORIGIN");
  process.exit(2);
}
const body = readFileSync(bodyFile);

const server = createServer(tlsServerOptions(readFileSync(chainFile), readFileSync(keyFile)), (req, res) => {
  if (req.method === "GET" && req.url === "/api/ping") {
    return res.writeHead(200, { "content-type": "application/json; charset=utf-8", "access-control-allow-origin": "*", "cache-control": "no-store" }).end('{"ok":true}');
  }
  if (req.method !== "GET" || req.url !== "/api/status") return res.writeHead(404).end();
  const headers: Record<string, string | number> = {
    "content-type": "application/json; charset=utf-8",
    "content-length": body.length,
    "cache-control": "no-store",
    vary: "Origin",
  };
  if (req.headers.origin === origin) headers["access-control-allow-origin"] = origin;
  return res.writeHead(200, headers).end(body);
});
server.listen(Number(port), "127.0.0.1", () => console.log(`listening on 127.0.0.1:${port}`));
process.on("SIGTERM", () => server.close(() => process.exit(0)));
