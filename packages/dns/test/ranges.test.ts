/** The allow-list (ranges.ts): edges of the default ranges, prefix lengths across words, bad ranges, and node:net's BlockList as an oracle. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { BlockList, isIPv6 } from "node:net";
import fc from "fast-check";
import { AllowRanges, allowRanges, parseIPv4, parseIPv6 } from "../src/ranges.ts";
import { DEFAULT_ALLOW } from "../src/zone.ts";

const defaults = new AllowRanges(DEFAULT_ALLOW);

test("IPv4 edges of the default ranges", () => {
  const inside = [
    "10.0.0.0", "10.255.255.255", "172.16.0.0", "172.31.255.255", "192.168.0.0", "192.168.255.255",
    "100.64.0.0", "100.127.255.255", "169.254.0.0", "169.254.255.255", "127.0.0.0", "127.255.255.255",
  ];
  const outside = [
    "9.255.255.255", "11.0.0.0", "172.15.255.255", "172.32.0.0", "192.167.255.255", "192.169.0.0",
    "100.63.255.255", "100.128.0.0", "169.253.255.255", "169.255.0.0", "126.255.255.255", "128.0.0.0",
    "0.0.0.0", "255.255.255.255", "8.8.8.8",
  ];
  for (const address of inside) assert.equal(defaults.contains(address), true, address);
  for (const address of outside) assert.equal(defaults.contains(address), false, address);
});

test("IPv6 edges of the default ranges", () => {
  const inside = ["fc00::", "fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "fd00::1", "fe80::", "febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "::1", "FD12:3456::ABCD"];
  const outside = ["fbff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "fe00::", "fec0::", "::", "::2", "2001:db8::1", "ff02::1", "::ffff:192.168.1.1", "::ffff:c0a8:101"];
  for (const address of inside) assert.equal(defaults.contains(address), true, address);
  for (const address of outside) assert.equal(defaults.contains(address), false, address);
});

test("prefixes that end inside a 32-bit word, on a word, and /0", () => {
  const ranges = new AllowRanges(["2001:db8:8000::/33", "2001:db9::/32", "2001:dba:0:0:8000::/65", "1.2.3.128/25", "0.0.0.0/0"]);
  assert.equal(ranges.contains("2001:db8:8000::"), true);
  assert.equal(ranges.contains("2001:db8:ffff:ffff:ffff:ffff:ffff:ffff"), true);
  assert.equal(ranges.contains("2001:db8:7fff:ffff:ffff:ffff:ffff:ffff"), false);
  assert.equal(ranges.contains("2001:db9:ffff::1"), true);
  assert.equal(ranges.contains("2001:dba::8000:0:0:1"), true);
  assert.equal(ranges.contains("2001:dba::7fff:ffff:ffff:ffff"), false);
  assert.equal(ranges.contains("203.0.113.7"), true, "0.0.0.0/0 holds every IPv4 address");
  assert.equal(ranges.contains("2001:dbb::"), false, "but no IPv6 one");
  const all6 = new AllowRanges(["::/0"]);
  assert.equal(all6.contains("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"), true);
  assert.equal(all6.contains("1.2.3.4"), false);
  const single = new AllowRanges(["192.0.2.1", "2001:db8::1/128"]);
  assert.equal(single.contains("192.0.2.1"), true);
  assert.equal(single.contains("192.0.2.2"), false);
  assert.equal(single.contains("2001:db8::1"), true);
  assert.equal(single.contains("2001:db8::2"), false);
  assert.equal(new AllowRanges([]).contains("10.0.0.1"), false);
});

test("the numeric checks take signed or unsigned words", () => {
  assert.equal(new AllowRanges(["255.0.0.0/8"]).containsIPv4(0xff000001), true);
  assert.equal(new AllowRanges(["255.0.0.0/8"]).containsIPv4(0xff000001 | 0), true);
  assert.equal(defaults.containsIPv6(0xfd000000, 0, 0, 1), true);
  assert.equal(defaults.containsIPv6(0xfd000000 | 0, 0, 0, 1), true);
});

test("bad ranges are refused with the range in the message", () => {
  for (const [cidr, why] of [
    ["10.0.0.1/8", /host bits set \(the range starts at 10\.0\.0\.0\)/],
    ["fc00::1/7", /host bits set/],
    ["10.0.0.0/33", /prefix length must be 0\.\.32/],
    ["fc00::/129", /prefix length must be 0\.\.128/],
    ["10.0.0.0/", /prefix length/],
    ["10.0.0.0/-1", /prefix length/],
    ["10.0.0/8", /not an IPv4 or IPv6 address/],
    ["010.0.0.0/8", /not an IPv4 or IPv6 address/],
    ["fe80::1%eth0/128", /not an IPv4 or IPv6 address/],
    ["example.com", /not an IPv4 or IPv6 address/],
  ] as const) {
    assert.throws(() => new AllowRanges([cidr]), (err: Error) => err.message.includes(JSON.stringify(cidr)) && why.test(err.message), cidr);
  }
});

test("allowRanges parses a list once", () => {
  const list = ["10.0.0.0/8"];
  assert.equal(allowRanges(list), allowRanges(list));
});

test("parseIPv4 and parseIPv6 on the forms that matter", () => {
  assert.equal(parseIPv4("192.168.1.42"), 0xc0a8012a);
  assert.equal(parseIPv4("255.255.255.255"), 0xffffffff);
  for (const bad of ["256.1.1.1", "1.2.3", "1.2.3.4.5", "01.2.3.4", "1..3.4", "", "a.b.c.d", " 1.2.3.4"]) assert.equal(parseIPv4(bad), null, bad);
  assert.deepEqual(parseIPv6("::"), [0, 0, 0, 0]);
  assert.deepEqual(parseIPv6("::1"), [0, 0, 0, 1]);
  assert.deepEqual(parseIPv6("1::"), [0x10000, 0, 0, 0]);
  assert.deepEqual(parseIPv6("1:2:3:4:5:6:7::"), [0x10002, 0x30004, 0x50006, 0x70000]);
  assert.deepEqual(parseIPv6("::2:3:4:5:6:7:8"), [0x2, 0x30004, 0x50006, 0x70008]);
  assert.deepEqual(parseIPv6("::ffff:192.168.1.1"), [0, 0, 0xffff, 0xc0a80101]);
  for (const bad of [":::", "1:::2", "1::2::3", ":1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8:", "1:2:3:4:5:6:7:8::", "12345::", "g::", "1:2:3:4:5:6:7", "::1.2.3", "1.2.3.4::"]) {
    assert.equal(parseIPv6(bad), null, bad);
  }
});

test("parseIPv6 accepts what node:net accepts (generated addresses)", () => {
  fc.assert(
    fc.property(fc.ipV6(), (address) => {
      assert.equal(isIPv6(address), true);
      assert.notEqual(parseIPv6(address), null, address);
    }),
    { numRuns: 5000 },
  );
});

function format6(words: readonly number[]): string {
  return words.flatMap((w) => [(w >>> 16).toString(16), (w & 0xffff).toString(16)]).join(":");
}

test("containment agrees with node:net's BlockList on random ranges and addresses", () => {
  const v4Range = fc.tuple(fc.ipV4(), fc.integer({ min: 0, max: 32 })).map(([address, prefix]) => {
    const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
    const base = (parseIPv4(address)! & mask) >>> 0;
    return { text: `${[base >>> 24, (base >>> 16) & 255, (base >>> 8) & 255, base & 255].join(".")}/${prefix}`, prefix, family: "ipv4" as const };
  });
  const v6Range = fc.tuple(fc.ipV6(), fc.integer({ min: 0, max: 128 })).map(([address, prefix]) => {
    const words = parseIPv6(address)!.map((word, i) => {
      const bits = prefix - 32 * i;
      const mask = bits <= 0 ? 0 : bits >= 32 ? 0xffffffff : (0xffffffff << (32 - bits)) >>> 0;
      return (word & mask) >>> 0;
    });
    return { text: `${format6(words)}/${prefix}`, prefix, family: "ipv6" as const };
  });
  fc.assert(
    fc.property(fc.array(fc.oneof(v4Range, v6Range), { maxLength: 6 }), fc.array(fc.oneof(fc.ipV4(), fc.ipV6()), { minLength: 1, maxLength: 20 }), (ranges, probes) => {
      const ours = new AllowRanges(ranges.map((r) => r.text));
      // One BlockList per family: BlockList also matches IPv4 addresses against IPv6 rules (as mapped).
      const oracle = { ipv4: new BlockList(), ipv6: new BlockList() };
      for (const r of ranges) oracle[r.family].addSubnet(r.text.split("/")[0]!, r.prefix, r.family);
      // Probes inside each range too, not only random ones (which rarely hit a long prefix).
      const all = [...probes, ...ranges.map((r) => r.text.split("/")[0]!)];
      for (const probe of all) {
        const words = probe.includes(":") ? parseIPv6(probe)! : null;
        if (words !== null && words[0] === 0 && words[1] === 0 && words[2] === 0xffff) continue; // BlockList maps ::ffff:a.b.c.d to IPv4; we do not
        const family = probe.includes(":") ? "ipv6" : "ipv4";
        assert.equal(ours.contains(probe), oracle[family].check(probe, family), `${probe} in ${ranges.map((r) => r.text).join(", ")}`);
      }
    }),
    { numRuns: 3000 },
  );
});
