/**
 * docs/grafana-dashboard.json against what the programs export: every panel query names only metrics that a
 * real scrape of `boxcert issuer --metrics` or `boxcert dns --metrics` shows, every exported family has a
 * panel, and the file is importable (a `${DS_PROMETHEUS}` input, every query on it).
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { freePort, portOpen, ROOT, startBoxcert, tempDir, waitFor, type Proc } from "../../../test/support/processes.ts";
import { startIssuerProcess, ZONE, type Issuer } from "../../../test/support/system.ts";
import { checkExposition, metricNames, type Exposition } from "./helpers/exposition.ts";

interface Target {
  expr: string;
  datasource?: { uid?: string };
}
interface Panel {
  type: string;
  title: string;
  datasource?: { uid?: string };
  targets?: Target[];
  panels?: Panel[];
}

const dashboard = JSON.parse(readFileSync(join(ROOT, "docs/grafana-dashboard.json"), "utf8")) as {
  __inputs: Array<{ name: string; type: string; pluginId: string }>;
  schemaVersion: number;
  panels: Panel[];
};

let dir: string;
let issuer: Issuer;
let dns: Proc | undefined;
let issuerScrape: Exposition;
let dnsScrape: Exposition;

async function scrape(port: number): Promise<Exposition> {
  const res = await fetch(`http://127.0.0.1:${port}/metrics`);
  assert.equal(res.status, 200);
  return checkExposition(await res.text());
}

before(async () => {
  dir = tempDir("boxcert-dashboard-");
  const issuerMetrics = await freePort();
  issuer = await startIssuerProcess({ dir, extra: ["--metrics", `127.0.0.1:${issuerMetrics}`] });
  const dnsPort = await freePort();
  const dnsMetrics = await freePort();
  dns = await startBoxcert(["dns", "--zone", ZONE, "--listen", `127.0.0.1:${dnsPort}`, "--store", issuer.store, "--metrics", `127.0.0.1:${dnsMetrics}`], (out) => out.includes("dns listening"));
  await waitFor("the metrics ports", async () => (await portOpen(issuerMetrics)) && (await portOpen(dnsMetrics)));
  issuerScrape = await scrape(issuerMetrics);
  dnsScrape = await scrape(dnsMetrics);
});

after(async () => {
  await dns?.stop();
  await issuer?.proc.stop();
  rmSync(dir, { recursive: true, force: true });
});

function allPanels(panels: Panel[]): Panel[] {
  return panels.flatMap((p) => [p, ...allPanels(p.panels ?? [])]);
}

const KEYWORDS = new Set(["by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "offset", "bool", "inf", "nan"]);

/**
 * The metric names a PromQL expression reads: identifiers left once strings, label matchers, grouping
 * clauses and ranges are taken out, that are neither a function call nor a keyword.
 */
function metricsInExpr(expr: string): string[] {
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{[^}]*\}/g, " ")
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, " ")
    .replace(/\[[^\]]*\]/g, " ");
  const names: string[] = [];
  for (const m of stripped.matchAll(/[a-zA-Z_:][a-zA-Z0-9_:]*/g)) {
    const after = stripped.slice(m.index + m[0].length);
    if (/^\s*\(/.test(after) || KEYWORDS.has(m[0].toLowerCase())) continue;
    names.push(m[0]);
  }
  return names;
}

test("metricsInExpr finds the metrics, not functions, labels or keywords", () => {
  assert.deepEqual(
    metricsInExpr('histogram_quantile(0.99, sum by (le, route) (rate(a_bucket{route="x",code=~"y|z"}[$__rate_interval]))) / on(job) b_total and time() - c'),
    ["a_bucket", "b_total", "c"],
  );
});

test("the dashboard is importable: schemaVersion, a Prometheus datasource input, every query on it", () => {
  assert.ok(dashboard.schemaVersion >= 36, `schemaVersion ${dashboard.schemaVersion}`);
  assert.deepEqual(
    dashboard.__inputs.map(({ name, type, pluginId }) => ({ name, type, pluginId })),
    [{ name: "DS_PROMETHEUS", type: "datasource", pluginId: "prometheus" }],
  );
  const withQueries = allPanels(dashboard.panels).filter((p) => p.type !== "row");
  assert.ok(withQueries.length >= 12);
  for (const panel of withQueries) {
    assert.ok(panel.targets && panel.targets.length > 0, `${panel.title}: no query`);
    assert.equal(panel.datasource?.uid, "${DS_PROMETHEUS}", `${panel.title}: datasource`);
    for (const target of panel.targets) assert.equal(target.datasource?.uid, "${DS_PROMETHEUS}", `${panel.title}: a query's datasource`);
  }
});

test("every query names only metrics the issuer or dns export, and every exported metric has a panel", () => {
  const issuerNames = metricNames(issuerScrape);
  const dnsNames = metricNames(dnsScrape);
  assert.ok(issuerNames.has("boxcert_issuer_requests_total") && issuerNames.has("boxcert_issuer_request_duration_seconds_bucket"), [...issuerNames].join(" "));
  assert.ok(dnsNames.has("boxcert_dns_queries_total"), [...dnsNames].join(" "));
  const exported = new Set([...issuerNames, ...dnsNames]);
  const used = new Set<string>();
  for (const panel of allPanels(dashboard.panels)) {
    for (const { expr } of panel.targets ?? []) {
      const names = metricsInExpr(expr);
      assert.ok(names.length > 0, `${panel.title}: ${expr} names no metric`);
      for (const name of names) {
        assert.ok(exported.has(name), `${panel.title}: ${expr} names ${name}, which neither the issuer nor dns exports`);
        used.add(name);
      }
    }
  }
  for (const [family, type] of [...issuerScrape.types, ...dnsScrape.types]) {
    const names = type === "histogram" ? ["_bucket", "_sum", "_count"].map((s) => family + s) : [family];
    assert.ok(names.some((n) => used.has(n)), `${family} is exported but on no panel`);
  }
});
