/** The stylesheet and the script: cached for a year under their versioned URL (`?v=<hash>`), 5 minutes otherwise. */
import type { HttpApp } from "../http-app.ts";
import { ASSETS } from "../page-kit.ts";

export async function assetsPlugin(app: HttpApp): Promise<void> {
  app.get("/static/:file", async (request, reply) => {
    const file = request.params.file ?? "";
    const found = Object.hasOwn(ASSETS, file) ? ASSETS[file] : undefined;
    if (!found) return reply.code(404).type("text/plain").send("not found");
    const etag = `"${found.version}"`;
    reply.header("etag", etag).header("x-content-type-options", "nosniff");
    reply.header("cache-control", request.query.v === found.version ? "public, max-age=31536000, immutable" : "public, max-age=300");
    if (request.headers["if-none-match"] === etag) return reply.code(304).send();
    return reply.type(found.type).send(found.body);
  });
}
