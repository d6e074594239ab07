/** The stylesheet and scripts: a year under their versioned URL (`?v=<hash>`), 5 minutes otherwise. */
import type { FastifyInstance } from "fastify";
import { ASSETS } from "../kit.ts";

export async function assetsPlugin(app: FastifyInstance): Promise<void> {
  app.get<{ Params: { file: string }; Querystring: { v?: string } }>("/static/:file", async (request, reply) => {
    const found = Object.hasOwn(ASSETS, request.params.file) ? ASSETS[request.params.file] : undefined;
    if (!found) return reply.code(404).type("text/plain").send("not found");
    const etag = `"${found.version}"`;
    reply.header("etag", etag).header("cache-control", request.query.v === found.version ? "public, max-age=31536000, immutable" : "public, max-age=300");
    if (request.headers["if-none-match"] === etag) return reply.code(304).send();
    return reply.type(found.type).send(found.body);
  });
}
