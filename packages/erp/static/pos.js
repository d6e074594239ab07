// The POS test page's script, an ES module (loaded with the page's CSP nonce): calls each box from this
// browser as a point-of-sale page does, through the browser module @boxcert/web (the page's import map
// names its versioned URL on this origin). The module finds the path that works (HTTPS by name, or the
// box's IP address, degraded) and, when none does or HTTPS does not, says why in the page's language.
import { boxClient, BoxUnreachableError } from "@boxcert/web";

const table = document.querySelector("table.pos");
const lang = table ? table.getAttribute("data-lang") || "en" : "en";
/** One client per box row: a test request goes over the path the last "Call the box" found. */
const clients = new Map();

function clientFor(row) {
  let client = clients.get(row);
  if (!client) {
    client = boxClient({
      httpsUrl: row.getAttribute("data-https-url"),
      ip: row.getAttribute("data-ip"),
      httpPort: Number(row.getAttribute("data-http-port")),
      lang,
    });
    clients.set(row, client);
  }
  return client;
}

function pretty(text) {
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    // Not JSON: shown as it came.
    return text;
  }
}

/** The module's words on what is wrong (a failure, or why the path is degraded); null hides them. */
function showProblem(row, result) {
  const box = row.querySelector(".problem");
  box.hidden = result === null;
  box.setAttribute("data-reason", result ? result.reason : "");
  row.querySelector(".problem .message").textContent = result ? result.message : "";
  const list = row.querySelector(".problem .advice");
  list.replaceChildren(...(result ? result.advice : []).map((line) => {
    const item = document.createElement("li");
    item.textContent = line;
    return item;
  }));
}

/** The path in use: HTTPS by name, or the badge of the degraded path over the box's IP. */
function showVia(row, result) {
  const via = row.querySelector(".via");
  const degraded = result !== null && result.ok && result.via === "ip";
  via.className = degraded ? "via degraded" : "via";
  via.setAttribute("data-via", result && result.ok ? result.via : "");
  via.textContent = result && result.ok ? table.getAttribute(degraded ? "data-degraded" : "data-via-https") : "";
  showProblem(row, result && (degraded || !result.ok) ? result : null);
}

function request(kind) {
  if (kind !== "test") return ["api/status", { cache: "no-store", credentials: "omit" }];
  const body = JSON.stringify({ note: "POS test" });
  return ["api/pos/test", { method: "POST", cache: "no-store", credentials: "omit", headers: { "content-type": "application/json" }, body }];
}

async function call(button) {
  const row = button.closest("tr");
  const out = row.querySelector(".answer");
  const kind = button.getAttribute("data-call");
  const client = clientFor(row);
  out.textContent = "…";
  // "Call the box" looks for the path again (back to HTTPS once fixed); a test request uses the last one.
  const found = kind === "status" || client.last === null ? await client.reach() : client.last;
  showVia(row, found);
  if (!found.ok) {
    out.textContent = "";
    return;
  }
  try {
    const [path, init] = request(kind);
    const response = await client.fetch(path, init);
    const text = await response.text();
    out.textContent = `${table.getAttribute("data-answered").replace("{status}", String(response.status))}\n${pretty(text)}`;
  } catch (err) {
    if (err instanceof BoxUnreachableError) {
      showVia(row, err.result);
      out.textContent = "";
      return;
    }
    // The path found stopped working (the module forgets it), or the box refused this origin (CORS).
    out.textContent = table.getAttribute("data-call-failed").replace("{detail}", String(err && err.message)) + "\n" + table.getAttribute("data-unreachable");
  }
}

document.addEventListener("click", (event) => {
  const button = event.target.closest ? event.target.closest("[data-call]") : null;
  if (button) void call(button).catch((err) => {
    button.closest("tr").querySelector(".answer").textContent = String(err);
  });
});
