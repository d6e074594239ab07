/**
 * A stand-in for the issuer's POST /v1/database (docs/erp.md), over HTTPS with the test CA: it checks
 * each report's signature itself (node:crypto, not the erp's own code) and answers as the test says.
 */
import { createPublicKey, verify } from "node:crypto";
import Fastify from "fastify";
import type { ServerTls } from "./pki.ts";

export interface SeenReport {
  body: Record<string, unknown>;
  signatureValid: boolean;
}

export interface FakeIssuer {
  url: string;
  reports: SeenReport[];
  close(): Promise<void>;
}

export type IssuerAnswer = (report: SeenReport, index: number) => { status: number; body: unknown };

function signatureValid(raw: Buffer, signature: string | undefined, spkiBase64: unknown): boolean {
  if (typeof signature !== "string" || typeof spkiBase64 !== "string") return false;
  try {
    const key = createPublicKey({ key: Buffer.from(spkiBase64, "base64"), format: "der", type: "spki" });
    return verify("sha256", raw, { key, dsaEncoding: "der" }, Buffer.from(signature, "base64url"));
  } catch {
    return false;
  }
}

export async function startFakeIssuer(tls: ServerTls, answer: IssuerAnswer): Promise<FakeIssuer> {
  const app = Fastify({ https: { cert: tls.cert, key: tls.key } });
  const reports: SeenReport[] = [];
  app.removeAllContentTypeParsers();
  app.addContentTypeParser("application/json", { parseAs: "buffer" }, (_request, body, done) => done(null, body));
  app.post("/v1/database", async (request, reply) => {
    const raw = request.body as Buffer;
    const body = JSON.parse(raw.toString("utf8")) as Record<string, unknown>;
    const header = request.headers["boxcert-signature"];
    const report = { body, signatureValid: signatureValid(raw, Array.isArray(header) ? header[0] : header, body.databaseKey) };
    reports.push(report);
    const { status, body: answerBody } = answer(report, reports.length - 1);
    return reply.code(status).send(answerBody);
  });
  await app.listen({ host: "127.0.0.1", port: 0 });
  const { port } = app.server.address() as { port: number };
  return { url: `https://127.0.0.1:${port}/`, reports, close: () => app.close() };
}
