/**
 * A renewal storm far above what one issuer process takes at once: 600 boxes ask for a certificate at the
 * same moment against `--max-in-flight 8` (its slots held while the burst arrives, so that it is far above
 * capacity on a fast machine too). Those beyond the bound are answered `503 busy` with Retry-After
 * at once; each comes back after Retry-After plus up to a fifth more (the box's rule, renewal.ts), and every
 * box ends with its certificate. The issuer's peak resident memory stays under MEMORY_BOUND_MIB.
 *
 * Time is compressed: the clients wait a tenth of Retry-After (0.5 s instead of 5 s), so the test takes
 * seconds, not minutes; the order of events is the same.
 */
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { CERTIFICATE_PATH, certificateNames, SIGNATURE_HEADER } from "@boxcert/shared";
import { waitFor } from "./support/processes.ts";
import { customer, startIssuerProcess, ZONE } from "./support/system.ts";
import { credentials, enroll, makeCsr, makeTlsKey, post, scriptedBox, signBody, type ScriptedBox } from "./support/box-client.ts";

const BOXES = 600;
const MAX_IN_FLIGHT = 8;
const TIME_SCALE = 0.1;
/** The issuer idles near 100 MiB run from TypeScript sources; a storm must not grow it without bound. */
const MEMORY_BOUND_MIB = 300;

const stops: Array<() => Promise<void>> = [];
after(async () => {
  for (const stop of stops.reverse()) await stop();
});

/** A POST whose body never finishes: it holds one of the issuer's slots until its socket is destroyed. */
async function holdInFlight(port: number): Promise<Socket> {
  const socket = connect(port, "127.0.0.1");
  await new Promise<void>((resolve, reject) => socket.once("connect", resolve).once("error", reject));
  socket.on("error", () => {});
  socket.write(`POST ${CERTIFICATE_PATH} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{"dbUuid":`);
  return socket;
}

function peakResidentMiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  return Number(/VmHWM:\s+(\d+) kB/.exec(status)![1]) / 1024;
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

test(`${BOXES} boxes at once against --max-in-flight ${MAX_IN_FLIGHT}: fast busy answers, bounded memory, every box certified in the end`, async () => {
  const issuer = await startIssuerProcess({ extra: ["--max-in-flight", String(MAX_IN_FLIGHT), "--max-certs-per-week", "10"] });
  stops.push(() => issuer.proc.stop());
  const uuid = await customer(issuer.store, "BURST", "in_progress", BOXES);

  // Enrolled and keyed beforehand, a few at a time (enrolment is a POST too, and counted).
  const boxes: Array<{ box: ScriptedBox; label: string; csr: string }> = [];
  for (let i = 0; i < BOXES; i += MAX_IN_FLIGHT) {
    await Promise.all(
      Array.from({ length: Math.min(MAX_IN_FLIGHT, BOXES - i) }, async () => {
        const box = scriptedBox(uuid, "BURST");
        const enrolled = await enroll(issuer.url, box);
        assert.equal(enrolled.status, 200, JSON.stringify(enrolled.json));
        const label = enrolled.json.label as string;
        boxes.push({ box, label, csr: await makeCsr(await makeTlsKey(), certificateNames(label, ZONE)) });
      }),
    );
  }

  // The burst must be far above capacity however fast this machine is today: the issuer's slots are held
  // (requests whose body never finishes, as a slow client holds them) while the burst arrives, so every
  // box's first try is refused; they are let go once each box has been told to come back, and from then on
  // the boxes compete for the eight slots by themselves.
  const held = await Promise.all(Array.from({ length: MAX_IN_FLIGHT }, () => holdInFlight(Number(new URL(issuer.url).port))));
  await waitFor("the issuer busy", async () => (await post(issuer.url + CERTIFICATE_PATH, "{}")).status === 503, 10_000, 20);
  let release: () => void = () => {};
  const everyBoxTold = new Promise<void>((resolve) => (release = resolve));
  void everyBoxTold.then(() => held.forEach((socket) => socket.destroy()));

  const busyLatencies: number[] = [];
  const retryAfters = new Set<string | null>();
  const others: string[] = [];
  let toldToComeBack = 0;
  const started = Date.now();
  // Signed beforehand (a timestamp stays fresh for minutes), so the burst leaves the clients at once.
  const signed = boxes.map(({ box, label, csr }) => {
    const body = JSON.stringify({ ...credentials(box), label, csr });
    return { body, signature: signBody(box, body) };
  });
  const serials = await Promise.all(
    signed.map(async ({ body, signature }) => {
      let toldOnce = false;
      for (;;) {
        const sent = Date.now();
        const answer = await post(issuer.url + CERTIFICATE_PATH, body, { [SIGNATURE_HEADER]: signature });
        if (answer.status === 200) return answer.json.serial as string;
        if (answer.status !== 503 || answer.json.error?.code !== "busy") {
          others.push(`${answer.status} ${JSON.stringify(answer.json)}`);
          return null;
        }
        busyLatencies.push(Date.now() - sent);
        const retryAfter = answer.headers.get("retry-after");
        retryAfters.add(retryAfter);
        if (!toldOnce && ++toldToComeBack === BOXES) release();
        toldOnce = true;
        await new Promise((resolve) => setTimeout(resolve, Number(retryAfter) * 1000 * TIME_SCALE * (1 + 0.2 * Math.random())));
      }
    }),
  );
  const seconds = (Date.now() - started) / 1000;
  const peak = peakResidentMiB(issuer.proc.child.pid!);
  console.log(
    `burst: ${BOXES} boxes in ${seconds.toFixed(1)} s; ${toldToComeBack} told to come back (${busyLatencies.length} busy answers, ` +
      `p50 ${percentile(busyLatencies, 50)} ms, p99 ${percentile(busyLatencies, 99)} ms); issuer peak RSS ${peak.toFixed(0)} MiB`,
  );

  assert.deepEqual(others, [], "no answer but a certificate or busy");
  assert.equal(toldToComeBack, BOXES, "every box was told to come back later at first");
  assert.ok(busyLatencies.length > BOXES, `and some more than once, competing for the slots (${busyLatencies.length} busy answers)`);
  assert.deepEqual([...retryAfters], ["5"], "every busy answer carries Retry-After");
  // Every box was answered while every slot was held: nothing queued behind them. Their latency is the
  // client's own (600 requests from one test process) more than the issuer's.
  assert.ok(percentile(busyLatencies, 99) < 5_000, `busy answers are fast (p99 ${percentile(busyLatencies, 99)} ms)`);
  assert.equal(new Set(serials.filter((s) => s !== null)).size, BOXES, "every box got its own certificate in the end");
  assert.ok(peak < MEMORY_BOUND_MIB, `the issuer's peak RSS ${peak.toFixed(0)} MiB is under ${MEMORY_BOUND_MIB} MiB`);
});
