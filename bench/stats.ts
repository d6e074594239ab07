/** Small helpers every benchmark shares: medians, the `result:` line, raw signing as the reference. */
import { generateKeyPairSync, sign } from "node:crypto";

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** The line scripts read (CONTRIBUTING.md): `result: bench=NAME key=value ...`, numbers plain, ratios with three decimals. */
export function resultLine(name: string, values: Record<string, number | string>): string {
  const parts = Object.entries(values).map(([k, v]) =>
    typeof v === "number" ? `${k}=${k.startsWith("ratio") ? v.toFixed(3) : Number.isInteger(v) ? v : v.toFixed(1)}` : `${k}=${v}`,
  );
  return `result: bench=${name} ${parts.join(" ")}`;
}

/** Raw ECDSA P-256 signatures per second (SHA-256, DER), over `ms` of wall time. */
export function rawSignsPerSecond(ms = 1000): number {
  const { privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const data = Buffer.alloc(400, 7);
  for (let i = 0; i < 500; i++) sign("sha256", data, { key: privateKey, dsaEncoding: "der" });
  let n = 0;
  const start = performance.now();
  let now = start;
  while (now - start < ms) {
    for (let i = 0; i < 100; i++) sign("sha256", data, { key: privateKey, dsaEncoding: "der" });
    n += 100;
    now = performance.now();
  }
  return (n * 1000) / (now - start);
}
