/**
 * Properties of the answer function over generated input (fast-check), tens of thousands of cases:
 * - random bytes and mutated valid queries: never throws, never hits its own error handler, and answers
 *   null (drop) or a well-formed response that echoes the ID and the question;
 * - whatever the input, the fast path and the general path give the same bytes and log line;
 * - generated hot queries are all taken by the fast path;
 * - the fast path's address parsers agree with @boxcert/shared's decodeAddress.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import packet from "dns-packet";
import { decodeAddress, encodeAddress } from "@boxcert/shared";
import { answer, answerWithoutFastPath, prepare, soaSerial } from "../src/answer.ts";
import { dashedIPv4, dashedIPv6, fastAnswer } from "../src/fast-path.ts";
import { parseIPv4, parseIPv6 } from "../src/ranges.ts";
import { type Answer, type DnsConfig, type QuerySource, type ZoneSnapshot } from "../src/zone.ts";
import { testDnsConfig } from "./helpers/dns-client.ts";

const L1 = "abcdefghijklmnop";
const L2 = "qrstuvwxyz234567";
const FREED = "freedlabel222222";
const config: DnsConfig = testDnsConfig({ nameServers: [{ name: "ns1.boxcert.test", addresses: ["127.0.0.1", "fd00::53"] }] });
const zone: ZoneSnapshot = {
  version: 42,
  activeLabels: new Set([L1, L2]),
  challenges: new Map([
    [L1, ["challenge-one", "challenge-two"]],
    [FREED, ["left-over"]],
  ]),
};
const udp: QuerySource = { address: "192.0.2.1", port: 40000, transport: "udp" };
const tcp: QuerySource = { address: "192.0.2.1", port: 40001, transport: "tcp" };

// --- Generators.

function wire(labels: readonly string[]): Buffer {
  return Buffer.concat([...labels.map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l, "latin1")])), Buffer.from([0])]);
}

/** Random ASCII case, as resolvers using 0x20 send. */
const mixedCase = (text: string) => fc.array(fc.boolean(), { minLength: text.length, maxLength: text.length }).map((flips) => [...text].map((c, i) => (flips[i] ? c.toUpperCase() : c)).join(""));

const privateV4 = fc
  .tuple(fc.constantFrom("10", "127", "192-168", "172-16", "172-31", "100-64", "169-254"), fc.array(fc.integer({ min: 0, max: 255 }), { minLength: 3, maxLength: 3 }))
  .map(([prefix, rest]) => [...prefix.split("-"), ...rest].slice(0, 4).join("-"));
const ulaV6 = fc.tuple(fc.integer({ min: 0xfc00, max: 0xfdff }), fc.array(fc.integer({ min: 0, max: 0xffff }), { minLength: 7, maxLength: 7 })).map(([first, rest]) => encodeAddress([first, ...rest].map((g) => g.toString(16)).join(":").replace(/(^|:)0(:0)+(:|$)/, "::")));
const plainV6 = fc.ipV6().filter((a) => !a.includes(".")).map(encodeAddress);
const anyV4 = fc.ipV4().map(encodeAddress);
const junkLabel = fc.stringMatching(/^[a-z0-9_-]{1,20}$/);

const firstLabel = fc.oneof(privateV4, privateV4, ulaV6, plainV6, anyV4, fc.constant("_acme-challenge"), junkLabel);
const boxLabel = fc.constantFrom(L1, L2, FREED, "unknownlabel2345");

interface Edns {
  udp: number;
  version: number;
  dnssecOk: boolean;
  options: Array<{ code: number; data: Uint8Array }>;
}
const ednsArb: fc.Arbitrary<Edns | null> = fc.option(
  fc.record({
    udp: fc.oneof(fc.constantFrom(512, 1232, 4096), fc.integer({ min: 0, max: 65535 })),
    version: fc.constant(0),
    dnssecOk: fc.boolean(),
    options: fc.array(fc.record({ code: fc.integer({ min: 0, max: 65535 }), data: fc.uint8Array({ maxLength: 24 }) }), { maxLength: 3 }),
  }),
);

function optBytes(edns: Edns): Buffer {
  const options = Buffer.concat(
    edns.options.map(({ code, data }) => {
      const head = Buffer.alloc(4);
      head.writeUInt16BE(code, 0);
      head.writeUInt16BE(data.length, 2);
      return Buffer.concat([head, Buffer.from(data)]);
    }),
  );
  const fixed = Buffer.alloc(11);
  fixed.writeUInt16BE(41, 1);
  fixed.writeUInt16BE(edns.udp, 3);
  fixed[6] = edns.version;
  fixed[7] = edns.dnssecOk ? 0x80 : 0;
  fixed.writeUInt16BE(options.length, 9);
  return Buffer.concat([fixed, options]);
}

function buildQuery(fields: { id: number; flags: number; labels: readonly string[]; qtype: number; qclass: number; edns: Edns | null }): Buffer {
  const header = Buffer.alloc(12);
  header.writeUInt16BE(fields.id, 0);
  header.writeUInt16BE(fields.flags, 2);
  header.writeUInt16BE(1, 4);
  header.writeUInt16BE(fields.edns ? 1 : 0, 10);
  const tail = Buffer.alloc(4);
  tail.writeUInt16BE(fields.qtype, 0);
  tail.writeUInt16BE(fields.qclass, 2);
  return Buffer.concat([header, wire(fields.labels), tail, fields.edns ? optBytes(fields.edns) : Buffer.alloc(0)]);
}

/** RD and CD at random; QR, OPCODE, AA, TC, Z, AD as a resolver sends them (clear). */
const queryFlags = fc.tuple(fc.boolean(), fc.boolean()).map(([rd, cd]) => (rd ? 0x0100 : 0) | (cd ? 0x0010 : 0));

/** The queries the fast path is for. */
const hotQuery = fc
  .record({
    id: fc.integer({ min: 0, max: 65535 }),
    flags: queryFlags,
    first: firstLabel,
    label: boxLabel,
    deeper: fc.option(junkLabel, { freq: 8 }),
    qtype: fc.constantFrom(1, 28, 16),
    edns: ednsArb,
  })
  .chain((q) =>
    mixedCase([q.deeper, q.first, q.label, "boxcert", "test"].filter((l) => l !== null).join(".")).map((name) =>
      buildQuery({ id: q.id, flags: q.flags, labels: name.split("."), qtype: q.qtype, qclass: 1, edns: q.edns }),
    ),
  );

/** Valid queries of every kind: the hot ones, the apex, the label, name servers, outside names, odd types and classes. */
const anyQuery = fc.oneof(
  hotQuery,
  fc
    .record({
      id: fc.integer({ min: 0, max: 65535 }),
      flags: fc.oneof(queryFlags, fc.integer({ min: 0, max: 0x7fff })),
      name: fc.constantFrom("boxcert.test", `${L1}.boxcert.test`, `${FREED}.boxcert.test`, "ns1.boxcert.test", "example.com", ".", `_acme-challenge.${FREED}.boxcert.test`),
      qtype: fc.oneof(fc.constantFrom(1, 2, 6, 16, 28, 255, 257, 252, 251, 41, 15), fc.integer({ min: 0, max: 65535 })),
      qclass: fc.constantFrom(1, 1, 1, 3, 254, 255),
      edns: fc.option<Edns>(fc.record({ udp: fc.integer({ min: 0, max: 65535 }), version: fc.integer({ min: 0, max: 2 }), dnssecOk: fc.boolean(), options: fc.constant([]) })),
    })
    .chain((q) => mixedCase(q.name).map((name) => buildQuery({ ...q, labels: name === "." ? [] : name.split(".") }))),
);

type Mutation = (bytes: Buffer) => Buffer;
const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 7 })), { minLength: 1, maxLength: 6 }).map((flips): Mutation => (b) => {
    const out = Buffer.from(b);
    for (const [at, bit] of flips) if (out.length > 0) out[at % out.length]! ^= 1 << bit;
    return out;
  }),
  fc.nat().map((cut): Mutation => (b) => b.subarray(0, cut % (b.length + 1))),
  fc.uint8Array({ minLength: 1, maxLength: 64 }).map((extra): Mutation => (b) => Buffer.concat([b, extra])),
  fc.tuple(fc.integer({ min: 0, max: 5 }), fc.oneof(fc.integer({ min: 0, max: 65535 }), fc.constantFrom(0, 1, 2, 0xffff))).map(([field, value]): Mutation => (b) => {
    const out = Buffer.from(b);
    if (out.length >= 2 * field + 2) out.writeUInt16BE(value, 2 * field);
    return out;
  }),
  fc.tuple(fc.nat(), fc.uint8Array({ minLength: 1, maxLength: 8 })).map(([at, bytes]): Mutation => (b) => {
    const cut = at % (b.length + 1);
    return Buffer.concat([b.subarray(0, cut), bytes, b.subarray(cut)]);
  }),
);
const mutatedQuery = fc.tuple(anyQuery, fc.array(mutation, { minLength: 1, maxLength: 3 })).map(([q, ms]) => ms.reduce((b, m) => m(b), q));

// --- What every answer must be.

/** Whether the query's question can be read (an independent reading: QDCOUNT=1, plain labels, <= 255 octets). */
function readableQuestionEnd(query: Buffer): number | null {
  if (query.length < 12 || query.readUInt16BE(4) !== 1) return null;
  let offset = 12;
  for (;;) {
    if (offset >= query.length || offset - 12 >= 255) return null;
    const length = query[offset]!;
    if (length === 0) break;
    if (length > 63) return null;
    offset += 1 + length;
  }
  return offset + 5 <= query.length ? offset + 5 : null;
}

function checkAnswer(query: Buffer, source: QuerySource): Answer {
  const result = answer(query, source, zone, config);
  // The same from the general path alone: the fast path changes speed, never bytes.
  assert.deepEqual(answerWithoutFastPath(query, source, zone, config), result);
  assert.doesNotMatch(result.log, /internal error/, "answer() caught an error of its own");
  assert.doesNotMatch(result.log, /[\r\n]/);
  if (result.response === null) {
    assert.equal(result.rcode, "DROP");
    assert.ok(query.length < 12 || (query[2]! & 0x80) !== 0, `dropped a query: ${result.log}`);
    return result;
  }
  const response = result.response;
  assert.ok(query.length >= 12 && (query[2]! & 0x80) === 0);
  const decoded = packet.decode(response);
  assert.equal(packet.decode.bytes, response.length, "no bytes after the last record");
  assert.equal(response[2]! & 0x80, 0x80, "QR");
  assert.equal(response[3]! & 0x80, 0, "RA");
  assert.equal(response.readUInt16BE(0), query.readUInt16BE(0), "ID");
  assert.equal(response[2]! & 0x78, query[2]! & 0x78, "OPCODE");
  const opts = (decoded.additionals ?? []).filter((r) => r.type === "OPT");
  assert.ok(opts.length <= 1);
  if (source.transport === "udp") assert.ok(response.length <= (opts.length === 1 ? 1232 : 512), `${response.length} bytes over UDP`);
  const questionEnd = readableQuestionEnd(query);
  if (questionEnd !== null) {
    assert.equal(response.readUInt16BE(4), 1);
    assert.deepEqual(response.subarray(12, questionEnd), query.subarray(12, questionEnd), "the question as asked");
  }
  return result;
}

test("random bytes: drop or a well-formed response, never an exception", () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 300 }), fc.boolean(), (bytes, overTcp) => {
      checkAnswer(Buffer.from(bytes), overTcp ? tcp : udp);
    }),
    { numRuns: 20_000 },
  );
});

test("random bytes behind a valid header: FORMERR or an answer", () => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 65535 }), fc.integer({ min: 0, max: 3 }), fc.uint8Array({ maxLength: 200 }), (id, qdcount, body) => {
      const header = Buffer.alloc(12);
      header.writeUInt16BE(id, 0);
      header.writeUInt16BE(qdcount, 4);
      const result = checkAnswer(Buffer.concat([header, body]), udp);
      assert.notEqual(result.response, null);
    }),
    { numRuns: 10_000 },
  );
});

test("valid queries of every kind: well-formed answers", () => {
  fc.assert(
    fc.property(anyQuery, fc.boolean(), (query, overTcp) => {
      const result = checkAnswer(query, overTcp ? tcp : udp);
      assert.notEqual(result.rcode, "FORMERR", result.log);
    }),
    { numRuns: 10_000 },
  );
});

test("mutated queries (bit flips, cuts, extensions, header fields): drop or a well-formed response", () => {
  fc.assert(
    fc.property(mutatedQuery, fc.boolean(), (query, overTcp) => {
      checkAnswer(query, overTcp ? tcp : udp);
    }),
    { numRuns: 40_000 },
  );
});

test("hot queries all take the fast path, with the general path's bytes", () => {
  const prepared = prepare(config);
  fc.assert(
    fc.property(hotQuery, fc.boolean(), (query, overTcp) => {
      const fast = fastAnswer(query, overTcp, zone, prepared.fast, soaSerial(zone.version));
      assert.notEqual(fast, undefined, query.toString("latin1", 12));
      const general = answerWithoutFastPath(query, overTcp ? tcp : udp, zone, config);
      assert.deepEqual(fast!.response, general.response);
      checkAnswer(query, overTcp ? tcp : udp);
    }),
    { numRuns: 15_000 },
  );
});

test("a table of hot queries through both paths", () => {
  const prepared = prepare(config);
  const names: Array<[string, number]> = [
    [`192-168-1-42.${L1}.boxcert.test`, 1],
    [`192-168-1-42.${L1.toUpperCase()}.BOXCERT.TEST`, 1],
    [`fd00--1.${L1}.boxcert.test`, 28],
    [`fd00--1.${L1}.boxcert.test`, 1],
    [`192-168-1-42.${L1}.boxcert.test`, 28],
    [`192-168-1-42.${L1}.boxcert.test`, 16],
    [`8-8-8-8.${L1}.boxcert.test`, 1],
    [`2001-db8--1.${L1}.boxcert.test`, 28],
    [`192-168-1-42.${FREED}.boxcert.test`, 1],
    [`_acme-challenge.${L1}.boxcert.test`, 16],
    [`_ACME-CHALLENGE.${L1}.boxcert.test`, 16],
    [`_acme-challenge.${L2}.boxcert.test`, 16],
    [`_acme-challenge.${FREED}.boxcert.test`, 16],
    [`_acme-challenge.${FREED}.boxcert.test`, 1],
    [`_acme-challenge.unknownlabel2345.boxcert.test`, 16],
    [`www.${L1}.boxcert.test`, 1],
    [`a.b.${L1}.boxcert.test`, 16],
  ];
  for (const [name, qtype] of names) {
    for (const edns of [null, { udp: 1232, version: 0, dnssecOk: true, options: [{ code: 10, data: new Uint8Array(8) }] }]) {
      const query = buildQuery({ id: 7, flags: 0x0100, labels: name.split("."), qtype, qclass: 1, edns });
      const fast = fastAnswer(query, false, zone, prepared.fast, soaSerial(zone.version));
      assert.ok(fast, name);
      assert.deepEqual(fast.response, answerWithoutFastPath(query, udp, zone, config).response, `${name} ${qtype}`);
    }
  }
});

test("the fast path's address parsers agree with decodeAddress", () => {
  const label = fc.oneof(
    fc.stringMatching(/^[0-9-]{1,16}$/),
    fc.stringMatching(/^[0-9a-fA-F-]{1,45}$/),
    fc.stringMatching(/^[0-9a-f]{0,4}(-{1,2}[0-9a-f]{0,5}){0,9}$/),
    fc.ipV4().map(encodeAddress),
    fc.ipV6().filter((a) => !a.includes(".")).map(encodeAddress),
    fc.ipV6().filter((a) => !a.includes(".")).map((a) => encodeAddress(a).toUpperCase()),
  );
  const out = new Int32Array(8);
  fc.assert(
    fc.property(label, (text) => {
      const expected = decodeAddress(text);
      const bytes = Buffer.from(text, "latin1");
      const v4 = dashedIPv4(bytes, 0, bytes.length);
      if (v4 >= 0) {
        assert.equal(parseIPv4(expected ?? "-"), v4, text);
        return;
      }
      if (v4 === -1) {
        assert.equal(expected, null, text);
        return;
      }
      if (dashedIPv6(bytes, 0, bytes.length, out)) {
        const words = parseIPv6(expected ?? "-");
        assert.ok(words, `${text}: decodeAddress says ${expected}`);
        assert.deepEqual([...out], words.flatMap((w) => [w >>> 16, w & 0xffff]), text);
      } else {
        assert.equal(expected, null, text);
      }
    }),
    { numRuns: 30_000 },
  );
});
