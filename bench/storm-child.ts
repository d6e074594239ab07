/**
 * The storm benchmark's helper process (bench/storm.ts forks it): it makes keys, CSRs and signed bodies
 * (several of these children share that work, one per core), or it is the load generator, on its own event
 * loop and core share, apart from the issuers and from the bench's own process. One request in, one answer
 * out, over the fork's IPC channel.
 */
import { createPrivateKey, generateKeyPairSync, randomUUID, sign } from "node:crypto";
import { Agent, request } from "node:https";
import { certificateNames } from "@boxcert/shared";
import { relabelledCsrPem } from "./fast-csr.ts";

export interface Identity {
  /** PKCS#8 DER, base64. */
  pkcs8: string;
  /** SPKI DER, base64: the identityKey field. */
  spki: string;
  identifier: string;
}

export interface BoxSpec extends Identity {
  dbUuid: string;
  enterpriseCode: string;
  /** With a label: a certificate request with a new key's CSR; without: an enrollment. */
  label?: string;
}

export interface Signed {
  body: string;
  signature: string;
}

export interface DriveOptions {
  url: string;
  path: string;
  ca: string;
  requests: Signed[];
  sockets: number;
  /** Retry-After (seconds) times this is how long a busy or rate-limited request waits before it is sent again. */
  retryScale: number;
  /** enroll: read each answer's label; certificate: an answer must carry a new certificate (reused: false). */
  expect: "enroll" | "certificate";
}

export interface DriveResult {
  seconds: number;
  ok: number;
  /** Milliseconds each successful request took (its last attempt). */
  latencies: number[];
  /** ... those of them sent on a new connection (TCP and TLS set-up included). */
  newConnectionLatencies: number[];
  busy: number;
  limited: number;
  /** Answers other than 200, 503 busy and 429, by status. */
  otherStatus: Record<string, number>;
  /** 200 answers that carried no new certificate. */
  reused: number;
  network: number;
  /** Requests given up (network errors 20 times, or an answer that is not retried). */
  failed: number;
  sample: string;
  labels: string[];
  clientCpuSeconds: number;
}

export type Ask =
  | { kind: "identities"; count: number }
  | { kind: "bodies"; boxes: BoxSpec[]; zone: string }
  | { kind: "drive"; options: DriveOptions };

/** The label the CSR template is made for: any label of the same length becomes the real one. */
const PLACEHOLDER = "x";

function identities(count: number): Identity[] {
  return Array.from({ length: count }, () => {
    const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
    return {
      pkcs8: privateKey.export({ type: "pkcs8", format: "der" }).toString("base64"),
      spki: publicKey.export({ type: "spki", format: "der" }).toString("base64"),
      identifier: randomUUID(),
    };
  });
}

/** A box's signed body, as a box sends it (test/support/box-client.ts `credentials`, `signBody`). */
function bodies(boxes: BoxSpec[], zone: string): Signed[] {
  const timestamp = new Date().toISOString();
  return boxes.map((box) => {
    const credentials = { dbUuid: box.dbUuid, enterpriseCode: box.enterpriseCode, identifier: box.identifier, identityKey: box.spki, timestamp };
    let body: string;
    if (box.label === undefined) body = JSON.stringify(credentials);
    else {
      const placeholder = PLACEHOLDER.repeat(box.label.length);
      const csr = relabelledCsrPem(certificateNames(placeholder, zone), placeholder, box.label);
      body = JSON.stringify({ ...credentials, label: box.label, csr });
    }
    const key = createPrivateKey({ key: Buffer.from(box.pkcs8, "base64"), format: "der", type: "pkcs8" });
    return { body, signature: sign("sha256", Buffer.from(body), { key, dsaEncoding: "der" }).toString("base64url") };
  });
}

function post(agent: Agent, url: URL, path: string, item: Signed): Promise<{ status: number; text: string; retryAfter: number; newConnection: boolean }> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: url.hostname,
        port: url.port,
        path,
        method: "POST",
        agent,
        headers: { "content-type": "application/json", "content-length": Buffer.byteLength(item.body), "boxcert-signature": item.signature },
      },
      (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (d: string) => (text += d));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, text, retryAfter: Number(res.headers["retry-after"] ?? 1), newConnection: !req.reusedSocket }));
      },
    );
    req.on("error", reject);
    req.end(item.body);
  });
}

async function drive(o: DriveOptions): Promise<DriveResult> {
  const url = new URL(o.url);
  const agent = new Agent({ keepAlive: true, maxSockets: o.sockets, ca: o.ca });
  const result: DriveResult = { seconds: 0, ok: 0, latencies: [], newConnectionLatencies: [], busy: 0, limited: 0, otherStatus: {}, reused: 0, network: 0, failed: 0, sample: "", labels: new Array<string>(o.requests.length), clientCpuSeconds: 0 };
  const wait = (seconds: number) => new Promise((r) => setTimeout(r, seconds * 1000 * o.retryScale));
  let next = 0;
  const cpu = process.cpuUsage();
  const start = performance.now();
  await Promise.all(
    Array.from({ length: Math.min(o.sockets, o.requests.length) }, async () => {
      while (next < o.requests.length) {
        const index = next++;
        const item = o.requests[index]!;
        for (let attempt = 1; ; attempt++) {
          const sent = performance.now();
          let answer: Awaited<ReturnType<typeof post>>;
          try {
            answer = await post(agent, url, o.path, item);
          } catch (err) {
            result.network++;
            result.sample ||= `network: ${(err as Error).message}`;
            if (attempt === 20) {
              result.failed++;
              break;
            }
            await new Promise((r) => setTimeout(r, 100));
            continue;
          }
          if (answer.status === 200) {
            result.ok++;
            result.latencies.push(performance.now() - sent);
            if (answer.newConnection) result.newConnectionLatencies.push(performance.now() - sent);
            if (o.expect === "enroll") result.labels[index] = (JSON.parse(answer.text) as { label: string }).label;
            else if (!answer.text.includes('"reused":false')) {
              result.reused++;
              result.sample ||= `200 reused: ${answer.text.slice(0, 200)}`;
            }
            break;
          }
          if (answer.status === 503 && answer.text.includes('"busy"')) {
            result.busy++;
            await wait(answer.retryAfter);
            continue;
          }
          if (answer.status === 429) {
            result.limited++;
            await wait(answer.retryAfter);
            continue;
          }
          result.otherStatus[answer.status] = (result.otherStatus[answer.status] ?? 0) + 1;
          result.sample ||= `${answer.status} ${answer.text.slice(0, 300)}`;
          result.failed++;
          break;
        }
      }
    }),
  );
  result.seconds = (performance.now() - start) / 1000;
  const used = process.cpuUsage(cpu);
  result.clientCpuSeconds = (used.user + used.system) / 1e6;
  agent.destroy();
  return result;
}

process.on("message", (ask: Ask) => {
  void (async () => {
    let answer: unknown;
    if (ask.kind === "identities") answer = identities(ask.count);
    else if (ask.kind === "bodies") answer = bodies(ask.boxes, ask.zone);
    else answer = await drive(ask.options);
    process.send!(answer);
  })().catch((err: unknown) => {
    console.error(`storm child: ${(err as Error).stack ?? err}`);
    process.exit(1);
  });
});
