/** The LAN address the box advertises in its HTTPS name when --ip is not given. */
import { networkInterfaces } from "node:os";
import type { NetworkInterfaceInfo } from "node:os";

/** The first non-internal IPv4 address, else 127.0.0.1. */
export function detectLanAddress(interfaces: NodeJS.Dict<NetworkInterfaceInfo[]> = networkInterfaces()): string {
  for (const addresses of Object.values(interfaces)) {
    for (const address of addresses ?? []) {
      if (address.family === "IPv4" && !address.internal) return address.address;
    }
  }
  return "127.0.0.1";
}

/** Every address of the machine's interfaces but loopback: the addresses its HTTPS names may encode. */
export function lanAddresses(interfaces: NodeJS.Dict<NetworkInterfaceInfo[]> = networkInterfaces()): string[] {
  return Object.values(interfaces).flatMap((addresses) => (addresses ?? []).filter((a) => !a.internal).map((a) => a.address));
}
