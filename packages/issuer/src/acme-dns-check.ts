/**
 * Before the CA is told to validate, the zone's authoritative servers are asked directly, over TCP (as
 * Pebble and Let's Encrypt ask), until each answers every challenge value: telling the CA too early makes
 * the authorization invalid and costs a failed-validation rate limit.
 */
import { randomInt } from "node:crypto";
import { connect } from "node:net";
import * as dnsPacket from "dns-packet";
import { backoffDelay, formatHostPort, type BackoffSchedule, type HostPort } from "@boxcert/shared";

/** An authoritative server of the zone, as given to --acme-dns-server (options.ts parses it). */
export type DnsServerAddress = HostPort;

const QUERY_TIMEOUT_MS = 2_000;
/**
 * Between checks: 10 ms doubling to 100 ms. The dns servers are told of the new values by DNS NOTIFY
 * (dns-notify.ts) and answer them a few milliseconds after the commit, so the first checks are close together.
 */
const CHECK_BACKOFF: BackoffSchedule = { initialMs: 10, maxMs: 100, factor: 2, jitter: 0 };

/** The TXT strings one server answers for `name`, asked over TCP. */
export function queryTxtOverTcp(server: DnsServerAddress, name: string): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const id = randomInt(0, 65536);
    const query = dnsPacket.streamEncode({ type: "query", id, flags: 0, questions: [{ type: "TXT", name, class: "IN" }] });
    const socket = connect(server.port, server.host);
    let received = Buffer.alloc(0);
    const fail = (err: Error) => {
      socket.destroy();
      reject(err);
    };
    socket.setTimeout(QUERY_TIMEOUT_MS, () => fail(new Error(`no answer within ${QUERY_TIMEOUT_MS} ms`)));
    socket.once("error", fail);
    socket.once("connect", () => socket.write(query));
    socket.on("data", (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      if (received.length < 2 || received.length < 2 + received.readUInt16BE(0)) return;
      socket.destroy();
      try {
        const answer = dnsPacket.streamDecode(received);
        if (answer.id !== id) throw new Error(`answer id ${answer.id} does not match query id ${id}`);
        const values: string[] = [];
        for (const record of answer.answers ?? []) {
          if (record.type !== "TXT") continue;
          const data = record.data as Buffer | Buffer[] | string | string[];
          const parts = Array.isArray(data) ? data : [data];
          values.push(parts.map((p) => p.toString()).join(""));
        }
        resolve(values);
      } catch (err) {
        reject(err as Error);
      }
    });
  });
}

/** Polls every server until each answers all of `values` for `name`, or throws after `timeoutMs`. */
export async function waitForTxtValues(servers: DnsServerAddress[], name: string, values: string[], timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let waiting = [...servers];
  let last = "";
  let attempt = 0;
  for (;;) {
    const still: DnsServerAddress[] = [];
    for (const server of waiting) {
      try {
        const answered = new Set(await queryTxtOverTcp(server, name));
        const missing = values.filter((v) => !answered.has(v));
        if (missing.length > 0) {
          still.push(server);
          last = `${formatHostPort(server)} does not answer ${missing.length} of ${values.length} values yet`;
        }
      } catch (err) {
        still.push(server);
        last = `${formatHostPort(server)}: ${(err as Error).message}`;
      }
    }
    waiting = still;
    if (waiting.length === 0) return;
    if (Date.now() >= deadline) throw new Error(`not served after ${timeoutMs} ms (${last})`);
    await new Promise((r) => setTimeout(r, backoffDelay(CHECK_BACKOFF, attempt++)));
  }
}
