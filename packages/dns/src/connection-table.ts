/**
 * Which DNS-over-TCP connection to close when a limit is reached, so that no one client can take the slots
 * every other client needs. Pure: no sockets and no clock (tcp.ts closes what this decides); the order in
 * which connections fell idle is a counter.
 *
 * The rules, applied to each new connection before it is served:
 * - a client already holding `maxPerClient` connections loses the one of its own that has been idle the
 *   longest; when all of its connections are in the middle of a query, the new one is refused;
 * - otherwise, at `maxConnections`, the client holding the most connections (among those with one idle)
 *   loses the one idle the longest; when no connection anywhere is idle, the new one is refused.
 * A connection in the middle of a query (a partial frame read, or an answer not yet handed to the kernel)
 * is never closed to make room: closing it would lose a query, closing an idle one loses nothing (RFC 7766
 * 6.2.4: a server may close idle connections, and clients retry what was left unanswered).
 *
 * Knot (`tcp-max-clients`) and NSD (`tcp-count`) have a global cap only: at it they stop accepting (the
 * newcomer waits in the kernel's queue; NSD's `tcp-reject-overflow` closes it instead). Unbound
 * (`tcp-connection-limit`) and dnsdist (`setMaxTCPConnectionsPerClient`) limit each client, and close the
 * newcomer of a client at its limit. Here an idle connection goes first in both cases: the newcomer carries
 * a query about to be asked, the idle one none. A hoarding client fares the same either way (it keeps its
 * share and no more), while a new user behind a NAT or a resolver farm at its limit is served, not refused.
 */
import { parseIPv4, parseIPv6 } from "./ranges.ts";

export interface ConnectionLimits {
  /** Open connections at most, all clients together. */
  maxConnections: number;
  /** Open connections at most from one client (clientOf: an IPv4 address, an IPv6 /64). */
  maxPerClient: number;
}

/** Which limit made room, or refused the new connection. */
export type LimitReached = "client_limit" | "global_cap";

/** What became of a new connection: served; served after closing `evicted` (already removed); or closed. */
export type Admission<C> =
  | { kind: "accepted" }
  | { kind: "made-room"; limit: LimitReached; evicted: C; evictedClient: string }
  | { kind: "refused"; limit: LimitReached };

/** One client's connections; `idle` in the order they fell idle, valued by that order (first: idle the longest). */
interface ClientConnections<C> {
  key: string;
  idle: Map<C, number>;
  busy: Set<C>;
}

/**
 * The client a connection counts against. IPv4: the address. IPv6: the /64, because one host commonly holds
 * a whole /64 (SLAAC privacy addresses, a VPS's allocation) and could otherwise open a fresh quota from each of
 * its 2^64 addresses; hosts sharing a /64 share a quota as hosts behind one IPv4 NAT do. An IPv4-mapped address
 * (`::ffff:a.b.c.d`, what a dual-stack `[::]` listener reports for IPv4 clients) is its IPv4 address.
 */
export function clientOf(address: string | undefined): string {
  // A socket reset before it was handed over has no address; those share one key and close at once anyway.
  if (address === undefined) return "";
  if (parseIPv4(address) !== null) return address;
  const words = parseIPv6(address);
  if (words === null) return address;
  const [w0, w1, w2, w3] = words;
  if (w0 === 0 && w1 === 0 && w2 === 0xffff) return [w3 >>> 24, (w3 >>> 16) & 255, (w3 >>> 8) & 255, w3 & 255].join(".");
  return `${[w0 >>> 16, w0 & 0xffff, w1 >>> 16, w1 & 0xffff].map((group) => group.toString(16)).join(":")}::/64`;
}

export class ConnectionTable<C> {
  private readonly clients = new Map<string, ClientConnections<C>>();
  private readonly owners = new Map<C, ClientConnections<C>>();
  /** Orders idle connections across clients: a higher value fell idle later. */
  private idleOrder = 0;

  constructor(private readonly limits: ConnectionLimits) {}

  get size(): number {
    return this.owners.size;
  }

  connections(): IterableIterator<C> {
    return this.owners.keys();
  }

  /**
   * Decides for a new `connection` from `client`. Unless refused, it is added (idle: nothing asked yet); a
   * connection evicted to make room is removed here, and the caller closes it.
   */
  open(client: string, connection: C): Admission<C> {
    const admission = this.makeRoom(this.clients.get(client));
    if (admission.kind !== "refused") this.add(client, connection);
    return admission;
  }

  /** The connection holds a partial query or an unread answer: not closed to make room. */
  markBusy(connection: C): void {
    const owner = this.owners.get(connection);
    if (owner === undefined || owner.busy.has(connection)) return;
    owner.idle.delete(connection);
    owner.busy.add(connection);
  }

  /** The connection has nothing in progress; called at every activity, so its place is "idle since now". */
  markIdle(connection: C): void {
    const owner = this.owners.get(connection);
    if (owner === undefined) return;
    owner.busy.delete(connection);
    owner.idle.delete(connection);
    owner.idle.set(connection, ++this.idleOrder);
  }

  /** Forgets a closed connection; closing one already evicted is a no-op. */
  remove(connection: C): void {
    const owner = this.owners.get(connection);
    if (owner === undefined) return;
    this.owners.delete(connection);
    owner.idle.delete(connection);
    owner.busy.delete(connection);
    if (count(owner) === 0) this.clients.delete(owner.key);
  }

  private makeRoom(own: ClientConnections<C> | undefined): Admission<C> {
    if (own !== undefined && count(own) >= this.limits.maxPerClient) return this.evictFrom(own, "client_limit");
    if (this.size >= this.limits.maxConnections) return this.evictFrom(this.busiestWithIdle(), "global_cap");
    return { kind: "accepted" };
  }

  private add(client: string, connection: C): void {
    let owner = this.clients.get(client);
    if (owner === undefined) {
      owner = { key: client, idle: new Map(), busy: new Set() };
      this.clients.set(client, owner);
    }
    this.owners.set(connection, owner);
    owner.idle.set(connection, ++this.idleOrder);
  }

  private evictFrom(owner: ClientConnections<C> | undefined, limit: LimitReached): Admission<C> {
    const victim = owner === undefined ? undefined : oldestIdle(owner);
    if (owner === undefined || victim === undefined) return { kind: "refused", limit };
    this.remove(victim);
    return { kind: "made-room", limit, evicted: victim, evictedClient: owner.key };
  }

  /**
   * The client with the most connections that has an idle one; on a tie, the one whose idle connection fell
   * idle first. A scan: it runs only at the cap, over at most `maxConnections` clients.
   */
  private busiestWithIdle(): ClientConnections<C> | undefined {
    let best: ClientConnections<C> | undefined;
    for (const candidate of this.clients.values()) {
      if (candidate.idle.size === 0) continue;
      if (best === undefined || count(candidate) > count(best) || (count(candidate) === count(best) && firstIdleOrder(candidate) < firstIdleOrder(best))) {
        best = candidate;
      }
    }
    return best;
  }
}

function count(owner: ClientConnections<unknown>): number {
  return owner.idle.size + owner.busy.size;
}

function oldestIdle<C>(owner: ClientConnections<C>): C | undefined {
  return owner.idle.keys().next().value;
}

function firstIdleOrder(owner: ClientConnections<unknown>): number {
  return owner.idle.values().next().value ?? Infinity;
}
