/**
 * The issuer's metrics: snapshots, their merge across processes and the exposition text (pure), then
 * `boxcert issuer --metrics` as a real process: an enrollment, a refusal, bad JSON, a busy answer and
 * certificates move exactly the counters they should, and the scrape is valid exposition text.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { randomUUID } from "node:crypto";
import { CERTIFICATE_PATH, ENROLL_PATH } from "@boxcert/shared";
import { IssuerMetrics, LATENCY_BUCKETS_S, mergeSnapshots, prometheusText, type MetricsSnapshot } from "../src/index.ts";
import { checkExposition, valueOf, type Exposition } from "./helpers/exposition.ts";
import { freePort, portOpen, tempDir, waitFor } from "../../../test/support/processes.ts";
import { customer, startIssuerProcess, type Issuer } from "../../../test/support/system.ts";
import { enroll, makeCsr, makeTlsKey, post, requestCertificate, scriptedBox } from "../../../test/support/box-client.ts";

const REQUESTS = "boxcert_issuer_requests_total";
const DURATION = "boxcert_issuer_request_duration_seconds";

test("histogram: buckets cumulative, +Inf and _count equal, _sum the observations' sum", () => {
  const metrics = new IssuerMetrics();
  try {
    for (const seconds of [0.0005, 0.001, 0.003, 0.2, 20]) metrics.recordRequest("certificate", { kind: "ok" }, seconds);
    metrics.recordRequest("enroll", { kind: "refused", reason: "no_free_seat" }, 0.004);
    const text = prometheusText(metrics.snapshot());
    const scrape = checkExposition(text);
    const bucket = (le: string) => valueOf(scrape, `${DURATION}_bucket`, { route: "certificate", le });
    assert.equal(bucket("0.001"), 2, "le is inclusive: 0.001 falls in the 0.001 bucket");
    assert.equal(bucket("0.0025"), 2);
    assert.equal(bucket("0.005"), 3);
    assert.equal(bucket("0.25"), 4);
    assert.equal(bucket("10"), 4);
    assert.equal(bucket("+Inf"), 5);
    assert.equal(valueOf(scrape, `${DURATION}_count`, { route: "certificate" }), 5);
    assert.ok(Math.abs(valueOf(scrape, `${DURATION}_sum`, { route: "certificate" })! - 20.2045) < 1e-9);
    assert.equal(scrape.samples.filter((s) => s.name === `${DURATION}_bucket` && s.labels["route"] === "certificate").length, LATENCY_BUCKETS_S.length + 1);
    assert.equal(valueOf(scrape, REQUESTS, { route: "certificate", outcome: "ok" }), 5);
    assert.equal(valueOf(scrape, REQUESTS, { route: "enroll", outcome: "refused", reason: "no_free_seat" }), 1);
    assert.equal(valueOf(scrape, `${DURATION}_count`, { route: "enroll" }), 1);
    assert.equal(scrape.types.get(DURATION), "histogram");
    assert.equal(scrape.types.get(REQUESTS), "counter");
  } finally {
    metrics.close();
  }
});

test("merge: counters, histograms and in-flight are summed; per-process gauges stay apart by worker; inputs unchanged", () => {
  const a = new IssuerMetrics({ worker: "1" });
  const b = new IssuerMetrics({ worker: "2" });
  try {
    a.recordRequest("enroll", { kind: "ok" }, 0.002);
    a.recordRequest("certificate", { kind: "error", code: "busy" }, 0.0001);
    b.recordRequest("enroll", { kind: "ok" }, 3);
    b.recordRequest("enroll", { kind: "ok" }, 0.002);
    b.recordRequest("certificate", { kind: "error", code: "bad_json" }, 0.001);
    a.recordCertificate("acme", false);
    b.recordCertificate("acme", false);
    b.recordAcmeOrder("acme-v02.api.letsencrypt.org", "valid");
    a.recordStoreError();
    b.recordStoreConnectionLost();
    a.observeInFlight(() => 3, 256);
    b.observeInFlight(() => 4, 256);
    const snapshots = [a.snapshot(), b.snapshot()];
    const before = JSON.stringify(snapshots);
    const merged = mergeSnapshots(JSON.parse(JSON.stringify(snapshots)) as MetricsSnapshot[]);
    assert.equal(JSON.stringify(snapshots), before);
    const scrape = checkExposition(prometheusText(merged));
    assert.equal(valueOf(scrape, REQUESTS, { route: "enroll", outcome: "ok" }), 3);
    assert.equal(valueOf(scrape, REQUESTS, { route: "certificate", outcome: "error", code: "busy" }), 1);
    assert.equal(valueOf(scrape, REQUESTS, { route: "certificate", outcome: "error", code: "bad_json" }), 1);
    assert.equal(valueOf(scrape, `${DURATION}_count`, { route: "enroll" }), 3);
    assert.equal(valueOf(scrape, `${DURATION}_bucket`, { route: "enroll", le: "0.0025" }), 2);
    assert.equal(valueOf(scrape, `${DURATION}_bucket`, { route: "enroll", le: "5" }), 3);
    assert.ok(Math.abs(valueOf(scrape, `${DURATION}_sum`, { route: "enroll" })! - 3.004) < 1e-9);
    assert.equal(valueOf(scrape, "boxcert_issuer_requests_in_flight"), 7);
    assert.equal(valueOf(scrape, "boxcert_issuer_requests_in_flight_max"), 512);
    assert.equal(valueOf(scrape, "boxcert_issuer_certificates_total", { source: "acme", reused: "false" }), 2);
    assert.equal(valueOf(scrape, "boxcert_issuer_acme_orders_total", { ca: "acme-v02.api.letsencrypt.org", outcome: "valid" }), 1);
    assert.equal(valueOf(scrape, "boxcert_issuer_store_errors_total"), 1);
    assert.equal(valueOf(scrape, "boxcert_issuer_store_connections_lost_total"), 1);
    const rss = scrape.samples.filter((s) => s.name === "boxcert_issuer_resident_memory_bytes");
    assert.deepEqual(rss.map((s) => s.labels["worker"]).sort(), ["1", "2"]);
    assert.ok(rss.every((s) => s.value > 0));
    assert.equal(scrape.samples.filter((s) => s.name === "boxcert_issuer_process_start_time_seconds").length, 2);
    // Merging is associative with the empty list as identity.
    assert.deepEqual(mergeSnapshots([merged]), merged);
    assert.deepEqual(mergeSnapshots([]), { families: [] });
  } finally {
    a.close();
    b.close();
  }
});

test("merge refuses histograms with different buckets, and families of different types", () => {
  const h = (bounds: number[]): MetricsSnapshot => ({ families: [{ type: "histogram", name: "x_seconds", help: "x", bounds, samples: [] }] });
  assert.throws(() => mergeSnapshots([h([1, 2]), h([1, 3])]), /different buckets/);
  const c: MetricsSnapshot = { families: [{ type: "counter", name: "x_seconds", help: "x", samples: [] }] };
  assert.throws(() => mergeSnapshots([h([1]), c]), /is a histogram in one snapshot and a counter/);
});

test("label values and help text are escaped", () => {
  const value = 'a"b\\c\nd';
  const text = prometheusText({
    families: [{ type: "gauge", name: "boxcert_test_value", help: "a \\ help\nline", samples: [{ labels: { odd: value }, value: 1.5 }] }],
  });
  assert.ok(text.includes('boxcert_test_value{odd="a\\"b\\\\c\\nd"} 1.5\n'), text);
  assert.ok(text.includes("# HELP boxcert_test_value a \\\\ help\\nline\n"), text);
  const scrape = checkExposition(text);
  assert.equal(scrape.samples[0]!.labels["odd"], value, "the checker reads back what was escaped");
});

test("the checker fails bad exposition text", () => {
  assert.throws(() => checkExposition("x_total 1\n"), /without a # TYPE/);
  assert.throws(() => checkExposition("# TYPE 1x counter\n1x 1\n"), /bad metric name/);
  assert.throws(() => checkExposition('# TYPE h histogram\nh_bucket{le="1"} 2\nh_bucket{le="+Inf"} 1\nh_sum 1\nh_count 1\n'), /not cumulative/);
  assert.throws(() => checkExposition('# TYPE h histogram\nh_bucket{le="1"} 1\nh_bucket{le="+Inf"} 2\nh_sum 1\nh_count 3\n'), /differs from _count/);
});

// --- A real `boxcert issuer --metrics` process -------------------------------------------------------

let dir: string;
let issuer: Issuer;
let metricsUrl: string;
const held: Socket[] = [];

before(async () => {
  dir = tempDir("boxcert-metrics-");
  const metricsPort = await freePort();
  metricsUrl = `http://127.0.0.1:${metricsPort}/metrics`;
  issuer = await startIssuerProcess({ dir, extra: ["--metrics", `127.0.0.1:${metricsPort}`, "--max-in-flight", "1"] });
  await waitFor("the metrics port", () => portOpen(metricsPort));
});

after(async () => {
  for (const socket of held) socket.destroy();
  await issuer?.proc.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function scrape(): Promise<Exposition> {
  const res = await fetch(metricsUrl);
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("content-type"), "text/plain; version=0.0.4; charset=utf-8");
  return checkExposition(await res.text());
}

function total(exposition: Exposition): number {
  return exposition.samples.filter((s) => s.name === REQUESTS).reduce((sum, s) => sum + s.value, 0);
}

/** A certificate request whose body is not finished: in flight until the rest is written. */
async function holdInFlight(body: string): Promise<{ socket: Socket; finish(): Promise<number> }> {
  const socket = connect(new URL(issuer.url).port ? Number(new URL(issuer.url).port) : 80, "127.0.0.1");
  await new Promise<void>((resolve, reject) => socket.once("connect", resolve).once("error", reject));
  held.push(socket);
  const cut = Math.floor(body.length / 2);
  socket.write(`POST ${CERTIFICATE_PATH} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body.slice(0, cut)}`);
  let answer = "";
  socket.on("data", (d: Buffer) => (answer += d.toString()));
  return {
    socket,
    async finish() {
      socket.write(body.slice(cut));
      const head = await waitFor("the held request's answer", async () => (answer.includes("\r\n") ? answer : null), 10_000, 20);
      return Number(/^HTTP\/1\.1 (\d{3})/.exec(head)![1]);
    },
  };
}

test("boxcert issuer --metrics: ok, refused, bad JSON, busy and certificates counted exactly; valid exposition", async () => {
  const start = await scrape();
  assert.equal(total(start), 0, "no request answered yet");
  assert.equal(valueOf(start, "boxcert_issuer_requests_in_flight"), 0);
  assert.equal(valueOf(start, "boxcert_issuer_requests_in_flight_max"), 1);
  assert.equal(valueOf(start, "boxcert_issuer_store_errors_total"), 0);
  assert.equal(valueOf(start, "boxcert_issuer_store_connections_lost_total"), 0);
  assert.ok(valueOf(start, "boxcert_issuer_resident_memory_bytes", { worker: "0" })! > 10e6, "RSS in bytes");
  const started = valueOf(start, "boxcert_issuer_process_start_time_seconds", { worker: "0" })!;
  assert.ok(started <= Date.now() / 1000 && started > Date.now() / 1000 - 600, "started in the last minutes");
  assert.ok(valueOf(start, "boxcert_issuer_event_loop_lag_p99_seconds", { worker: "0" })! >= 0);

  const uuid = await customer(issuer.store, "METRICS-1", "in_progress", 5);
  const box = scriptedBox(uuid, "METRICS-1");
  const enrolled = await enroll(issuer.url, box);
  assert.equal(enrolled.status, 200, JSON.stringify(enrolled.json));
  const refusal = await enroll(issuer.url, scriptedBox(randomUUID(), "METRICS-1"));
  assert.equal(refusal.status, 403);
  assert.equal((refusal.json as { refusal: { reason: string } }).refusal.reason, "unknown_database");
  const badJson = await post(issuer.url + ENROLL_PATH, "{not json");
  assert.equal(badJson.status, 400);

  const { label, names } = enrolled.json as unknown as { label: string; names: string[] };
  const key = await makeTlsKey();
  const csr = await makeCsr(key, names);
  assert.equal((await requestCertificate(issuer.url, box, label, csr)).status, 200);
  assert.equal((await requestCertificate(issuer.url, box, label, csr)).status, 200, "the same key again: reused");

  // --max-in-flight 1: one request held in flight makes the next one busy.
  const slow = await holdInFlight(JSON.stringify({ dbUuid: 1 }));
  await waitFor("the held request counted in flight", async () => valueOf(await scrape(), "boxcert_issuer_requests_in_flight") === 1, 10_000, 20);
  const busy = await post(issuer.url + CERTIFICATE_PATH, "{}");
  assert.equal(busy.status, 503);
  assert.equal((busy.json as { error: { code: string } }).error.code, "busy");
  assert.equal(await slow.finish(), 400, "the held request, finished, is a bad request (dbUuid is a number)");

  const end = await waitFor("every answer counted and nothing in flight", async () => {
    const s = await scrape();
    return total(s) === 7 && valueOf(s, "boxcert_issuer_requests_in_flight") === 0 ? s : null;
  }, 10_000, 20);
  const requests = (labels: Record<string, string>) => valueOf(end, REQUESTS, labels);
  assert.equal(requests({ route: "enroll", outcome: "ok" }), 1);
  assert.equal(requests({ route: "enroll", outcome: "refused", reason: "unknown_database" }), 1);
  assert.equal(requests({ route: "enroll", outcome: "error", code: "bad_json" }), 1);
  assert.equal(requests({ route: "certificate", outcome: "ok" }), 2);
  assert.equal(requests({ route: "certificate", outcome: "error", code: "busy" }), 1);
  assert.equal(requests({ route: "certificate", outcome: "error", code: "bad_request" }), 1);
  assert.equal(valueOf(end, `${DURATION}_count`, { route: "enroll" }), 3);
  assert.equal(valueOf(end, `${DURATION}_count`, { route: "certificate" }), 4);
  assert.equal(valueOf(end, `${DURATION}_bucket`, { route: "certificate", le: "+Inf" }), 4);
  assert.ok(valueOf(end, `${DURATION}_sum`, { route: "certificate" })! > 0);
  assert.equal(valueOf(end, "boxcert_issuer_certificates_total", { source: "embedded", reused: "false" }), 1);
  assert.equal(valueOf(end, "boxcert_issuer_certificates_total", { source: "embedded", reused: "true" }), 1);
  assert.equal(valueOf(end, "boxcert_issuer_store_errors_total"), 0);
  assert.ok(end.samples.every((s) => !JSON.stringify(s.labels).includes(label) && !JSON.stringify(s.labels).includes(uuid)), "no request value is a label");

  // The endpoint answers GET and HEAD /metrics only.
  assert.equal((await fetch(metricsUrl.replace("/metrics", "/other"))).status, 404);
  const head = await fetch(metricsUrl, { method: "HEAD" });
  assert.equal(head.status, 200);
  assert.equal(await head.text(), "");
});
