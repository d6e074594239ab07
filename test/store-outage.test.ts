/**
 * PostgreSQL stopped for 10 s under load, then started (the issue's test): a `boxcert issuer` and a
 * `boxcert dns` process on one PostgreSQL store, boxes asking for certificates all along. During the
 * outage every answer is 200 or 503 store_unavailable with Retry-After, none hangs, the processes stay up;
 * after it, requests succeed again without restarting anything; every certificate a box received is in the
 * store; the dns answers the boxes' names throughout and serves a name enrolled afterwards. Then the same
 * with PostgreSQL hung (frozen) for 20 s: answers are slower, bounded by the store's timeouts, never hang.
 */
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { Resolver } from "node:dns/promises";
import { join } from "node:path";
import { CERTIFICATE_PATH, SIGNATURE_HEADER, certificateNames } from "@boxcert/shared";
import { openStore } from "@boxcert/store";
import { freePort, startBoxcert, tempDir, waitFor, type Proc } from "./support/processes.ts";
import { customer, startIssuerProcess, ZONE } from "./support/system.ts";
import { startPostgres, type Postgres } from "./support/postgres.ts";
import { credentials, enroll, makeCsr, makeTlsKey, scriptedBox, signBody, type ScriptedBox } from "./support/box-client.ts";

const BOXES = 30;
const CONCURRENCY = 8;
const OUTAGE_MS = 10_000;
/** No answer may take longer while PostgreSQL is stopped or running (it refuses connections at once). */
const ANSWER_BOUND_MS = 10_000;
/** How long PostgreSQL is hung (frozen): longer than the store's statement timeout (10 s, 11 s client side). */
const HUNG_MS = 20_000;
/** No answer may take longer while it is hung: the store's timeouts end them (a connection 5 s, a statement 11 s). */
const HUNG_BOUND_MS = 15_000;

const stops: Array<() => Promise<void> | void> = [];
after(async () => {
  for (const stop of stops.reverse()) await stop();
});

interface Sent {
  startedAt: number;
  ms: number;
  status: number | "exception";
  code?: string;
  retryAfter?: string | null;
  serial?: string;
  detail?: string;
}

/** One certificate request with a new key (so each 200 is a new certificate, a new insert), bounded in time. */
async function ask(issuerUrl: string, box: ScriptedBox, label: string): Promise<Sent> {
  const csr = await makeCsr(await makeTlsKey(), certificateNames(label, ZONE));
  const body = JSON.stringify({ ...credentials(box), label, csr });
  const startedAt = Date.now();
  try {
    const res = await fetch(issuerUrl + CERTIFICATE_PATH, {
      method: "POST",
      body,
      headers: { "content-type": "application/json", [SIGNATURE_HEADER]: signBody(box, body) },
      signal: AbortSignal.timeout(HUNG_BOUND_MS + 10_000),
    });
    const json = (await res.json()) as { serial?: string; error?: { code: string; message: string } };
    return { startedAt, ms: Date.now() - startedAt, status: res.status, retryAfter: res.headers.get("retry-after"), ...(json.serial ? { serial: json.serial } : {}), ...(json.error ? { code: json.error.code, detail: json.error.message } : {}) };
  } catch (err) {
    return { startedAt, ms: Date.now() - startedAt, status: "exception", detail: String(err) };
  }
}

async function resolveA(resolver: Resolver, name: string): Promise<string[] | string> {
  try {
    return await resolver.resolve4(name);
  } catch (err) {
    return (err as { code?: string }).code ?? String(err);
  }
}

test("PostgreSQL stopped for 10 s under load, then started, then hung for 20 s: 200 or 503 store_unavailable, nothing lost, no undelivered certificate, dns answers throughout", async () => {
  const pg: Postgres = await startPostgres();
  stops.push(() => pg.stop());
  const dir = tempDir("boxcert-outage-");
  const issuer = await startIssuerProcess({ dir, extra: ["--store", pg.url, "--keys-dir", join(dir, "keys"), "--max-certs-per-week", "100000"] });
  stops.push(() => issuer.proc.stop());
  const dnsPort = await freePort();
  const dns: Proc = await startBoxcert(["dns", "--zone", ZONE, "--listen", `127.0.0.1:${dnsPort}`, "--store", pg.url], (out) => out.includes("dns listening"));
  stops.push(() => dns.stop());
  const issuerPid = issuer.proc.child.pid;
  const dnsPid = dns.child.pid;
  const logs = () => `issuer:\n${issuer.proc.output().slice(-6000)}\ndns:\n${dns.output().slice(-3000)}`;

  const uuid = await customer(pg.url, "OUTAGE-1", "in_progress", BOXES + 5);
  const boxes: Array<{ box: ScriptedBox; label: string }> = [];
  for (let i = 0; i < BOXES; i++) {
    const box = scriptedBox(uuid, "OUTAGE-1");
    const answer = await enroll(issuer.url, box);
    assert.equal(answer.status, 200, JSON.stringify(answer.json));
    boxes.push({ box, label: answer.json.label as string });
  }
  const resolver = new Resolver({ timeout: 1000, tries: 1 });
  resolver.setServers([`127.0.0.1:${dnsPort}`]);
  const boxName = (label: string) => `127-0-0-1.${label}.${ZONE}`;
  await waitFor("the dns to serve the enrolled boxes", async () => Array.isArray(await resolveA(resolver, boxName(boxes.at(-1)!.label))));

  // The load: CONCURRENCY clients, each asking for one box after another. After a 503 a client pauses a
  // little, not the Retry-After a box waits: the clients stand for a crowd of boxes, not for one.
  const sent: Sent[] = [];
  let running = true;
  const clients = Array.from({ length: CONCURRENCY }, async (_, c) => {
    for (let i = c; running; i += CONCURRENCY) {
      const { box, label } = boxes[i % BOXES]!;
      const answer = await ask(issuer.url, box, label);
      sent.push(answer);
      if (answer.status !== 200) await new Promise((r) => setTimeout(r, 100));
    }
  });
  // The dns asked for every box's name, in turn, all along.
  const dnsAnswers: Array<{ at: number; name: string; answer: string[] | string }> = [];
  const asking = (async () => {
    for (let i = 0; running; i++) {
      const name = boxName(boxes[i % BOXES]!.label);
      dnsAnswers.push({ at: Date.now(), name, answer: await resolveA(resolver, name) });
      await new Promise((r) => setTimeout(r, 50));
    }
  })();

  await waitFor("200 answers under load before the outage", async () => sent.filter((s) => s.status === 200).length >= 30, 60_000);
  const outageStart = Date.now();
  const committedBefore = sent.filter((s) => s.status === 200).map((s) => s.serial!);
  pg.shutdown();
  const stoppedAt = Date.now();
  await waitFor("503 answers during the outage", async () => sent.some((s) => s.startedAt >= stoppedAt && s.status === 503), 20_000);
  // The outage lasts its 10 s: the scenario, not a wait for a condition.
  await new Promise((r) => setTimeout(r, Math.max(0, OUTAGE_MS - (Date.now() - outageStart))));
  pg.start();
  const startedAt = Date.now();
  const recovered = await waitFor("a 200 after PostgreSQL is back", async () => sent.find((s) => s.startedAt >= startedAt && s.status === 200), 20_000).catch((err: Error) => {
    throw new Error(`${err.message}\n${logs()}`);
  });
  const recoveryMs = recovered.startedAt + recovered.ms - startedAt;
  // A while of load after the outage, then a box enrolled now must resolve.
  await waitFor("more 200 answers after the outage", async () => sent.filter((s) => s.startedAt >= startedAt && s.status === 200).length >= 30, 60_000);

  // Then a hung server (frozen: it accepts connections and answers nothing): the store's timeouts end the
  // requests with 503, slower, never hanging, and the issuer goes on once the server answers again.
  const freezeStart = Date.now();
  pg.freeze();
  await waitFor("503 answers while PostgreSQL is hung", async () => sent.some((s) => s.startedAt >= freezeStart && s.status === 503), HUNG_BOUND_MS + 10_000);
  await new Promise((r) => setTimeout(r, Math.max(0, HUNG_MS - (Date.now() - freezeStart))));
  pg.thaw();
  const thawedAt = Date.now();
  await waitFor("a 200 after PostgreSQL answers again", async () => sent.some((s) => s.startedAt >= thawedAt && s.status === 200), 30_000).catch((err: Error) => {
    throw new Error(`${err.message}\n${logs()}`);
  });
  await waitFor("every request begun while it was hung answered", async () => sent.filter((s) => s.startedAt >= thawedAt).length >= CONCURRENCY * 2, 60_000);
  running = false;
  await Promise.all([...clients, asking]);

  const late = scriptedBox(uuid, "OUTAGE-1");
  const lateEnrolled = await enroll(issuer.url, late);
  assert.equal(lateEnrolled.status, 200, JSON.stringify(lateEnrolled.json));
  await waitFor("the dns to serve a name enrolled after the outage", async () => Array.isArray(await resolveA(resolver, boxName(lateEnrolled.json.label as string))), 10_000);

  // The figures, for the report.
  const during = sent.filter((s) => s.startedAt >= outageStart && s.startedAt < startedAt);
  // In flight when the server froze, or begun while it was hung.
  const hung = sent.filter((s) => s.startedAt + s.ms >= freezeStart && s.startedAt < thawedAt);
  const others = sent.filter((s) => !hung.includes(s));
  const byStatus = (list: Sent[]) => list.reduce<Record<string, number>>((acc, s) => ((acc[`${s.status}${s.code ? ` ${s.code}` : ""}`] = (acc[`${s.status}${s.code ? ` ${s.code}` : ""}`] ?? 0) + 1), acc), {});
  const maxMs = Math.max(...others.map((s) => s.ms));
  const hungMaxMs = Math.max(...hung.map((s) => s.ms));
  const duringDns = dnsAnswers.filter((d) => d.at >= stoppedAt && d.at < startedAt);
  console.log(
    JSON.stringify({
      requests: sent.length,
      answers: byStatus(sent),
      duringOutage: { requests: during.length, answers: byStatus(during), maxMs: Math.max(...during.map((s) => s.ms)) },
      whileHung: { requests: hung.length, answers: byStatus(hung), maxMs: hungMaxMs },
      maxMsOutsideHung: maxMs,
      recoveryMs,
      dnsQueriesDuringOutage: duringDns.length,
    }),
  );

  // Every answer: 200, or 503 store_unavailable with Retry-After; never 500, never a hang.
  const wrong = sent.filter((s) => s.status !== 200 && !(s.status === 503 && s.code === "store_unavailable" && s.retryAfter === "5"));
  assert.deepEqual(wrong, [], logs());
  assert.ok(maxMs < ANSWER_BOUND_MS, `an answer took ${maxMs} ms`);
  assert.ok(hungMaxMs < HUNG_BOUND_MS, `an answer took ${hungMaxMs} ms while PostgreSQL was hung`);
  assert.ok(hung.some((s) => s.status === 503), "the hung server was seen");
  assert.ok(during.some((s) => s.status === 503), "the outage was seen");
  // The processes stayed up, the same ones.
  assert.equal(issuer.proc.child.exitCode, null, logs());
  assert.equal(issuer.proc.child.pid, issuerPid);
  assert.equal(dns.child.exitCode, null, logs());
  assert.equal(dns.child.pid, dnsPid);

  // Nothing committed was lost, and no box holds a certificate the store does not know.
  const store = await openStore(pg.url);
  stops.push(() => store.close());
  const storedSerials = new Set((await store.db.selectFrom("certificates").select("serial").execute()).map((r) => r.serial));
  const received = sent.filter((s) => s.status === 200).map((s) => s.serial!);
  assert.deepEqual(received.filter((s) => !storedSerials.has(s)), [], "every certificate a box received is in the store");
  assert.deepEqual(committedBefore.filter((s) => !storedSerials.has(s)), [], "every certificate answered before the outage is still there");
  // Certificates signed but not recorded were logged, and none of them reached a box.
  const undelivered = [...issuer.proc.output().matchAll(/"serial":"([0-9a-fA-F]+)"[^\n]*certificate signed but its commit not confirmed/g)].map((m) => m[1]!);
  assert.deepEqual(undelivered.filter((s) => received.includes(s)), []);

  // The dns answered every name throughout, from its snapshot while the store was down.
  assert.ok(duringDns.length >= 20, `only ${duringDns.length} dns queries during the outage`);
  assert.deepEqual(dnsAnswers.filter((d) => !Array.isArray(d.answer) || d.answer[0] !== "127.0.0.1"), [], logs());

  // The outage was logged once by the issuer, not once per request, and its end too; no request failed as a bug.
  const out = issuer.proc.output();
  assert.equal(out.match(/the store is unreachable: requests are answered 503/g)?.length, 2, `one line per outage (stopped, hung)\n${logs()}`);
  assert.equal(out.match(/the store answers again/g)?.length, 2, logs());
  assert.equal(out.match(/issuer request failed/g), null, logs());
  assert.ok(/answering from the last snapshot/.test(dns.output()), dns.output());
});
