/**
 * The issuer's metrics (docs/issuer.md, "Metrics"), served by `--metrics` in the Prometheus text exposition
 * format 0.0.4. Recording is a Map increment on the request path; the text is built only when scraped.
 *
 * The state is read as a MetricsSnapshot, plain JSON, so that several issuer processes can each send theirs
 * to one endpoint: mergeSnapshots() adds them up (counters, histogram buckets, in-flight and its bound are
 * sums; per-process gauges carry a `worker` label and stay apart) and prometheusText() writes any snapshot.
 *
 * Label values are bounded: routes are four words, outcomes the catalogue's refusal reasons and error codes
 * (packages/shared/src/errors.ts), certificate sources two words, and ACME CAs the hosts of the
 * --acme-directory URLs. Nothing a request carries becomes a label.
 *
 * Hand-written rather than prom-client: a snapshot that merges across processes is what is needed, and the
 * format is a few lines of text.
 */
import { isStoreUnavailable } from "@boxcert/store";
import { monitorEventLoopDelay, performance, type IntervalHistogram } from "node:perf_hooks";
import { CERTIFICATE_PATH, DATABASE_PATH, ENROLL_PATH, type IssuerErrorCode, type RefusalReason } from "@boxcert/shared";

export const ROUTES = ["enroll", "certificate", "database", "other"] as const;
export type Route = (typeof ROUTES)[number];

/** How a request ended, as counted: ok, a refusal with its reason, or an error with its code. */
export type RequestOutcome = { kind: "ok" } | { kind: "refused"; reason: RefusalReason } | { kind: "error"; code: IssuerErrorCode };

export type CertificateSourceKind = "embedded" | "acme";
export const ACME_ORDER_OUTCOMES = ["valid", "ca_refused", "ca_unavailable", "rate_limited"] as const;
export type AcmeOrderOutcome = (typeof ACME_ORDER_OUTCOMES)[number];

/** Request latency buckets, in seconds: 1 ms (a busy answer) to 10 s (an ACME order). */
export const LATENCY_BUCKETS_S = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10] as const;

export type Labels = Record<string, string>;

export interface SampleSnapshot {
  labels: Labels;
  value: number;
}

export interface HistogramSampleSnapshot {
  labels: Labels;
  /** Observations per bucket, not cumulative: counts[i] fell in (bounds[i-1], bounds[i]]; the last is above every bound (+Inf). */
  counts: number[];
  sum: number;
}

export type FamilySnapshot =
  | { type: "counter" | "gauge"; name: string; help: string; samples: SampleSnapshot[] }
  | { type: "histogram"; name: string; help: string; bounds: number[]; samples: HistogramSampleSnapshot[] };

/** Plain JSON: what one process counted (or, merged, several). */
export interface MetricsSnapshot {
  families: FamilySnapshot[];
}

/** What app.ts, the ACME source and the store's connection hook record; IssuerMetrics is the one implementation. */
export interface IssuerMetricsRecorder {
  recordRequest(route: Route, outcome: RequestOutcome, seconds: number): void;
  recordCertificate(source: CertificateSourceKind, reused: boolean): void;
  recordAcmeOrder(ca: string, outcome: AcmeOrderOutcome): void;
  recordStoreError(): void;
  recordStoreConnectionLost(): void;
  /** The in-flight count is read when scraped (app.ts keeps it), with the bound it is held to. */
  observeInFlight(read: () => number, bound: number): void;
}

const ROUTE_BY_PATH = new Map<string, Route>([
  [ENROLL_PATH, "enroll"],
  [CERTIFICATE_PATH, "certificate"],
  [DATABASE_PATH, "database"],
]);

/** The route label of a request's matched route pattern (undefined: no route matched). */
export function routeOf(pattern: string | undefined): Route {
  return (pattern !== undefined && ROUTE_BY_PATH.get(pattern)) || "other";
}

/** A Map key for a label set: values are from fixed lists, so a separator that none of them holds is enough. */
function key(...values: string[]): string {
  return values.join("\u0000");
}

function bump(map: Map<string, number>, k: string, by = 1): void {
  map.set(k, (map.get(k) ?? 0) + by);
}

export class IssuerMetrics implements IssuerMetricsRecorder {
  private readonly requests = new Map<string, number>();
  private readonly latency = new Map<Route, { counts: number[]; sum: number }>();
  private readonly certificates = new Map<string, number>();
  private readonly acmeOrders = new Map<string, number>();
  private storeErrors = 0;
  private storeConnectionsLost = 0;
  private readInFlight: () => number = () => 0;
  private inFlightBound = 0;
  private readonly loopDelay: IntervalHistogram;
  /** The `worker` label of this process's own gauges (a cluster worker's id; "0" alone). */
  readonly worker: string;

  constructor(options: { worker?: string } = {}) {
    this.worker = options.worker ?? "0";
    this.loopDelay = monitorEventLoopDelay({ resolution: 10 });
    this.loopDelay.enable();
  }

  recordRequest(route: Route, outcome: RequestOutcome, seconds: number): void {
    bump(this.requests, outcome.kind === "ok" ? key(route, "ok", "") : key(route, outcome.kind, outcome.kind === "refused" ? outcome.reason : outcome.code));
    let histogram = this.latency.get(route);
    if (!histogram) {
      histogram = { counts: new Array<number>(LATENCY_BUCKETS_S.length + 1).fill(0), sum: 0 };
      this.latency.set(route, histogram);
    }
    let i = 0;
    while (i < LATENCY_BUCKETS_S.length && seconds > LATENCY_BUCKETS_S[i]!) i++;
    histogram.counts[i]!++;
    histogram.sum += seconds;
  }

  recordCertificate(source: CertificateSourceKind, reused: boolean): void {
    bump(this.certificates, key(source, String(reused)));
  }

  recordAcmeOrder(ca: string, outcome: AcmeOrderOutcome): void {
    bump(this.acmeOrders, key(ca, outcome));
  }

  recordStoreError(): void {
    this.storeErrors++;
  }

  recordStoreConnectionLost(): void {
    this.storeConnectionsLost++;
  }

  observeInFlight(read: () => number, bound: number): void {
    this.readInFlight = read;
    this.inFlightBound = bound;
  }

  /** Stops the event-loop monitor (its timer is unref'd, but a closed issuer keeps nothing running). */
  close(): void {
    this.loopDelay.disable();
  }

  /**
   * Everything counted so far, and the process's gauges now. The event loop's delay is over the time since
   * the previous snapshot (the monitor is reset), so each scrape sees its own interval.
   */
  snapshot(): MetricsSnapshot {
    const worker = { worker: this.worker };
    const loopP99 = this.loopDelay.count > 0 ? this.loopDelay.percentile(99) / 1e9 : 0;
    const loopMean = this.loopDelay.count > 0 ? this.loopDelay.mean / 1e9 : 0;
    this.loopDelay.reset();
    return {
      families: [
        {
          type: "counter",
          name: "boxcert_issuer_requests_total",
          help: "Requests answered, by route (enroll, certificate, database, other) and outcome: ok, refused (reason: the refusal reason) or error (code: the error code; busy is the --max-in-flight answer).",
          samples: [...this.requests].map(([k, value]) => {
            const [route, outcome, detail] = k.split("\u0000") as [string, string, string];
            const labels: Labels = { route, outcome };
            if (outcome === "refused") labels["reason"] = detail;
            if (outcome === "error") labels["code"] = detail;
            return { labels, value };
          }),
        },
        {
          type: "histogram",
          name: "boxcert_issuer_request_duration_seconds",
          help: "Time from a request's first byte to its answer, by route.",
          bounds: [...LATENCY_BUCKETS_S],
          samples: [...this.latency].map(([route, h]) => ({ labels: { route }, counts: [...h.counts], sum: h.sum })),
        },
        {
          type: "gauge",
          name: "boxcert_issuer_requests_in_flight",
          help: "POST requests being read, checked, signed or stored now (summed over worker processes).",
          samples: [{ labels: {}, value: this.readInFlight() }],
        },
        {
          type: "gauge",
          name: "boxcert_issuer_requests_in_flight_max",
          help: "The bound on requests in flight (--max-in-flight, summed over worker processes); beyond it requests are answered busy.",
          samples: [{ labels: {}, value: this.inFlightBound }],
        },
        {
          type: "counter",
          name: "boxcert_issuer_certificates_total",
          help: "Certificates handed to boxes, by source (embedded, acme) and whether the box's current one was reused (reused=\"true\") or a new one issued.",
          samples: [...this.certificates].map(([k, value]) => {
            const [source, reused] = k.split("\u0000") as [string, string];
            return { labels: { source, reused }, value };
          }),
        },
        {
          type: "counter",
          name: "boxcert_issuer_acme_orders_total",
          help: "ACME orders that ended, by CA (its directory's host) and outcome: valid, ca_refused, ca_unavailable, rate_limited.",
          samples: [...this.acmeOrders].map(([k, value]) => {
            const [ca, outcome] = k.split("\u0000") as [string, string];
            return { labels: { ca, outcome }, value };
          }),
        },
        {
          type: "counter",
          name: "boxcert_issuer_store_errors_total",
          help: "Requests that failed on the store (a broken connection, a locked or full database).",
          samples: [{ labels: {}, value: this.storeErrors }],
        },
        {
          type: "counter",
          name: "boxcert_issuer_store_connections_lost_total",
          help: "Store connections that broke (store_connection_lost in the log); the next request opens another.",
          samples: [{ labels: {}, value: this.storeConnectionsLost }],
        },
        {
          type: "gauge",
          name: "boxcert_issuer_resident_memory_bytes",
          help: "Resident memory of the issuer process, by worker.",
          samples: [{ labels: worker, value: process.memoryUsage.rss() }],
        },
        {
          type: "gauge",
          name: "boxcert_issuer_event_loop_lag_p99_seconds",
          help: "99th percentile of the event loop's delay since the previous scrape, by worker.",
          samples: [{ labels: worker, value: loopP99 }],
        },
        {
          type: "gauge",
          name: "boxcert_issuer_event_loop_lag_mean_seconds",
          help: "Mean of the event loop's delay since the previous scrape, by worker.",
          samples: [{ labels: worker, value: loopMean }],
        },
        {
          type: "gauge",
          name: "boxcert_issuer_process_start_time_seconds",
          help: "When the issuer process started, in seconds since the Unix epoch, by worker.",
          samples: [{ labels: worker, value: Math.floor(performance.timeOrigin / 1000) }],
        },
      ],
    };
  }
}

function labelsKey(labels: Labels): string {
  return JSON.stringify(Object.keys(labels).sort().map((name) => [name, labels[name]]));
}

/**
 * Several processes' snapshots as one: samples with the same name and labels are added (counters, histogram
 * buckets and sums, in-flight and its bound); per-process gauges differ by their `worker` label and so stay
 * apart. Pure: the inputs are not changed. Histograms of one name must have the same bounds.
 */
export function mergeSnapshots(snapshots: readonly MetricsSnapshot[]): MetricsSnapshot {
  const families = new Map<string, FamilySnapshot>();
  for (const snapshot of snapshots) {
    for (const family of snapshot.families) {
      const merged = families.get(family.name);
      if (!merged) {
        families.set(family.name, structuredClone(family));
        continue;
      }
      if (merged.type !== family.type) throw new Error(`merging metrics: ${family.name} is a ${merged.type} in one snapshot and a ${family.type} in another`);
      if (merged.type === "histogram" && family.type === "histogram") {
        if (merged.bounds.join() !== family.bounds.join()) throw new Error(`merging metrics: ${family.name} has different buckets in two snapshots`);
        for (const sample of family.samples) {
          const k = labelsKey(sample.labels);
          const into = merged.samples.find((s) => labelsKey(s.labels) === k);
          if (!into) merged.samples.push(structuredClone(sample));
          else {
            into.counts = into.counts.map((n, i) => n + (sample.counts[i] ?? 0));
            into.sum += sample.sum;
          }
        }
      } else if (merged.type !== "histogram" && family.type !== "histogram") {
        for (const sample of family.samples) {
          const k = labelsKey(sample.labels);
          const into = merged.samples.find((s) => labelsKey(s.labels) === k);
          if (!into) merged.samples.push({ labels: { ...sample.labels }, value: sample.value });
          else into.value += sample.value;
        }
      }
    }
  }
  return { families: [...families.values()] };
}

/** A label value as the exposition format quotes it: backslash, double quote and newline escaped. */
export function escapeLabelValue(value: string): string {
  return value.replace(/[\\"\n]/g, (c) => (c === "\n" ? "\\n" : `\\${c}`));
}

function escapeHelp(text: string): string {
  return text.replace(/[\\\n]/g, (c) => (c === "\n" ? "\\n" : "\\\\"));
}

function formatLabels(labels: Labels, extra?: [string, string]): string {
  const pairs = Object.entries(labels).map(([name, value]) => `${name}="${escapeLabelValue(value)}"`);
  if (extra) pairs.push(`${extra[0]}="${escapeLabelValue(extra[1])}"`);
  return pairs.length > 0 ? `{${pairs.join(",")}}` : "";
}

function formatNumber(value: number): string {
  if (Number.isNaN(value)) return "NaN";
  if (value === Infinity) return "+Inf";
  if (value === -Infinity) return "-Inf";
  return String(value);
}

/** A snapshot in the Prometheus text exposition format 0.0.4: HELP and TYPE before each family's samples. */
export function prometheusText(snapshot: MetricsSnapshot): string {
  const lines: string[] = [];
  for (const family of snapshot.families) {
    lines.push(`# HELP ${family.name} ${escapeHelp(family.help)}`, `# TYPE ${family.name} ${family.type}`);
    if (family.type === "histogram") {
      for (const sample of family.samples) {
        let cumulative = 0;
        family.bounds.forEach((bound, i) => {
          cumulative += sample.counts[i] ?? 0;
          lines.push(`${family.name}_bucket${formatLabels(sample.labels, ["le", String(bound)])} ${cumulative}`);
        });
        cumulative += sample.counts[family.bounds.length] ?? 0;
        lines.push(`${family.name}_bucket${formatLabels(sample.labels, ["le", "+Inf"])} ${cumulative}`);
        lines.push(`${family.name}_sum${formatLabels(sample.labels)} ${formatNumber(sample.sum)}`);
        lines.push(`${family.name}_count${formatLabels(sample.labels)} ${cumulative}`);
      }
    } else {
      for (const sample of family.samples) lines.push(`${family.name}${formatLabels(sample.labels)} ${formatNumber(sample.value)}`);
    }
  }
  return `${lines.join("\n")}\n`;
}

/** Whether an error a request failed on came from the store (SQLite, PostgreSQL, or the connection to it). */
export function isStoreFailure(err: unknown): boolean {
  if (isStoreUnavailable(err)) return true;
  for (let e = err, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    const { name, code, severity } = e as Error & { code?: unknown; severity?: unknown };
    if (name === "SqliteError" || name === "LockTimeoutError") return true;
    // pg's DatabaseError carries the server's severity and SQLSTATE (a constraint, a syntax error, ...).
    if (typeof severity === "string" && typeof code === "string") return true;
  }
  return false;
}
