// The reference for `npm run bench -- box`: a bare `node:https` server, plain JavaScript run by node itself
// (no tsx, no library), on the box's own certificate and key and the box's TLS policy (passed as JSON by
// bench/box.ts, from tlsServerOptions). It answers every request with "ok".
// Usage: node bench/box-bare-server.mjs PORT KEY_FILE CHAIN_FILE POLICY_JSON
import { createServer } from "node:https";
import { readFileSync } from "node:fs";

const [port, keyFile, chainFile, policy] = process.argv.slice(2);
if (!port || !keyFile || !chainFile || !policy) {
  console.error("usage: box-bare-server.mjs PORT KEY_FILE CHAIN_FILE POLICY_JSON");
  process.exit(2);
}
const options = { ...JSON.parse(policy), key: readFileSync(keyFile), cert: readFileSync(chainFile) };
const server = createServer(options, (req, res) => res.end("ok"));
server.listen(Number(port), "127.0.0.1", () => console.log(`listening on 127.0.0.1:${port}`));
process.on("SIGTERM", () => server.close(() => process.exit(0)));
