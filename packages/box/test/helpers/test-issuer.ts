/**
 * A small issuer speaking wire.ts on a real loopback socket, for the box's own tests (the real issuer's
 * end-to-end tests live elsewhere). It verifies the box's signatures, enrolls, issues from a throwaway CA,
 * and answers a repeat request for the same key with the same certificate (until revoked), like the real one.
 */
import http from "node:http";
import https from "node:https";
import { createPublicKey, verify } from "node:crypto";
import type { AddressInfo } from "node:net";
import { CERTIFICATE_PATH, ENROLL_PATH, SIGNATURE_HEADER, certificateNames, newLabel } from "@boxcert/shared";
import type { CertificateRequest, CertificateResponse, EnrollRequest } from "@boxcert/shared";
import { issueLeaf, makeCa, readCsr } from "./pki.ts";
import type { TestCa } from "./pki.ts";

export interface Answer {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
  /** Destroy the socket instead of answering. */
  hangUp?: boolean;
  /** Wait this long before answering. */
  delayMs?: number;
}

export interface TestIssuer {
  url: string;
  ca: TestCa;
  intermediate: TestCa;
  /** The CA new certificates are issued by and whose certificate follows the leaf in the chain (`intermediate`). */
  signer: TestCa;
  zone: string;
  /** Every request: path and parsed body. */
  requests: { path: string; body: Record<string, unknown> }[];
  /** Answer instead of the normal behaviour when it returns an answer. */
  override: ((path: string, body: Record<string, unknown>) => Answer | null) | null;
  /** renewAfter for new certificates, as a fraction of the lifetime. */
  renewFraction: number;
  lifetimeMs: number;
  /** Forget every enrollment (as if an operator freed the seats). */
  forgetEnrollments(): void;
  /** Revoke every certificate issued so far: a repeat request for the same key gets a new one. */
  revokeAll(): void;
  /** Change the renewAfter the issuer answers for certificates already issued. */
  setRenewAfter(at: Date): void;
  close(): Promise<void>;
}

export async function startTestIssuer(options: { zone?: string; tls?: { key: string; cert: string } } = {}): Promise<TestIssuer> {
  const zone = options.zone ?? "boxcert.test";
  const ca = await makeCa("Test Root");
  const intermediate = await makeCa("Test Intermediate", ca);
  const enrolled = new Map<string, { identityKey: string; label: string }>();
  const issued = new Map<string, CertificateResponse>();

  const issuer: TestIssuer = {
    url: "",
    ca,
    intermediate,
    signer: intermediate,
    zone,
    requests: [],
    override: null,
    renewFraction: 2 / 3,
    lifetimeMs: 90 * 86400_000,
    forgetEnrollments: () => enrolled.clear(),
    revokeAll: () => issued.clear(),
    setRenewAfter: (at) => {
      for (const [key, response] of issued) issued.set(key, { ...response, renewAfter: at.toISOString() });
    },
    close: async () => undefined,
  };

  async function handle(path: string, raw: Buffer, signature: string | undefined): Promise<Answer> {
    const body = JSON.parse(raw.toString("utf8")) as Record<string, unknown>;
    issuer.requests.push({ path, body });
    const override = issuer.override?.(path, body);
    if (override) return override;
    const credentials = body as unknown as EnrollRequest;
    const key = createPublicKey({ key: Buffer.from(credentials.identityKey, "base64"), format: "der", type: "spki" });
    if (!signature || !verify("sha256", raw, key, Buffer.from(signature, "base64url"))) {
      return { status: 401, body: { error: { code: "bad_signature", message: "the signature does not verify" } } };
    }
    if (path === ENROLL_PATH) {
      const existing = enrolled.get(credentials.identifier);
      if (existing && existing.identityKey !== credentials.identityKey) {
        return { status: 403, body: { refusal: { reason: "identity_mismatch", message: "another key holds this identifier" } } };
      }
      const label = existing?.label ?? newLabel();
      enrolled.set(credentials.identifier, { identityKey: credentials.identityKey, label });
      return { status: 200, body: { label, zone, names: certificateNames(label, zone) } };
    }
    if (path === CERTIFICATE_PATH) {
      const request = body as unknown as CertificateRequest;
      const holder = enrolled.get(request.identifier);
      if (!holder || holder.label !== request.label) {
        return { status: 403, body: { refusal: { reason: "box_not_enrolled", message: "the box is not enrolled for this label" } } };
      }
      const csr = await readCsr(request.csr);
      const names = certificateNames(holder.label, zone);
      if ([...csr.names].sort().join() !== [...names].sort().join()) {
        return { status: 403, body: { refusal: { reason: "csr_names_mismatch", message: "wrong names" } } };
      }
      const keyId = csr.spki.toString("base64");
      const again = issued.get(keyId);
      if (again) return { status: 200, body: { ...again, reused: true } };
      const now = Date.now();
      const notBefore = new Date(now - 60_000);
      const notAfter = new Date(now + issuer.lifetimeMs);
      const leaf = await issueLeaf(issuer.signer, { publicKey: csr.spki, names, notBefore, notAfter });
      const response: CertificateResponse = {
        label: holder.label,
        zone,
        names,
        chain: leaf + issuer.signer.pem,
        serial: "1",
        notBefore: notBefore.toISOString(),
        notAfter: notAfter.toISOString(),
        renewAfter: new Date(notBefore.getTime() + (notAfter.getTime() - notBefore.getTime()) * issuer.renewFraction).toISOString(),
        reused: false,
      };
      issued.set(keyId, response);
      return { status: 200, body: response };
    }
    return { status: 404, body: { error: { code: "not_found", message: "no such path" } } };
  }

  const listener = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const signature = req.headers[SIGNATURE_HEADER];
      handle(req.url ?? "/", Buffer.concat(chunks), typeof signature === "string" ? signature : undefined).then(
        async (answer) => {
          if (answer.delayMs) await new Promise((r) => setTimeout(r, answer.delayMs));
          if (res.destroyed) return;
          if (answer.hangUp) {
            req.socket.destroy();
            return;
          }
          res.writeHead(answer.status, { "content-type": "application/json", ...answer.headers });
          res.end(answer.body === undefined ? "" : JSON.stringify(answer.body));
        },
        (err: Error) => {
          res.writeHead(500, { "content-type": "application/json" });
          res.end(JSON.stringify({ error: { code: "internal", message: err.message } }));
        },
      );
    });
  };
  const server = options.tls ? https.createServer(options.tls, listener) : http.createServer(listener);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  issuer.url = `${options.tls ? "https" : "http"}://127.0.0.1:${port}`;
  issuer.close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return issuer;
}
