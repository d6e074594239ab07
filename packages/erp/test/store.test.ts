/**
 * The JSON store (store.ts): changes run one at a time on a copy and are committed by an atomic rename,
 * so a process killed with SIGKILL in the middle of a write leaves the old file or the new one, never a
 * torn one, and the next start cleans the interrupted write's temporary file.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { watch, type FSWatcher } from "node:fs";
import { readdir, readFile, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { pathToFileURL } from "node:url";
import { JsonStore, parseStore, serializeStore, type BoxRecord } from "../src/store.ts";
import { tempDir } from "./helpers/fixture.ts";

/** Boxes all named for one generation: a file mixing two generations would be torn. */
function generation(n: number, count: number): BoxRecord[] {
  return Array.from({ length: count }, (_, i) => ({
    identifier: `00000000-0000-4000-8000-${String(i).padStart(12, "0")}`,
    identityKey: "A".repeat(120),
    name: `gen-${n}`,
    ip: "192.168.1.42",
    httpsUrl: null,
    certificateExpiry: null,
    version: "0.1.0",
    pairedAt: "2026-01-01T00:00:00.000Z",
    lastSeen: "2026-01-01T00:00:00.000Z",
  }));
}

/** A child that rewrites the store as fast as it can, printing each generation once it is committed. */
const WRITER = `
import { JsonStore } from ${JSON.stringify(pathToFileURL(join(import.meta.dirname, "../src/store.ts")).href)};
const [path, count] = [process.argv[2], Number(process.argv[3])];
const store = await JsonStore.open(path);
let n = Number(store.data.boxes[0]?.name.slice(4) ?? 0);
process.stdout.write("ready\\n");
for (;;) {
  n++;
  const boxes = Array.from({ length: count }, (_, i) => ({ ...store.data.boxes[i] ?? { identifier: String(i), identityKey: "A".repeat(120), ip: "192.168.1.42", httpsUrl: null, certificateExpiry: null, version: "0.1.0", pairedAt: "x", lastSeen: "x" }, name: "gen-" + n }));
  await store.change((draft) => { draft.boxes = boxes; return { result: undefined, write: true }; });
  process.stdout.write(n + "\\n");
}
`;

/**
 * Runs the writer until `writes` generations are committed, then kills it with SIGKILL as soon as its next
 * write's temporary file appears (or after a moment, should the folder's events be slow); resolves with the
 * last generation the writer said was committed.
 */
function killMidWrite(script: string, path: string, count: number, writes: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", script, path, String(count)], { stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    let watcher: FSWatcher | null = null;
    const kill = (): void => {
      child.kill("SIGKILL");
    };
    child.stdout.on("data", (chunk: Buffer) => {
      out += chunk.toString();
      const committed = out.split("\n").filter((line) => /^\d+$/.test(line)).length;
      if (watcher === null && committed >= writes) {
        watcher = watch(dirname(path), (_event, file) => {
          if (file?.endsWith(".tmp")) kill();
        });
        setTimeout(kill, 20 + Math.floor(Math.random() * 30));
      }
    });
    child.on("error", reject);
    child.on("exit", () => {
      watcher?.close();
      const numbers = out.split("\n").filter((line) => /^\d+$/.test(line)).map(Number);
      resolve(numbers.at(-1) ?? 0);
    });
  });
}

test("kill -9 during writes: the file is always the last committed generation or the next, whole", async (t) => {
  const temp = await tempDir();
  t.after(temp.cleanup);
  const path = join(temp.dir, "boxes.json");
  const script = join(temp.dir, "writer.mjs");
  await writeFile(script, WRITER);
  const count = 3000;
  await writeFile(path, serializeStore({ boxes: generation(0, count), pairings: [] }));
  let interrupted = 0;
  for (let round = 0; round < 6; round++) {
    const lastCommitted = await killMidWrite(script, path, count, 3);
    const data = parseStore(path, await readFile(path, "utf8"));
    const names = new Set(data.boxes.map((box) => box.name));
    assert.equal(names.size, 1, `round ${round}: one generation in the file, not ${[...names].join(", ")}`);
    assert.equal(data.boxes.length, count);
    const onDisk = Number([...names][0]!.slice(4));
    assert.ok(onDisk === lastCommitted || onDisk === lastCommitted + 1, `round ${round}: generation ${onDisk} on disk, ${lastCommitted} committed`);
    if ((await readdir(temp.dir)).some((file) => file.endsWith(".tmp"))) interrupted++;
  }
  assert.ok(interrupted > 0, "at least one kill landed in the middle of a write (its temporary file was left)");
  // A later start removes what an interrupted write left, and reads the file.
  const store = await JsonStore.open(path);
  assert.equal(store.data.boxes.length, count);
  assert.deepEqual((await readdir(temp.dir)).sort(), ["boxes.json", "writer.mjs"]);
});

test("changes run one at a time on a copy: none is lost, and one that writes nothing leaves the file alone", async (t) => {
  const temp = await tempDir();
  t.after(temp.cleanup);
  const path = join(temp.dir, "boxes.json");
  const store = await JsonStore.open(path);
  await Promise.all(
    Array.from({ length: 20 }, (_, i) =>
      store.change((draft) => {
        draft.boxes.push(generation(i, 1)[0]!);
        return { result: undefined, write: true };
      }),
    ),
  );
  assert.equal(store.data.boxes.length, 20);
  assert.equal(parseStore(path, await readFile(path, "utf8")).boxes.length, 20);
  const before = await readFile(path, "utf8");
  const result = await store.change((draft) => {
    draft.boxes = [];
    return { result: "refused", write: false };
  });
  assert.equal(result, "refused");
  assert.equal(store.data.boxes.length, 20, "the copy was dropped");
  assert.equal(await readFile(path, "utf8"), before);
  await assert.rejects(
    store.change(() => {
      throw new Error("a bug in a change");
    }),
    /a bug in a change/,
  );
  assert.equal((await store.change(() => ({ result: store.data.boxes.length, write: false }))), 20, "the queue goes on after a failed change");
});

test("a store file that is not ours stops the open with the file's name", async (t) => {
  const temp = await tempDir();
  t.after(temp.cleanup);
  const path = join(temp.dir, "boxes.json");
  await writeFile(path, "{torn");
  await assert.rejects(JsonStore.open(path), new RegExp(`${path}: not valid JSON`));
  await writeFile(path, JSON.stringify({ version: 1, boxes: [{ identifier: 1 }], pairings: [] }));
  await assert.rejects(JsonStore.open(path), /"boxes" is not a list of boxes/);
  await writeFile(path, JSON.stringify({ version: 2, boxes: [], pairings: [] }));
  await assert.rejects(JsonStore.open(path), /format version 2 is not 1/);
});

test("a box record may carry an HTTP port (1-65535); records written before it, without one, stay valid", () => {
  const old = { identifier: "a", identityKey: "k", name: "Till 1", ip: "192.168.1.42", httpsUrl: null, certificateExpiry: null, version: "0.1.0", pairedAt: "x", lastSeen: "x" };
  const text = (box: Record<string, unknown>): string => JSON.stringify({ version: 1, boxes: [box], pairings: [] });
  assert.equal(parseStore("boxes.json", text(old)).boxes[0]!.httpPort, undefined);
  assert.equal(parseStore("boxes.json", text({ ...old, httpPort: 8069 })).boxes[0]!.httpPort, 8069);
  for (const bad of [0, 65536, "80", 80.5, null]) {
    assert.throws(() => parseStore("boxes.json", text({ ...old, httpPort: bad })), /"boxes" is not a list of boxes/, String(bad));
  }
});
