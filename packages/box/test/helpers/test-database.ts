/**
 * A small database (docs/erp.md "The box registers with the database") on a real loopback socket (node's
 * http or https server, like helpers/test-issuer.ts), for the box's registration tests: it hands out pairing secrets, verifies every registration's signature with
 * node's crypto (against the body's key for a first registration, the recorded key after), checks the
 * timestamp, consumes a secret on use, and records every request. `boxcert erp` is the real one.
 */
import http from "node:http";
import https from "node:https";
import type { AddressInfo } from "node:net";
import { createPublicKey, generateKeyPairSync, randomBytes, verify } from "node:crypto";
import { REQUEST_MAX_SKEW_MS, SIGNATURE_HEADER } from "@boxcert/shared";
import { issueLeaf, makeCa } from "./pki.ts";
import type { TestCa } from "./pki.ts";

export const REGISTRATION_PATH = "/api/iot/boxes";
/** A pairing secret is valid this long after it was handed out (docs/erp.md). */
const PAIRING_LIFETIME_MS = 24 * 3600_000;

export interface DatabaseAnswer {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
}

export interface Registration {
  body: Record<string, unknown>;
  /** The status the database answered. */
  status: number;
}

export interface TestDatabase {
  /** The server URL a connection token names (`https://127.0.0.1:PORT/`). */
  url: string;
  origin: string;
  /** The CA of its TLS certificate (`--database-ca`), when started with TLS. */
  ca: TestCa | null;
  /** Every registration request, in order, with the answer's status. */
  registrations: Registration[];
  /** The most registrations in flight at once. */
  maxInFlight: number;
  /** Answer instead of the normal behaviour when it returns an answer (after the signature check). */
  override: ((body: Record<string, unknown>) => DatabaseAnswer | null) | null;
  /** Hold every answer this long (to see whether the box sends two at once). */
  delayMs: number;
  /** A new one-time pairing secret, as the IoT page puts in a connection token. */
  issuePairing(): string;
  /** The identity key recorded for a box identifier. */
  keyOf(identifier: string): string | undefined;
  close(): Promise<void>;
}

/** An answer of the database: a status, a JSON body and headers. */
function refuse(status: number, code: string, message: string): DatabaseAnswer {
  return { status, body: { error: { code, message } } };
}

/** A TLS key and certificate for 127.0.0.1 from a throwaway CA. */
async function tlsFor127(): Promise<{ ca: TestCa; key: string; cert: string }> {
  const ca = await makeCa("Test Database CA");
  const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const leaf = await issueLeaf(ca, { publicKey, names: ["localhost"], ips: ["127.0.0.1"] });
  return { ca, key: privateKey.export({ type: "pkcs8", format: "pem" }) as string, cert: leaf + ca.pem };
}

export async function startTestDatabase(options: { tls?: boolean; clock?: () => number } = {}): Promise<TestDatabase> {
  const clock = options.clock ?? Date.now;
  const tls = options.tls ? await tlsFor127() : null;
  const secrets = new Map<string, { issuedAt: number; used: boolean }>();
  const boxes = new Map<string, string>();
  let inFlight = 0;

  const database: TestDatabase = {
    url: "",
    origin: "",
    ca: tls?.ca ?? null,
    registrations: [],
    maxInFlight: 0,
    override: null,
    delayMs: 0,
    issuePairing: () => {
      const secret = randomBytes(32).toString("base64url");
      secrets.set(secret, { issuedAt: clock(), used: false });
      return secret;
    },
    keyOf: (identifier) => boxes.get(identifier),
    close: async () => undefined,
  };

  function signedBy(raw: Buffer, signature: unknown, spki: string): boolean {
    try {
      const key = createPublicKey({ key: Buffer.from(spki, "base64"), format: "der", type: "spki" });
      return typeof signature === "string" && verify("sha256", raw, { key, dsaEncoding: "der" }, Buffer.from(signature, "base64url"));
    } catch {
      return false;
    }
  }

  function answer(body: Record<string, unknown>, raw: Buffer, signature: unknown): DatabaseAnswer {
    const { identifier, identityKey, timestamp, pairing } = body;
    if (typeof identifier !== "string" || typeof identityKey !== "string" || typeof timestamp !== "string") {
      return refuse(400, "bad_request", "identifier, identityKey and timestamp are required");
    }
    if (!signedBy(raw, signature, identityKey)) return refuse(401, "bad_signature", "the signature does not verify");
    if (!(Math.abs(clock() - Date.parse(timestamp)) <= REQUEST_MAX_SKEW_MS)) return refuse(401, "stale_request", "the timestamp is off");
    const override = database.override?.(body);
    if (override) return override;
    if (pairing !== undefined) {
      const held = typeof pairing === "string" ? secrets.get(pairing) : undefined;
      if (!held || held.used || clock() - held.issuedAt > PAIRING_LIFETIME_MS) return refuse(403, "pairing_invalid", "unknown, used or expired pairing secret");
      held.used = true;
      boxes.set(identifier, identityKey);
      return { status: 200, body: { registered: true } };
    }
    const known = boxes.get(identifier);
    if (known === undefined) return refuse(403, "unknown_box", "no box with this identifier is paired");
    if (known !== identityKey) return refuse(403, "identity_mismatch", "another key is recorded for this box");
    return { status: 200, body: { registered: true } };
  }

  async function registration(raw: Buffer, signature: unknown): Promise<DatabaseAnswer> {
    inFlight += 1;
    database.maxInFlight = Math.max(database.maxInFlight, inFlight);
    try {
      if (database.delayMs > 0) await new Promise((resolve) => setTimeout(resolve, database.delayMs));
      let body: Record<string, unknown>;
      try {
        body = JSON.parse(raw.toString("utf8")) as Record<string, unknown>;
      } catch {
        return refuse(400, "bad_request", "not JSON");
      }
      const sent = answer(body, raw, signature);
      database.registrations.push({ body, status: sent.status });
      return sent;
    } finally {
      inFlight -= 1;
    }
  }

  const listener = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      const route = req.method === "POST" && new URL(req.url ?? "/", "http://x").pathname === REGISTRATION_PATH;
      const pending = route ? registration(Buffer.concat(chunks), req.headers[SIGNATURE_HEADER]) : Promise.resolve(refuse(404, "not_found", "no such path"));
      void pending.then((sent) => {
        res.writeHead(sent.status, { "content-type": "application/json", ...sent.headers });
        res.end(sent.body === undefined ? "" : JSON.stringify(sent.body));
      });
    });
  };
  const server = tls ? https.createServer({ key: tls.key, cert: tls.cert }, listener) : http.createServer(listener);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  database.url = `${tls ? "https" : "http"}://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  database.origin = new URL(database.url).origin;
  database.close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return database;
}
