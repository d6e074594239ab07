/**
 * DNS NOTIFY (RFC 1996) from the issuer to the dns servers it knows (`--notify-dns`, and the
 * `--acme-dns-server`s): after a commit that changes what the zone answers (a challenge value set or
 * removed, a box enrolled with a new label), each server is told at once and reloads the zone rather than
 * waiting for its next poll.
 *
 * Fire and forget: nothing waits for an answer, and a server that does not answer costs nothing but its
 * retries (the poll is the safety net). Per server, one NOTIFY in flight and at most one more pending: a burst
 * of commits is two NOTIFYs, never a queue, and the pending one goes out after the first is answered (or given
 * up), so the commit it stands for is never lost. A NOTIFY not answered within RETRY_MS is sent again
 * (RFC 1996 3.6 retransmits; the same ID), up to SENDS times.
 *
 * Hand-written rather than a library: no maintained Node package sends NOTIFY; dns-packet writes the message.
 */
import { createSocket, type Socket } from "node:dgram";
import { isIP, isIPv6 } from "node:net";
import { lookup } from "node:dns/promises";
import { randomInt } from "node:crypto";
import * as dnsPacket from "dns-packet";
import type { Logger } from "pino";
import { formatHostPort, type HostPort } from "@boxcert/shared";

/** A NOTIFY not answered this long is sent again: a dns on the same LAN answers within a millisecond or two. */
export const RETRY_MS = 250;
/** Sends of one NOTIFY, the first included (RFC 1996 3.6 suggests retransmitting, BIND sends 5). */
export const SENDS = 3;

const OPCODE_NOTIFY = 4;

/** What the issuance and ACME code call after a commit that changed the zone; returns at once. */
export interface ZoneChangeNotifier {
  zoneChanged(): void;
  close(): Promise<void>;
}

/** The notifier when there is no server to tell. */
export const NO_NOTIFIER: ZoneChangeNotifier = { zoneChanged() {}, close: async () => {} };

/** The NOTIFY message for the zone's SOA: opcode 4, AA (RFC 1996 3.7), no answer section. */
export function notifyMessage(zone: string, id: number): Buffer {
  return dnsPacket.encode({ type: "query", id, flags: (OPCODE_NOTIFY << 11) | dnsPacket.AUTHORITATIVE_ANSWER, questions: [{ type: "SOA", name: zone, class: "IN" }] });
}

interface Target {
  /** Its address (a host name is resolved once, at start): answers are matched by address and port. */
  server: HostPort;
  /** As given, for logs. */
  label: string;
  /** The NOTIFY in flight: its ID, sends so far, the retry timer. */
  inFlight: { id: number; sends: number; timer: NodeJS.Timeout | null } | null;
  /** A change committed while one was in flight: one more goes out when it ends. */
  pending: boolean;
  /** Failures logged once until a NOTIFY is answered again. */
  failing: boolean;
}

export interface NotifierOptions {
  zone: string;
  servers: HostPort[];
  logger: Logger;
  retryMs?: number;
  sends?: number;
}

/** Counts for tests and logs: NOTIFYs sent (retries included), answered, and given up. */
export interface NotifierStats {
  sent: number;
  answered: number;
  givenUp: number;
}

export async function startNotifier(options: NotifierOptions): Promise<ZoneChangeNotifier & { stats(): NotifierStats }> {
  const retryMs = options.retryMs ?? RETRY_MS;
  const sends = options.sends ?? SENDS;
  const { zone, logger } = options;
  const stats: NotifierStats = { sent: 0, answered: 0, givenUp: 0 };
  // One socket per family, bound to an ephemeral port: answers come back to it.
  const sockets = new Map<"udp4" | "udp6", Socket>();
  const targets: Target[] = [];
  const byKey = new Map<string, Target>();
  for (const given of options.servers) {
    const label = formatHostPort(given);
    if (given.port < 1 || given.port > 65535) {
      logger.warn({ server: label }, "a dns server to notify has no port; it is left out (its poll brings changes)");
      continue;
    }
    let host = given.host;
    if (isIP(host) === 0) {
      try {
        host = (await lookup(host)).address;
      } catch (err) {
        logger.warn({ server: label, err: (err as Error).message }, "cannot resolve a dns server to notify; it is left out (its poll brings changes)");
        continue;
      }
    }
    const server = { host, port: given.port };
    const key = formatHostPort(server);
    if (byKey.has(key)) continue;
    const target: Target = { server, label, inFlight: null, pending: false, failing: false };
    targets.push(target);
    byKey.set(key, target);
  }
  let closed = false;

  const finish = (target: Target) => {
    if (target.inFlight?.timer) clearTimeout(target.inFlight.timer);
    target.inFlight = null;
    if (target.pending && !closed) {
      target.pending = false;
      start(target);
    }
  };

  const transmit = (target: Target) => {
    const flight = target.inFlight!;
    flight.sends++;
    stats.sent++;
    const family = isIPv6(target.server.host) ? "udp6" : "udp4";
    const socket = sockets.get(family);
    const failed = (err: Error | null) => {
      if (err && !target.failing) {
        target.failing = true;
        logger.warn({ server: target.label, err: err.message }, "sending DNS NOTIFY failed; the dns's poll brings the change");
      }
    };
    try {
      socket?.send(notifyMessage(zone, flight.id), target.server.port, target.server.host, failed);
    } catch (err) {
      // Never the caller's problem: a commit has happened, and its request must still be answered.
      failed(err as Error);
    }
    flight.timer = setTimeout(() => {
      if (closed || target.inFlight !== flight) return;
      if (flight.sends < sends) return transmit(target);
      stats.givenUp++;
      if (!target.failing) {
        target.failing = true;
        logger.warn({ server: target.label, sends }, "a dns server did not answer DNS NOTIFY; its poll brings the change");
      }
      finish(target);
    }, retryMs);
    flight.timer.unref();
  };

  const start = (target: Target) => {
    target.inFlight = { id: randomInt(0, 65536), sends: 0, timer: null };
    transmit(target);
  };

  const onMessage = (message: Buffer, remote: { address: string; port: number }) => {
    if (message.length < 12) return;
    const target = byKey.get(formatHostPort({ host: remote.address, port: remote.port }));
    const flight = target?.inFlight;
    // Only the answer to our NOTIFY: from the server, QR set, opcode NOTIFY, our ID.
    if (!target || !flight || message.readUInt16BE(0) !== flight.id) return;
    const flags = message.readUInt16BE(2);
    if ((flags & 0x8000) === 0 || ((flags >> 11) & 0xf) !== OPCODE_NOTIFY) return;
    stats.answered++;
    const rcode = flags & 0xf;
    if (rcode !== 0) {
      // REFUSED (not in its --allow-notify) or NOTAUTH (another --zone): a configuration to fix, said once.
      if (!target.failing) logger.warn({ server: target.label, rcode }, "a dns server turned DNS NOTIFY down: check its --allow-notify and --zone");
      target.failing = true;
    } else {
      if (target.failing) logger.info({ server: target.label }, "a dns server answers DNS NOTIFY again");
      target.failing = false;
    }
    finish(target);
  };

  for (const family of new Set(targets.map((t) => (isIPv6(t.server.host) ? "udp6" : "udp4") as "udp4" | "udp6"))) {
    const socket = createSocket(family);
    socket.on("message", onMessage);
    socket.on("error", (err) => logger.warn({ err: err.message }, "DNS NOTIFY socket error"));
    await new Promise<void>((resolve, reject) => {
      socket.once("error", reject);
      socket.bind(0, () => {
        socket.off("error", reject);
        resolve();
      });
    });
    socket.unref();
    sockets.set(family, socket);
  }

  return {
    zoneChanged() {
      if (closed) return;
      for (const target of targets) {
        if (target.inFlight) target.pending = true;
        else start(target);
      }
    },
    stats: () => ({ ...stats }),
    async close() {
      closed = true;
      for (const target of targets) if (target.inFlight?.timer) clearTimeout(target.inFlight.timer);
      await Promise.all([...sockets.values()].map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
    },
  };
}

/**
 * The issuer's notifier: every `--notify-dns` server, and with `--ca acme` every `--acme-dns-server` too
 * (they are the zone's authoritative servers, and the issuer waits for them to answer the challenge values,
 * so telling them at once is what makes the wait short). None: a notifier that does nothing.
 */
export async function startZoneNotifier(options: { zone: string; notifyDns?: HostPort[]; acmeDnsServers?: HostPort[]; logger: Logger }): Promise<ZoneChangeNotifier> {
  const servers = [...(options.notifyDns ?? []), ...(options.acmeDnsServers ?? [])];
  if (servers.length === 0) return NO_NOTIFIER;
  const notifier = await startNotifier({ zone: options.zone, servers, logger: options.logger });
  options.logger.info({ servers: [...new Set(servers.map(formatHostPort))] }, "DNS NOTIFY after zone changes");
  return notifier;
}
