/** `npm run bench -- NAME`: runs one benchmark; each ends with one `result: bench=NAME key=value ...` line (CONTRIBUTING.md, "Benchmarks"). */
import { benchIssue } from "./issue.ts";

const BENCHES: Record<string, () => Promise<void>> = {
  issue: benchIssue,
  dns: async () => (await import("./dns.ts")).benchDns(),
  acme: async () => (await import("./acme.ts")).benchAcme(),
  pos: async () => (await import("./pos.ts")).benchPos(),
  box: async () => (await import("./box.ts")).benchBox(),
  storm: async () => (await import("./storm.ts")).benchStorm(),
};

const name = process.argv[2];
const bench = name ? BENCHES[name] : undefined;
if (!bench) {
  console.error(`usage: npm run bench -- NAME   (NAME: ${Object.keys(BENCHES).join(", ")})`);
  process.exit(2);
}
bench().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(`bench ${name}: ${(err as Error).stack ?? err}`);
    process.exit(1);
  },
);
