/**
 * A small checker of the Prometheus text exposition format 0.0.4, strict where the issuer and dns could go
 * wrong: every sample belongs to a family declared by `# TYPE` before it, names and label names are valid,
 * label values are quoted and escaped, values are numbers, no series appears twice, and each histogram's
 * buckets are cumulative, in order, and end at +Inf equal to `_count`, with a `_sum`.
 * Throws an Error naming the line; returns the families and samples read.
 */
import assert from "node:assert/strict";

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Exposition {
  /** Family name to its TYPE (counter, gauge, histogram, summary, untyped). */
  types: Map<string, string>;
  samples: Sample[];
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const TYPES = new Set(["counter", "gauge", "histogram", "summary", "untyped"]);

function parseValue(text: string, line: string): number {
  if (text === "+Inf") return Infinity;
  if (text === "-Inf") return -Infinity;
  if (text === "NaN") return NaN;
  assert.match(text, /^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/, `not a number in: ${line}`);
  return Number(text);
}

/** `{a="x",b="y\"z"}` from position 0 of `text`; returns the labels and where they end. */
function parseLabels(text: string, line: string): { labels: Record<string, string>; end: number } {
  const labels: Record<string, string> = {};
  let i = 1;
  while (text[i] !== "}") {
    const eq = text.indexOf("=", i);
    assert.ok(eq > i, `a label without '=' in: ${line}`);
    const name = text.slice(i, eq);
    assert.match(name, LABEL_NAME, `bad label name ${JSON.stringify(name)} in: ${line}`);
    assert.ok(!Object.hasOwn(labels, name), `label ${name} twice in: ${line}`);
    assert.equal(text[eq + 1], '"', `unquoted label value in: ${line}`);
    let value = "";
    let j = eq + 2;
    for (;;) {
      const c = text[j];
      assert.ok(c !== undefined, `unterminated label value in: ${line}`);
      if (c === '"') break;
      if (c === "\\") {
        const next = text[j + 1];
        assert.ok(next === "\\" || next === '"' || next === "n", `bad escape \\${next} in: ${line}`);
        value += next === "n" ? "\n" : next;
        j += 2;
      } else {
        assert.notEqual(c, "\n");
        value += c;
        j++;
      }
    }
    labels[name] = value;
    i = j + 1;
    if (text[i] === ",") i++;
    else assert.equal(text[i], "}", `expected ',' or '}' in: ${line}`);
  }
  return { labels, end: i + 1 };
}

function seriesKey(name: string, labels: Record<string, string>): string {
  return `${name}${JSON.stringify(Object.entries(labels).sort(([a], [b]) => a.localeCompare(b)))}`;
}

function familyOf(name: string, types: Map<string, string>): string | undefined {
  if (types.has(name)) return name;
  for (const suffix of ["_bucket", "_sum", "_count"]) {
    if (name.endsWith(suffix)) {
      const base = name.slice(0, -suffix.length);
      if (types.get(base) === "histogram" || (suffix !== "_bucket" && types.get(base) === "summary")) return base;
    }
  }
  return undefined;
}

export function checkExposition(text: string): Exposition {
  assert.ok(text.endsWith("\n"), "the text ends with a newline");
  const types = new Map<string, string>();
  const samples: Sample[] = [];
  const seen = new Set<string>();
  for (const line of text.slice(0, -1).split("\n")) {
    if (line === "") continue;
    if (line.startsWith("#")) {
      const m = /^# (HELP|TYPE) (\S+) ?(.*)$/.exec(line);
      if (!m) continue; // a comment
      const [, kind, name, rest] = m as unknown as [string, string, string, string];
      assert.match(name, METRIC_NAME, `bad metric name in: ${line}`);
      if (kind === "TYPE") {
        assert.ok(TYPES.has(rest), `unknown type in: ${line}`);
        assert.ok(!types.has(name), `a second TYPE for ${name}`);
        assert.ok(!samples.some((s) => familyOf(s.name, new Map([[name, rest]])) === name), `TYPE ${name} after its samples`);
        types.set(name, rest);
      }
      continue;
    }
    const nameMatch = /^[^{ ]+/.exec(line);
    assert.ok(nameMatch, `no metric name in: ${line}`);
    const name = nameMatch[0];
    assert.match(name, METRIC_NAME, `bad metric name in: ${line}`);
    let rest = line.slice(name.length);
    let labels: Record<string, string> = {};
    if (rest.startsWith("{")) {
      const parsed = parseLabels(rest, line);
      labels = parsed.labels;
      rest = rest.slice(parsed.end);
    }
    const fields = rest.trim().split(/\s+/);
    assert.ok(rest.startsWith(" ") && fields.length >= 1 && fields.length <= 2, `expected ' value [timestamp]' in: ${line}`);
    const value = parseValue(fields[0]!, line);
    assert.ok(familyOf(name, types), `sample without a # TYPE before it: ${line}`);
    const key = seriesKey(name, labels);
    assert.ok(!seen.has(key), `a series twice: ${line}`);
    seen.add(key);
    samples.push({ name, labels, value });
  }
  for (const [family, type] of types) {
    if (type !== "histogram") continue;
    const groups = new Map<string, { buckets: Array<{ le: number; value: number }>; count?: number; sum?: number }>();
    const groupOf = (labels: Record<string, string>) => {
      const { le: _le, ...rest } = labels;
      const k = seriesKey(family, rest);
      let g = groups.get(k);
      if (!g) groups.set(k, (g = { buckets: [] }));
      return g;
    };
    for (const s of samples) {
      if (s.name === `${family}_bucket`) {
        assert.ok(s.labels["le"] !== undefined, `${family}_bucket without le`);
        groupOf(s.labels).buckets.push({ le: parseValue(s.labels["le"]!, `le of ${family}`), value: s.value });
      } else if (s.name === `${family}_count`) groupOf(s.labels).count = s.value;
      else if (s.name === `${family}_sum`) groupOf(s.labels).sum = s.value;
    }
    for (const [k, g] of groups) {
      assert.ok(g.buckets.length > 0, `${k}: no buckets`);
      for (let i = 1; i < g.buckets.length; i++) {
        assert.ok(g.buckets[i]!.le > g.buckets[i - 1]!.le, `${k}: buckets not in increasing le`);
        assert.ok(g.buckets[i]!.value >= g.buckets[i - 1]!.value, `${k}: buckets not cumulative at le=${g.buckets[i]!.le}`);
      }
      const last = g.buckets.at(-1)!;
      assert.equal(last.le, Infinity, `${k}: the last bucket is not +Inf`);
      assert.equal(last.value, g.count, `${k}: +Inf bucket differs from _count`);
      assert.ok(g.sum !== undefined && Number.isFinite(g.sum), `${k}: no _sum`);
    }
  }
  return { types, samples };
}

/** The value of one series, or undefined; `labels` must match the series' labels exactly. */
export function valueOf(exposition: Exposition, name: string, labels: Record<string, string> = {}): number | undefined {
  const key = seriesKey(name, labels);
  return exposition.samples.find((s) => seriesKey(s.name, s.labels) === key)?.value;
}

/** Every sample name a scrape can show: families, and a histogram's _bucket, _sum, _count. */
export function metricNames(exposition: Exposition): Set<string> {
  const names = new Set<string>();
  for (const [name, type] of exposition.types) {
    if (type === "histogram") for (const suffix of ["_bucket", "_sum", "_count"]) names.add(name + suffix);
    else if (type === "summary") for (const suffix of ["", "_sum", "_count"]) names.add(name + suffix);
    else names.add(name);
  }
  return names;
}
