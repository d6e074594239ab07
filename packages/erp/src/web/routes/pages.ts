/** The IoT page (and its "Connect a box"), the POS test page; `/` goes to the IoT page. */
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { connectBox, type IssuedPairing } from "../../pairing.ts";
import type { BoxRecord } from "../../store.ts";
import type { WebKit } from "../kit.ts";
import { renderIotPage, renderPosPage } from "../render.ts";

/** Boxes by name, then identifier: the order the pages list them in. */
function listed(boxes: readonly BoxRecord[]): BoxRecord[] {
  return [...boxes].sort((a, b) => a.name.localeCompare(b.name) || a.identifier.localeCompare(b.identifier));
}

export async function pagesPlugin(app: FastifyInstance, { kit }: { kit: WebKit }): Promise<void> {
  const { deps } = kit;
  const guarded = { preHandler: kit.requireLogin };

  function iotPage(request: FastifyRequest, reply: FastifyReply, pairing: IssuedPairing | null): FastifyReply {
    const view = { database: deps.database.record, report: deps.report(), boxes: listed(deps.store.data.boxes), pairing };
    return kit.sendPage(reply, renderIotPage(kit.pageContext(request, reply), view));
  }

  app.get("/", async (_request, reply) => reply.redirect("/iot", 303));

  app.get("/iot", guarded, async (request, reply) => iotPage(request, reply, null));

  // A POST, not a link: it records a secret. The token is shown in this answer only (never in a URL).
  app.post("/iot/connect", guarded, async (request, reply) => {
    const pairing = await connectBox(deps);
    return iotPage(request, reply, pairing);
  });

  app.get("/pos", guarded, async (request, reply) => kit.sendPage(reply, renderPosPage(kit.pageContext(request, reply), listed(deps.store.data.boxes))));
}
