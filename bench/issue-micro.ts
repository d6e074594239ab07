/**
 * In-process micro benchmark of the issuance path without HTTP: `Issuance.certificate()` on a real SQLite
 * store and the embedded CA, as the issuer runs it, and the raw crypto it is built on, all in one run.
 * Prints medians in us per issuance; compare figures only within one run (the machine is shared).
 *
 *   node --import tsx bench/issue-micro.ts [issuances per run=2000] [runs=5] [concurrency=1]
 */
import { generateKeyPairSync, randomUUID, sign, verify } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { openStore, RegistryOperations } from "@boxcert/store";
import { issuanceRecords } from "../packages/issuer/src/issuance-records.ts";
import { EmbeddedCa } from "../packages/issuer/src/embedded-ca.ts";
import { Issuance, enrollBox, type SignedInput } from "../packages/issuer/src/issuance.ts";
import { verifyCsr } from "../packages/issuer/src/csr.ts";
import { credentials, scriptedBox, signBody } from "../test/support/box-client.ts";
import { fastCsrPem } from "./fast-csr.ts";
import { median } from "./stats.ts";

const PER_RUN = Number(process.argv[2] ?? 2000);
const RUNS = Number(process.argv[3] ?? 5);
const CONCURRENCY = Number(process.argv[4] ?? 1);
const BOXES = 256;
const ZONE = "boxcert.test";

type Input = SignedInput & { label: string; csr: string };

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "boxcert-issue-micro-"));
  const store = await openStore(join(dir, "registry.sqlite"), { backgroundCheckpoints: true });
  try {
    const registry = new RegistryOperations(store);
    const records = issuanceRecords(store);
    const ca = await EmbeddedCa.loadOrCreate(join(dir, "keys"));
    const issuance = new Issuance({
      records,
      source: ca,
      zone: ZONE,
      lifetimeMs: 90 * 86_400_000,
      maxCertificatesPerWeek: 1_000_000,
      clock: Date.now,
      logger: pino({ level: "warn" }),
    });
    const dbUuid = randomUUID();
    await registry.addSubscription({ code: "BENCH", state: "in_progress", seats: BOXES });
    await registry.addDatabase({ uuid: dbUuid, subscription: "BENCH", kind: "production" });
    const boxes: Array<{ box: ReturnType<typeof scriptedBox>; label: string; names: string[] }> = [];
    for (let i = 0; i < BOXES; i++) {
      const box = scriptedBox(dbUuid, "BENCH");
      const { box: enrolled } = await enrollBox(records, { ...credentials(box), identityKey: box.identitySpki }, new Date());
      const label = enrolled!.label;
      boxes.push({ box, label, names: [`*.${label}.${ZONE}`, `${label}.${ZONE}`] });
    }
    const prepare = (n: number): Input[] =>
      Array.from({ length: n }, (_, i) => {
        const { box, label, names } = boxes[i % boxes.length]!;
        const fields = { ...credentials(box), label, csr: fastCsrPem(names) };
        const body = JSON.stringify(fields);
        return { ...fields, raw: Buffer.from(body), signature: signBody(box, body) };
      });

    const run = async (work: Input[]): Promise<number> => {
      let next = 0;
      const start = performance.now();
      await Promise.all(
        Array.from({ length: CONCURRENCY }, async () => {
          while (next < work.length) {
            const outcome = await issuance.certificate(work[next++]!);
            if (outcome.kind !== "ok" || outcome.body.reused) throw new Error(`issuance failed: ${JSON.stringify(outcome)}`);
          }
        }),
      );
      return ((performance.now() - start) * 1000) / work.length;
    };

    // The pieces, for orientation: raw crypto and the CSR check on the same inputs.
    const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
    const data = Buffer.alloc(800, 7);
    const signature = sign("sha256", data, { key: privateKey, dsaEncoding: "der" });
    const each = (n: number, f: (i: number) => void): number => {
      const start = performance.now();
      for (let i = 0; i < n; i++) f(i);
      return ((performance.now() - start) * 1000) / n;
    };

    await run(prepare(1000));
    const figures: Record<string, number[]> = { certificate: [], verifyCsr: [], sign: [], verify: [] };
    for (let r = 0; r < RUNS; r++) {
      const work = prepare(PER_RUN);
      figures.verifyCsr!.push(each(Math.min(PER_RUN, 1000), (i) => verifyCsr(work[i]!.csr)));
      figures.sign!.push(each(2000, () => sign("sha256", data, { key: privateKey, dsaEncoding: "der" })));
      figures.verify!.push(each(2000, () => verify("sha256", data, { key: publicKey, dsaEncoding: "der" }, signature)));
      figures.certificate!.push(await run(work));
      console.log(`issue-micro: run ${r + 1}: ${Object.entries(figures).map(([k, v]) => `${k} ${v.at(-1)!.toFixed(1)}`).join(", ")} us`);
    }
    console.log(
      `issue-micro: medians (us, concurrency ${CONCURRENCY}): ${Object.entries(figures).map(([k, v]) => `${k} ${median(v).toFixed(1)}`).join(", ")}`,
    );
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
