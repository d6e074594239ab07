import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { isIPv6 } from "node:net";
import { boxHostname, certificateNames, decodeAddress, encodeAddress, isLabel, newLabel } from "../src/names.ts";

test("labels are 80 random bits in lowercase base32", () => {
  const labels = new Set(Array.from({ length: 1000 }, newLabel));
  assert.equal(labels.size, 1000);
  for (const label of labels) assert.ok(isLabel(label) && label.length === 16, label);
});

test("contract examples", () => {
  assert.equal(boxHostname("192.168.1.42", "abc", "iot.example.net"), "192-168-1-42.abc.iot.example.net");
  assert.equal(encodeAddress("fd00::1"), "fd00--1");
  assert.equal(decodeAddress("fd00--1"), "fd00::1");
  assert.equal(decodeAddress("192-168-1-42"), "192.168.1.42");
  assert.equal(decodeAddress("FD00--1"), "fd00::1");
  assert.deepEqual(certificateNames("abc", "z.test"), ["*.abc.z.test", "abc.z.test"]);
  for (const bad of ["192-168-1", "256-1-1-1", "01-2-3-4", "www", "1-2-3-4-5", "---", "fd00---1"]) {
    assert.equal(decodeAddress(bad), null, bad);
  }
  assert.throws(() => encodeAddress("not-an-ip"));
});

test("IPv4 round-trips", () => {
  fc.assert(fc.property(fc.ipV4(), (ip) => decodeAddress(encodeAddress(ip)) === ip));
});

test("IPv6 round-trips to the same address", () => {
  fc.assert(
    fc.property(fc.ipV6().filter((ip) => !ip.includes(".")), (ip) => {
      const decoded = decodeAddress(encodeAddress(ip));
      return decoded !== null && isIPv6(decoded) && Buffer.compare(toBytes(decoded), toBytes(ip)) === 0;
    }),
  );
});

function toBytes(ip: string): Buffer {
  const [head, tail] = ip.includes("::") ? ip.split("::") : [ip, undefined];
  const h = head ? head.split(":") : [];
  const t = tail ? tail.split(":") : [];
  const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill("0"), ...t];
  return Buffer.from(groups.flatMap((g) => [parseInt(g, 16) >> 8, parseInt(g, 16) & 255]));
}
