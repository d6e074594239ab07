/**
 * @boxcert/web: how a point-of-sale page (HTTPS, on the database's public origin) reaches a box on the
 * shop's LAN, and, when it cannot, why, in words a cashier can act on (English and Italian).
 *
 * Plain JavaScript with JSDoc types, loaded by browsers as it is: this repository has no build step, so
 * what is here is what a page imports (`<script type="module">import { boxClient } from ".../boxcert-web.js"`).
 * The types for TypeScript users are the hand-written index.d.ts beside it (a test checks the two agree).
 * No dependencies, no DOM typings: the few browser objects used are typed where they are read.
 *
 * How it decides (docs/web.md): `reach()` gathers facts (the HTTPS ping, the box asked by its IP address
 * over plain HTTP, the name asked over plain HTTP, the local-network permission) and `diagnose()`, a pure
 * function, turns them into a result; `describe()`, also pure, words it.
 */

/** @typedef {"ok" | "failed" | "timeout" | "not-tried"} Outcome */
/** @typedef {"granted" | "denied" | "prompt" | "unknown"} Permission */
/** @typedef {"lna-denied" | "lna-prompt" | "name-not-resolving" | "certificate" | "unreachable" | "mixed-content" | "name-or-certificate"} Reason */
/** @typedef {"untrusted" | "expired" | "missing" | "wrong-name"} CertificateDetail */
/** @typedef {"en" | "it"} Lang */
/** @typedef {"loopback" | "local"} AddressSpace */

/**
 * What the box's GET /api/status says of its certificate (docs/box.md), as far as the diagnosis needs it.
 * @typedef {object} StatusFacts
 * @property {string} status     "ok" | "renewing" | "error" | "missing"
 * @property {string[]} names    the certificate's DNS names
 * @property {string | null} notAfter
 * @property {string | null} errorCode
 */

/**
 * @typedef {object} Facts
 * @property {Exclude<Outcome, "not-tried">} https  GET <httpsUrl>api/ping
 * @property {boolean} mixedContent   the URL is plain http:// to a name the browser does not trust, from an https:// page
 * @property {Outcome} httpByName     GET http://<name>:<httpPort>/api/ping (does the name resolve to the box?)
 * @property {Outcome} ip             the box asked by its IP address (/api/status, else /api/ping)
 * @property {StatusFacts | null} status  the box's status when it could be read by IP
 * @property {Permission} permission  the local-network permission, read after the attempts (they may prompt)
 * @property {string} hostname        the HTTPS name the page uses
 * @property {number} now             ms since the epoch
 */

/**
 * @typedef {object} Diagnosis
 * @property {boolean} ok
 * @property {"https" | "ip" | null} via
 * @property {Reason | null} reason
 * @property {CertificateDetail | null} detail
 * @property {string | null} notAfter   for an expired certificate
 * @property {string | null} errorCode  the box's own error code, for a missing or expired certificate
 */

// Frozen: every caller gets this one object.
const ALL_GOOD = /** @type {Diagnosis} */ (Object.freeze({ ok: true, via: "https", reason: null, detail: null, notAfter: null, errorCode: null }));

/**
 * @param {boolean} ok
 * @param {Reason} reason
 * @param {Partial<Diagnosis>} [more]
 * @returns {Diagnosis}
 */
function outcome(ok, reason, more = {}) {
  return { ok, via: ok ? "ip" : null, reason, detail: null, notAfter: null, errorCode: null, ...more };
}

/**
 * Whether a certificate name covers a host: exactly, or as a wildcard for one label (RFC 6125).
 * @param {string} name
 * @param {string} host
 */
function covers(name, host) {
  const n = name.toLowerCase();
  const h = host.toLowerCase();
  if (!n.startsWith("*.")) return n === h;
  const dot = h.indexOf(".");
  return dot > 0 && h.slice(dot + 1) === n.slice(2);
}

/**
 * What is wrong with the box's certificate by its own account, or null when it says it is fine (or
 * nothing could be read).
 * @param {StatusFacts | null} status
 * @param {string} hostname
 * @param {number} now
 * @returns {Partial<Diagnosis> | null}
 */
export function certificateProblem(status, hostname, now) {
  if (!status) return null;
  const errorCode = status.errorCode;
  if (status.status === "missing" || status.names.length === 0) return { detail: "missing", errorCode };
  if (status.notAfter !== null && Date.parse(status.notAfter) <= now) return { detail: "expired", notAfter: status.notAfter, errorCode };
  // "error" is the box saying it holds no valid certificate (docs/box.md); "renewing" still serves one.
  if (status.status === "error") return { detail: "missing", errorCode };
  if (!status.names.some((name) => covers(name, hostname))) return { detail: "wrong-name" };
  return null;
}

/**
 * Why the HTTPS name fails while the box answers by IP. The box's own account of its certificate comes
 * first; then plain HTTP by name tells a name that resolves (so TLS is what fails: a certificate this
 * browser does not accept) from one that does not.
 * @param {Facts} facts
 * @returns {Diagnosis}
 */
function whyNotByName(facts) {
  const problem = certificateProblem(facts.status, facts.hostname, facts.now);
  if (problem) return outcome(true, "certificate", problem);
  if (facts.httpByName === "ok") return outcome(true, "certificate", { detail: "untrusted" });
  if (facts.httpByName === "not-tried") return outcome(true, "name-or-certificate");
  return outcome(true, "name-not-resolving");
}

/**
 * Nothing answers by IP: the permission says whether the browser held the requests back.
 * @param {Facts} facts
 * @returns {Diagnosis}
 */
function whyNothingAnswers(facts) {
  if (facts.httpByName === "ok") return outcome(false, "certificate", { detail: "untrusted" });
  if (facts.permission === "denied") return outcome(false, "lna-denied");
  if (facts.permission === "prompt") return outcome(false, "lna-prompt");
  // A browser without local network access (Firefox, Safari, older Chrome) blocks the plain-HTTP attempts
  // on an https:// page, so only the HTTPS attempt tells anything: a quick failure is a name, a
  // certificate or a refused port; a silence is a box that is not there.
  if (facts.permission === "unknown" && facts.https === "failed") return outcome(false, "name-or-certificate");
  return outcome(false, "unreachable");
}

/**
 * The decision: facts in, diagnosis out. Pure (docs/web.md lists every case).
 * @param {Facts} facts
 * @returns {Diagnosis}
 */
export function diagnose(facts) {
  if (facts.https === "ok") return ALL_GOOD;
  if (facts.mixedContent) return outcome(false, "mixed-content");
  if (facts.ip === "ok") return whyNotByName(facts);
  return whyNothingAnswers(facts);
}

// ---------------------------------------------------------------------------------------------------
// Words. One catalogue per language with the same keys; {placeholders} are filled by describe().

/** @typedef {{message: string, advice: string[]}} Text */

const TEXTS = {
  en: {
    "lna-denied": {
      message: "This browser does not allow this page to reach devices on the local network, so it cannot talk to the box.",
      advice: [
        "Click the icon at the left of the address bar (the lock or the settings icon), open Site settings and set \"Local network access\" to Allow.",
        "Then reload this page.",
      ],
    },
    "lna-prompt": {
      message: "The browser is asking whether this page may reach devices on the local network, and has no answer yet.",
      advice: [
        "Choose Allow in the browser's question (below the address bar), then try again.",
        "If the question is gone: the icon at the left of the address bar → Site settings → \"Local network access\" → Allow.",
      ],
    },
    "name-not-resolving": {
      message: "The box answers at its IP address, but its HTTPS name {host} does not resolve on this network: the router's DNS most likely blocks names that point to local addresses (DNS rebinding protection).",
      advice: [
        "Ask the network administrator to allow the zone {zone} in the router's DNS: with dnsmasq, rebind-domain-ok=/{zone}/; on other routers, an exception for {zone} in \"DNS rebind protection\".",
        "The box's Diagnostics page ({boxPage}diagnostics) shows what this network's DNS answers and the steps for common routers.",
      ],
    },
    "certificate.untrusted": {
      message: "The box answers and its name resolves, but this browser does not accept the box's HTTPS certificate.",
      advice: [
        "Check this device's date and time: a wrong clock makes a valid certificate look expired.",
        "Open the box's page ({boxPage}) and check its certificate; if it says it is valid, contact support with the box's name.",
      ],
    },
    "certificate.expired": {
      message: "The box's HTTPS certificate expired on {notAfter}, so the browser refuses its HTTPS address.{errorCode}",
      advice: [
        "Open the box's page ({boxPage}): it says why the renewal failed and what to do.",
        "The box renews by itself once it reaches the internet: check its connection.",
      ],
    },
    "certificate.missing": {
      message: "The box has no valid HTTPS certificate yet, so its HTTPS address cannot work.{errorCode}",
      advice: ["Open the box's page ({boxPage}): it shows the error and what to do (connection to the database, credential, subscription)."],
    },
    "certificate.wrong-name": {
      message: "The box's HTTPS certificate is not for the name this page uses ({host}): the box has a new name.",
      advice: ["Open the box's page ({boxPage}) for its current HTTPS address, and update the box in the database (the box does it itself when it registers again)."],
    },
    unreachable: {
      message: "The box does not answer: it is off, on another network, or a firewall blocks it.",
      advice: [
        "Check that the box is on and connected (cable or Wi-Fi) to the same network as this device.",
        "Check that this device is on the shop's network, not a guest Wi-Fi or a mobile connection.",
        "Try opening the box's page ({boxPage}) on this device; if its address has changed, update the box in the database.",
      ],
    },
    "mixed-content": {
      message: "This page uses the box's plain http:// address, which the browser blocks on an https:// page (mixed content).",
      advice: ["Use the box's HTTPS address (https://…, shown on the box's page) in the database's settings for this box."],
    },
    "name-or-certificate": {
      message: "This browser cannot open the box's HTTPS address ({host}) and cannot tell why: the name may not resolve on this network, the box's certificate may not be accepted, or the box's service may be stopped.",
      advice: [
        "Open the box's page ({boxPage}) in a new tab: if it opens, the box is on, and its Diagnostics page says whether this network resolves its name.",
        "If the router blocks the name, allow the zone {zone} in its DNS (dnsmasq: rebind-domain-ok=/{zone}/).",
      ],
    },
    errorCode: " The box shows {code}.",
    degraded: "Meanwhile this page talks to the box over plain HTTP at {boxPage}: it works, unencrypted, and only on this network.",
  },
  it: {
    "lna-denied": {
      message: "Questo browser non consente a questa pagina di raggiungere i dispositivi della rete locale, quindi non può comunicare con la box.",
      advice: [
        "Fai clic sull'icona a sinistra della barra degli indirizzi (il lucchetto o l'icona delle impostazioni), apri Impostazioni sito e imposta \"Accesso alla rete locale\" su Consenti.",
        "Poi ricarica questa pagina.",
      ],
    },
    "lna-prompt": {
      message: "Il browser sta chiedendo se questa pagina può raggiungere i dispositivi della rete locale e non ha ancora una risposta.",
      advice: [
        "Scegli Consenti nella domanda del browser (sotto la barra degli indirizzi), poi riprova.",
        "Se la domanda non c'è più: icona a sinistra della barra degli indirizzi → Impostazioni sito → \"Accesso alla rete locale\" → Consenti.",
      ],
    },
    "name-not-resolving": {
      message: "La box risponde al suo indirizzo IP, ma il suo nome HTTPS {host} non viene risolto su questa rete: molto probabilmente il DNS del router blocca i nomi che puntano a indirizzi locali (protezione DNS rebinding).",
      advice: [
        "Chiedi all'amministratore di rete di consentire la zona {zone} nel DNS del router: con dnsmasq, rebind-domain-ok=/{zone}/; sugli altri router, un'eccezione per {zone} in \"protezione DNS rebind\".",
        "La pagina Diagnostica della box ({boxPage}diagnostics) mostra cosa risponde il DNS di questa rete e i passi per i router più diffusi.",
      ],
    },
    "certificate.untrusted": {
      message: "La box risponde e il suo nome viene risolto, ma questo browser non accetta il certificato HTTPS della box.",
      advice: [
        "Controlla data e ora di questo dispositivo: un orologio sbagliato fa sembrare scaduto un certificato valido.",
        "Apri la pagina della box ({boxPage}) e controlla il certificato; se risulta valido, contatta l'assistenza indicando il nome della box.",
      ],
    },
    "certificate.expired": {
      message: "Il certificato HTTPS della box è scaduto il {notAfter}, quindi il browser rifiuta il suo indirizzo HTTPS.{errorCode}",
      advice: [
        "Apri la pagina della box ({boxPage}): indica perché il rinnovo non è riuscito e cosa fare.",
        "La box si rinnova da sola appena raggiunge internet: controlla la sua connessione.",
      ],
    },
    "certificate.missing": {
      message: "La box non ha ancora un certificato HTTPS valido, quindi il suo indirizzo HTTPS non può funzionare.{errorCode}",
      advice: ["Apri la pagina della box ({boxPage}): mostra l'errore e cosa fare (collegamento al database, credenziale, abbonamento)."],
    },
    "certificate.wrong-name": {
      message: "Il certificato HTTPS della box non è per il nome usato da questa pagina ({host}): la box ha un nuovo nome.",
      advice: ["Apri la pagina della box ({boxPage}) per il suo indirizzo HTTPS attuale e aggiorna la box nel database (la box lo fa da sola quando si registra di nuovo)."],
    },
    unreachable: {
      message: "La box non risponde: è spenta, su un'altra rete, oppure un firewall la blocca.",
      advice: [
        "Controlla che la box sia accesa e collegata (cavo o Wi-Fi) alla stessa rete di questo dispositivo.",
        "Controlla che questo dispositivo sia sulla rete del negozio, non su una Wi-Fi ospiti o una connessione mobile.",
        "Prova ad aprire la pagina della box ({boxPage}) da questo dispositivo; se il suo indirizzo è cambiato, aggiorna la box nel database.",
      ],
    },
    "mixed-content": {
      message: "Questa pagina usa l'indirizzo http:// della box, che il browser blocca in una pagina https:// (contenuto misto).",
      advice: ["Usa l'indirizzo HTTPS della box (https://…, indicato nella pagina della box) nelle impostazioni di questa box nel database."],
    },
    "name-or-certificate": {
      message: "Questo browser non riesce ad aprire l'indirizzo HTTPS della box ({host}) e non può dire perché: il nome potrebbe non essere risolto su questa rete, il certificato della box potrebbe non essere accettato, oppure il servizio della box potrebbe essere fermo.",
      advice: [
        "Apri la pagina della box ({boxPage}) in una nuova scheda: se si apre, la box è accesa, e la sua pagina Diagnostica dice se questa rete risolve il suo nome.",
        "Se il router blocca il nome, consenti la zona {zone} nel suo DNS (dnsmasq: rebind-domain-ok=/{zone}/).",
      ],
    },
    errorCode: " La box mostra {code}.",
    degraded: "Nel frattempo questa pagina comunica con la box in HTTP semplice all'indirizzo {boxPage}: funziona, senza cifratura, e solo su questa rete.",
  },
};

/** The languages the texts exist in. */
export const LANGUAGES = /** @type {readonly Lang[]} */ (Object.freeze(["en", "it"]));

/**
 * @param {string} template
 * @param {Record<string, string>} values
 */
function fill(template, values) {
  return template.replace(/\{(\w+)\}/g, (whole, key) => (Object.hasOwn(values, key) ? /** @type {string} */ (values[key]) : whole));
}

/**
 * The zone of a box's HTTPS name: `<address>.<label>.<zone>` (docs/architecture.md).
 * @param {string} hostname
 */
export function zoneOf(hostname) {
  return hostname.split(".").slice(2).join(".");
}

/**
 * @typedef {object} Place
 * @property {string} host     the HTTPS name the page uses
 * @property {string} zone
 * @property {string} boxPage  the box's homepage by IP address, ending in "/": also where the degraded path goes
 */

/**
 * The message and advice for a diagnosis, in a language. Pure.
 * @param {Diagnosis} diagnosis
 * @param {Lang} lang
 * @param {Place} place
 * @returns {Text | null}  null for a box reached over HTTPS: nothing to say
 */
export function describe(diagnosis, lang, place) {
  if (diagnosis.reason === null) return null;
  const texts = TEXTS[lang];
  const key = diagnosis.reason === "certificate" ? /** @type {const} */ (`certificate.${diagnosis.detail ?? "untrusted"}`) : diagnosis.reason;
  const text = texts[key];
  const errorCode = diagnosis.errorCode ? fill(texts.errorCode, { code: diagnosis.errorCode }) : "";
  const values = { ...place, notAfter: (diagnosis.notAfter ?? "").slice(0, 10), errorCode };
  const advice = text.advice.map((line) => fill(line, values));
  if (diagnosis.via === "ip") advice.push(fill(texts.degraded, values));
  return { message: fill(text.message, values), advice };
}

// ---------------------------------------------------------------------------------------------------
// Addresses.

/**
 * Which address space Chromium's Local Network Access puts an IP address in (loopback, or local for
 * private, link-local and unique-local ranges); null for a public address, which needs no permission.
 * @param {string} ip
 * @returns {AddressSpace | null}
 */
export function addressSpace(ip) {
  const v4 = /^(\d{1,3})\.(\d{1,3})\.\d{1,3}\.\d{1,3}$/.exec(ip);
  if (v4) {
    const a = Number(v4[1]);
    const b = Number(v4[2]);
    if (a === 127) return "loopback";
    if (a === 10 || (a === 172 && b >= 16 && b <= 31) || (a === 192 && b === 168) || (a === 169 && b === 254)) return "local";
    return null;
  }
  const v6 = ip.toLowerCase();
  if (v6 === "::1") return "loopback";
  if (/^f[cd]/.test(v6) || /^fe[89ab]/.test(v6)) return "local";
  return null;
}

/**
 * Whether the browser blocks a request to this URL from a page with this protocol as mixed content:
 * plain http:// from https://, except to the names browsers count as secure (loopback).
 * @param {URL} url
 * @param {string} pageProtocol
 */
export function isMixedContent(url, pageProtocol) {
  if (pageProtocol !== "https:" || url.protocol !== "http:") return false;
  const host = url.hostname.replace(/^\[|\]$/g, "");
  return !(host === "localhost" || host.endsWith(".localhost") || addressSpace(host) === "loopback");
}

/**
 * @param {string} ip
 * @param {number} port
 */
function ipBase(ip, port) {
  return `http://${ip.includes(":") ? `[${ip}]` : ip}:${port}/`;
}

// ---------------------------------------------------------------------------------------------------
// The browser side: thin. Every request has a deadline; every failure becomes an Outcome.

/**
 * @typedef {object} PermissionsLike
 * @property {(descriptor: {name: string}) => Promise<{state: string}>} query
 */

/**
 * The permission names to ask, most specific first. Chromium 142 named it "local-network-access";
 * later versions split it into "local-network" and "loopback-network" and keep the old name
 * (Chromium 156 answers all three). A browser without it throws on every name.
 * @param {AddressSpace | null} space
 */
function permissionNames(space) {
  return space === "loopback" ? ["loopback-network", "local-network-access"] : ["local-network", "local-network-access"];
}

/**
 * @param {PermissionsLike | undefined} permissions
 * @param {AddressSpace | null} space
 * @returns {Promise<Permission>}
 */
async function permissionState(permissions, space) {
  if (!permissions) return "unknown";
  for (const name of permissionNames(space)) {
    try {
      const { state } = await permissions.query({ name });
      if (state === "granted" || state === "denied" || state === "prompt") return state;
    } catch {
      // Not a permission this browser knows: try the next name.
    }
  }
  return "unknown";
}

/**
 * A GET with a deadline. Any HTTP answer counts as "ok": the path to the box works, whatever it said.
 * @param {typeof fetch} fetchFn
 * @param {string} url
 * @param {AddressSpace | null} space  sent as targetAddressSpace, which lets Chromium 142+ (with the
 *   permission) make a plain-HTTP request to a local address from an https:// page
 * @param {number} timeoutMs
 * @returns {Promise<{outcome: "ok" | "failed" | "timeout", response: Response | null}>}
 */
async function probe(fetchFn, url, space, timeoutMs) {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeoutMs);
  /** @type {RequestInit & {targetAddressSpace?: AddressSpace}} */
  const init = { mode: "cors", credentials: "omit", signal: controller.signal };
  if (space) init.targetAddressSpace = space;
  try {
    return { outcome: "ok", response: await fetchFn(url, init) };
  } catch {
    return { outcome: controller.signal.aborted ? "timeout" : "failed", response: null };
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The certificate part of GET /api/status; null when the answer is not that JSON.
 * @param {Response} response
 * @returns {Promise<StatusFacts | null>}
 */
async function readStatus(response) {
  if (!response.ok) return null;
  try {
    const body = /** @type {{certificate?: Partial<StatusFacts>}} */ (await response.json());
    const c = body.certificate;
    if (!c || typeof c.status !== "string" || !Array.isArray(c.names)) return null;
    return { status: c.status, names: c.names.map(String), notAfter: c.notAfter ?? null, errorCode: c.errorCode ?? null };
  } catch {
    return null;
  }
}

/**
 * The box by its IP address: its status when this origin may read it (the box answers the database it is
 * paired with, docs/erp.md), else its ping, which every origin may read.
 * @param {typeof fetch} fetchFn
 * @param {string} base
 * @param {AddressSpace | null} space
 * @param {number} timeoutMs
 * @returns {Promise<{ip: Outcome, status: StatusFacts | null}>}
 */
async function askByIp(fetchFn, base, space, timeoutMs) {
  const status = await probe(fetchFn, `${base}api/status`, space, timeoutMs);
  if (status.response) {
    const facts = await readStatus(status.response);
    if (facts) return { ip: "ok", status: facts };
  }
  // A timeout will not get better with another route; a refusal may be CORS on /api/status only.
  if (status.outcome === "timeout") return { ip: "timeout", status: null };
  const ping = await probe(fetchFn, `${base}api/ping`, space, timeoutMs);
  return { ip: ping.outcome, status: null };
}

/**
 * @typedef {object} BoxClientOptions
 * @property {string} httpsUrl   the box's HTTPS address, `https://192-168-1-42.<label>.<zone>:8443/`
 * @property {string} ip         the box's LAN address (the one in its name)
 * @property {number} [httpPort] the box's plain HTTP port (8069)
 * @property {Lang} [lang]       "en" (default) or "it"
 * @property {number} [timeoutMs] per request of the diagnosis (4000)
 * @property {typeof fetch} [fetch]  for tests and embeddings; the global fetch otherwise
 * @property {PermissionsLike} [permissions]  navigator.permissions otherwise
 * @property {string} [pageProtocol]  location.protocol otherwise
 * @property {() => number} [now]  Date.now otherwise
 */

/**
 * @typedef {{ok: true, via: "https"}
 *   | {ok: true, via: "ip", degraded: true, reason: Reason, detail: CertificateDetail | null, message: string, advice: string[], permission: Permission}
 *   | {ok: false, reason: Reason, detail: CertificateDetail | null, message: string, advice: string[], permission: Permission}} ReachResult
 */

/** Thrown by box.fetch() when the box cannot be reached; `result` says why. */
export class BoxUnreachableError extends Error {
  /** @param {ReachResult & {ok: false}} result */
  constructor(result) {
    super(result.message);
    this.name = "BoxUnreachableError";
    this.result = result;
  }
}

/** The browser globals used, read once and typed here (no DOM typings in this repository). */
function browserDefaults() {
  const g = /** @type {{navigator?: {permissions?: PermissionsLike}, location?: {protocol: string}}} */ (/** @type {unknown} */ (globalThis));
  return { permissions: g.navigator?.permissions, pageProtocol: g.location?.protocol ?? "https:" };
}

/**
 * @param {Diagnosis} diagnosis
 * @param {Lang} lang
 * @param {Place} place
 * @param {Permission} permission
 * @returns {ReachResult}
 */
function toResult(diagnosis, lang, place, permission) {
  const text = describe(diagnosis, lang, place);
  if (!text || diagnosis.reason === null) return { ok: true, via: "https" };
  const common = { reason: diagnosis.reason, detail: diagnosis.detail, message: text.message, advice: text.advice, permission };
  return diagnosis.ok ? { ok: true, via: "ip", degraded: true, ...common } : { ok: false, ...common };
}

/**
 * A client for one box. `reach()` finds the path that works and says why HTTPS does not; `fetch()` goes
 * over that path.
 * @param {BoxClientOptions} options
 */
export function boxClient(options) {
  const defaults = browserDefaults();
  const fetchFn = options.fetch ?? globalThis.fetch.bind(globalThis);
  const permissions = options.permissions ?? defaults.permissions;
  const pageProtocol = options.pageProtocol ?? defaults.pageProtocol;
  const now = options.now ?? Date.now;
  const lang = options.lang ?? "en";
  const timeoutMs = options.timeoutMs ?? 4000;
  const httpsUrl = new URL(options.httpsUrl);
  const httpPort = options.httpPort ?? 8069;
  const space = addressSpace(options.ip);
  const ipUrl = ipBase(options.ip, httpPort);
  const place = { host: httpsUrl.hostname, zone: zoneOf(httpsUrl.hostname), boxPage: ipUrl };
  /** @type {ReachResult | null} */
  let last = null;

  /** @returns {Promise<Facts>} */
  async function gather() {
    const mixedContent = isMixedContent(httpsUrl, pageProtocol);
    const https = await probe(fetchFn, new URL("api/ping", httpsUrl).href, null, timeoutMs);
    const base = { https: https.outcome, mixedContent, hostname: httpsUrl.hostname, now: now() };
    if (https.outcome === "ok" || mixedContent) return { ...base, httpByName: "not-tried", ip: "not-tried", status: null, permission: "unknown" };
    const byName = `http://${httpsUrl.hostname}:${httpPort}/api/ping`;
    const [ip, httpByName] = await Promise.all([askByIp(fetchFn, ipUrl, space, timeoutMs), probe(fetchFn, byName, space, timeoutMs)]);
    // Read after the attempts: they are what makes Chromium ask, and a dismissed question turns into "denied".
    return { ...base, ...ip, httpByName: httpByName.outcome, permission: await permissionState(permissions, space) };
  }

  /** @returns {Promise<ReachResult>} */
  async function reach() {
    const facts = await gather();
    last = toResult(diagnose(facts), lang, place, facts.permission);
    return last;
  }

  /**
   * @param {string} path  "api/status" or "/api/status"
   * @param {RequestInit} [init]
   * @returns {Promise<Response>}
   */
  async function boxFetch(path, init = {}) {
    const result = last ?? (await reach());
    if (!result.ok) throw new BoxUnreachableError(result);
    const viaIp = result.via === "ip";
    const url = new URL(path.replace(/^\/+/, ""), viaIp ? ipUrl : httpsUrl).href;
    /** @type {RequestInit & {targetAddressSpace?: AddressSpace}} */
    const request = { mode: "cors", ...init };
    if (viaIp && space) request.targetAddressSpace = space;
    try {
      return await fetchFn(url, request);
    } catch (err) {
      // The path stopped working (the box moved, the network changed): the next call diagnoses again.
      last = null;
      throw err;
    }
  }

  return {
    reach,
    fetch: boxFetch,
    /** The last result of reach(), or null. */
    get last() {
      return last;
    },
  };
}
