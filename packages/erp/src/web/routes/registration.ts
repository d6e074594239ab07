/**
 * POST /api/iot/boxes (docs/erp.md): JSON only, its exact bytes kept for the signature; answers
 * `200 {"registered": true}` or `{"error": {"code", "message"}}` with the code's status (wire.ts).
 */
import type { FastifyInstance, FastifyReply } from "fastify";
import { SIGNATURE_HEADER } from "@boxcert/shared";
import { BOX_REGISTRATION_PATH, REGISTRATION_ERRORS, type BoxRegistration, type RegistrationErrorCode } from "../../wire.ts";
import { register, registrationSchema } from "../../registration.ts";
import type { WebKit } from "../kit.ts";
import { clip } from "../refusal-log.ts";

export function sendError(reply: FastifyReply, code: RegistrationErrorCode, message: string): FastifyReply {
  return reply.code(REGISTRATION_ERRORS[code].status).send({ error: { code, message } });
}

export async function registrationPlugin(app: FastifyInstance, { kit }: { kit: WebKit }): Promise<void> {
  const { deps } = kit;
  app.post<{ Body: BoxRegistration }>(BOX_REGISTRATION_PATH, { schema: { body: registrationSchema } }, async (request, reply) => {
    const header = request.headers[SIGNATURE_HEADER];
    const outcome = await register(deps.store, { raw: request.rawBody!, signature: Array.isArray(header) ? header[0] : header, body: request.body }, deps.clock);
    if (outcome.kind === "refused") {
      kit.refusals.refused(outcome.code, { identifier: clip(request.body.identifier), address: request.ip }, `a box registration was refused: ${outcome.message}`);
      return sendError(reply, outcome.code, outcome.message);
    }
    const { box, first } = outcome;
    deps.logger.info({ event: "box_registered", identifier: box.identifier, name: box.name, ip: box.ip, httpsUrl: box.httpsUrl, first }, first ? "a box paired with this database" : "a box registered again");
    return reply.code(200).send({ registered: true });
  });
}
