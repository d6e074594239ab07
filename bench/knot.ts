/**
 * Knot DNS (Debian `knot`) as the reference server of `npm run bench -- dns`: a configuration and a zone file
 * in a temporary folder, one UDP worker, started by hand on a loopback port (Debian's policy-rc.d stops the
 * packaged service from starting, and the bench must not touch a system service anyway).
 */
import { writeFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";

export interface KnotZone {
  zone: string;
  nameServer: { name: string; address: string };
  caa: string[];
  /** Owner name (absolute, no trailing dot) → IPv4 address. */
  addresses: Map<string, string>;
  /** Owner name → TXT values. */
  txt: Map<string, readonly string[]>;
}

/** The zone in master-file format: the same names and data `boxcert dns` answers from its store. */
export function knotZoneFile(z: KnotZone): string {
  const lines = [
    `$ORIGIN ${z.zone}.`,
    `$TTL 300`,
    `@ 3600 IN SOA ${z.nameServer.name}. hostmaster.${z.zone}. 1 3600 600 86400 60`,
    `@ 3600 IN NS ${z.nameServer.name}.`,
    ...z.caa.map((ca) => `@ 3600 IN CAA 0 issue "${ca}"`),
    `${z.nameServer.name}. 3600 IN A ${z.nameServer.address}`,
  ];
  for (const [name, address] of z.addresses) lines.push(`${name}. 300 IN A ${address}`);
  for (const [name, values] of z.txt) for (const value of values) lines.push(`${name}. 30 IN TXT "${value}"`);
  return lines.join("\n") + "\n";
}

/** Writes knot.conf and the zone file under `dir`; returns the argv that starts knotd in the foreground. */
export function prepareKnot(dir: string, port: number, zone: KnotZone): string[] {
  const storage = join(dir, "knot");
  mkdirSync(storage, { recursive: true });
  writeFileSync(join(storage, `${zone.zone}.zone`), knotZoneFile(zone));
  const conf = join(dir, "knot.conf");
  writeFileSync(
    conf,
    [
      "server:",
      `    rundir: "${storage}"`,
      `    listen: 127.0.0.1@${port}`,
      // One worker of each kind, so the comparison is one core against one core (Knot answered about 148,000 q/s with one UDP worker here).
      "    udp-workers: 1",
      "    tcp-workers: 1",
      "    background-workers: 1",
      "database:",
      `    storage: "${storage}"`,
      "control:",
      `    listen: "${join(storage, "knot.sock")}"`,
      "log:",
      "  - target: stderr",
      "    any: warning",
      "zone:",
      `  - domain: ${zone.zone}`,
      `    storage: "${storage}"`,
      `    file: "${zone.zone}.zone"`,
      // The bench never writes the zone back or keeps a journal: nothing but answering runs during the timing.
      "    zonefile-sync: -1",
      "    journal-content: none",
      "",
    ].join("\n"),
  );
  return ["knotd", "-c", conf];
}
