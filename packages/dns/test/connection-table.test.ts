/**
 * Which TCP connection the limits close (connection-table.ts), as a pure decision: connections are strings
 * here, clients are addresses. The same rules on real sockets: tcp-limits.test.ts.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { clientOf, ConnectionTable } from "../src/connection-table.ts";

/** Opens each `[client, connection]` in order and asserts it is accepted without closing anything. */
function opened(table: ConnectionTable<string>, connections: Array<[string, string]>): void {
  for (const [client, connection] of connections) assert.deepEqual(table.open(client, connection), { kind: "accepted" }, connection);
}

test("under both limits every connection is accepted and nothing is closed", () => {
  const table = new ConnectionTable<string>({ maxConnections: 4, maxPerClient: 2 });
  opened(table, [["A", "a1"], ["A", "a2"], ["B", "b1"], ["C", "c1"]]);
  assert.equal(table.size, 4);
  assert.deepEqual([...table.connections()], ["a1", "a2", "b1", "c1"]);
});

test("a client at its limit loses its own connection idle the longest, not one of another client", () => {
  const table = new ConnectionTable<string>({ maxConnections: 10, maxPerClient: 3 });
  opened(table, [["B", "b1"], ["A", "a1"], ["A", "a2"], ["A", "a3"]]);
  // a1 is the oldest, but it just answered a query: a2 has been idle the longest.
  table.markIdle("a1");
  assert.deepEqual(table.open("A", "a4"), { kind: "made-room", limit: "client_limit", evicted: "a2", evictedClient: "A" });
  assert.deepEqual([...table.connections()].sort(), ["a1", "a3", "a4", "b1"]);
});

test("a client at its limit with every connection busy has its new connection refused", () => {
  const table = new ConnectionTable<string>({ maxConnections: 10, maxPerClient: 2 });
  opened(table, [["A", "a1"], ["A", "a2"], ["B", "b1"]]);
  table.markBusy("a1");
  table.markBusy("a2");
  assert.deepEqual(table.open("A", "a3"), { kind: "refused", limit: "client_limit" });
  assert.equal(table.size, 3);
  // Once one is idle again, it is the one that goes.
  table.markIdle("a2");
  assert.deepEqual(table.open("A", "a3"), { kind: "made-room", limit: "client_limit", evicted: "a2", evictedClient: "A" });
});

test("at the cap the client holding the most connections loses its connection idle the longest", () => {
  const table = new ConnectionTable<string>({ maxConnections: 6, maxPerClient: 6 });
  // B's connection is the oldest of all, but A holds the most.
  opened(table, [["B", "b1"], ["C", "c1"], ["A", "a1"], ["A", "a2"], ["A", "a3"], ["C", "c2"]]);
  assert.deepEqual(table.open("D", "d1"), { kind: "made-room", limit: "global_cap", evicted: "a1", evictedClient: "A" });
  // A and C hold two each now: the tie goes to the client whose idle connection has waited longest (C's c1).
  assert.deepEqual(table.open("D", "d2"), { kind: "made-room", limit: "global_cap", evicted: "c1", evictedClient: "C" });
  // A and D hold two each: A's a2 has waited longer than D's d1.
  assert.deepEqual(table.open("E", "e1"), { kind: "made-room", limit: "global_cap", evicted: "a2", evictedClient: "A" });
  assert.deepEqual([...table.connections()].sort(), ["a3", "b1", "c2", "d1", "d2", "e1"]);
  assert.equal(table.size, 6);
});

test("at the cap a busiest client with nothing idle is passed over for the next with an idle connection", () => {
  const table = new ConnectionTable<string>({ maxConnections: 5, maxPerClient: 5 });
  opened(table, [["A", "a1"], ["A", "a2"], ["A", "a3"], ["B", "b1"], ["B", "b2"]]);
  for (const connection of ["a1", "a2", "a3"]) table.markBusy(connection);
  assert.deepEqual(table.open("C", "c1"), { kind: "made-room", limit: "global_cap", evicted: "b1", evictedClient: "B" });
});

test("at the cap with every connection busy the new one is refused", () => {
  const table = new ConnectionTable<string>({ maxConnections: 3, maxPerClient: 3 });
  opened(table, [["A", "a1"], ["A", "a2"], ["B", "b1"]]);
  for (const connection of ["a1", "a2", "b1"]) table.markBusy(connection);
  assert.deepEqual(table.open("C", "c1"), { kind: "refused", limit: "global_cap" });
  assert.deepEqual([...table.connections()], ["a1", "a2", "b1"]);
});

test("the per-client limit is checked before the cap: a client at both loses its own connection", () => {
  const table = new ConnectionTable<string>({ maxConnections: 4, maxPerClient: 2 });
  opened(table, [["B", "b1"], ["B", "b2"], ["A", "a1"], ["A", "a2"]]);
  assert.deepEqual(table.open("A", "a3"), { kind: "made-room", limit: "client_limit", evicted: "a1", evictedClient: "A" });
});

test("closed connections free their slots; closing twice, or marking a closed one, changes nothing", () => {
  const table = new ConnectionTable<string>({ maxConnections: 2, maxPerClient: 2 });
  opened(table, [["A", "a1"], ["A", "a2"]]);
  table.remove("a1");
  table.remove("a1");
  table.markIdle("a1");
  table.markBusy("a1");
  assert.deepEqual([...table.connections()], ["a2"]);
  opened(table, [["B", "b1"]]);
  table.remove("a2");
  table.remove("b1");
  assert.equal(table.size, 0);
  // A client with no connection left is forgotten: it starts again from zero.
  opened(table, [["A", "a3"], ["A", "a4"]]);
});

test("clientOf: an IPv4 address is its own client, an IPv6 address counts by its /64", () => {
  assert.equal(clientOf("192.0.2.7"), "192.0.2.7");
  assert.equal(clientOf("::ffff:192.0.2.7"), "192.0.2.7", "IPv4-mapped, as a dual-stack listener reports it");
  assert.equal(clientOf("2001:db8:1:2::1"), "2001:db8:1:2::/64");
  assert.equal(clientOf("2001:db8:1:2:aaaa:bbbb:cccc:dddd"), clientOf("2001:db8:1:2::1"));
  assert.notEqual(clientOf("2001:db8:1:3::1"), clientOf("2001:db8:1:2::1"));
  assert.equal(clientOf("::1"), "0:0:0:0::/64");
  assert.equal(clientOf(undefined), "");
});
