/**
 * The diagnostics report as an HTML fragment for the box's homepage, in English or Italian: a heading, one
 * verdict box per finding (class `diag-ok`, `diag-warn` or `diag-error`) with what to do, and a table of
 * what each server said. Every value is escaped; the texts are plain templates where `{name}` takes a value
 * and `backticks` mark code, so a value can never add markup.
 */
import { escapeHtml } from "@boxcert/shared";
import type { DiagnosticsReport, Lang } from "./index.ts";
import type { DnsVerdict, Lookup, LookupOutcome, Severity } from "./dns.ts";
import type { ClockVerdict } from "./issuer.ts";

const EN = {
  title: "Network diagnostics",
  intro: "Checked at {checkedAt} in {durationMs} ms, from the box.",
  "col.check": "Check",
  "col.server": "Server",
  "col.result": "Result",
  "col.time": "Time",
  "row.lan": "DNS of this network",
  "row.authoritative": "DNS of the zone",
  "row.issuer": "Issuer",
  "row.clock": "Clock",
  none: "none found",
  "lan.none": "no DNS server configured on the box",
  "authoritative.none": "not found: {error}",
  "outcome.answer": "{addresses}",
  "outcome.nxdomain": "NXDOMAIN: the name does not exist",
  "outcome.nodata": "no address in the answer",
  "outcome.servfail": "SERVFAIL: server failure",
  "outcome.refused": "REFUSED: query refused",
  "outcome.timeout": "no answer",
  "outcome.unreachable": "connection refused",
  "outcome.error": "error {code}",

  "dns.ok.title": "The HTTPS name works on this network",
  "dns.ok.body": "`{hostname}` resolves to {ip}, the box's address, through the DNS of this network.",
  "dns.ok.noDirect": "The zone's DNS servers could not be asked directly (outgoing DNS may be filtered); that does not matter while the DNS of this network answers.",
  "dns.rebinding.title": "The DNS of this network blocks the box's name (DNS rebinding protection)",
  "dns.rebinding.body":
    "The zone's DNS server answers `{hostname}` with {ip}, but the DNS server of this network ({servers}) does not pass the answer on. Routers with DNS rebinding protection drop answers that carry a private (LAN) address. The box still works at its IP address; on this network browsers cannot open it by its HTTPS name (some show `DNS_PROBE_FINISHED_NXDOMAIN`). Ask the network administrator to allow the zone `{zone}` on the router:",
  "dns.rebinding.dnsmasq": "dnsmasq: add `rebind-domain-ok=/{zone}/` to its configuration (or start it with `--rebind-domain-ok=/{zone}/`).",
  "dns.rebinding.openwrt": "OpenWrt (LuCI): Network → DHCP and DNS → Filter (General Settings on older versions) → Domain whitelist: add `{zone}`, then Save & Apply.",
  "dns.rebinding.unbound": "Unbound: `private-domain: \"{zone}\"` in the `server:` section, then reload it.",
  "dns.rebinding.fritzbox": "FRITZ!Box: Home Network → Network → Network Settings → DNS Rebind Protection → host name exceptions: add `{zone}`, then Apply.",
  "dns.rebinding.pfsense":
    "pfSense: Services → DNS Resolver → General Settings → Custom options: `server:` and, on the next line, `private-domain: \"{zone}\"`; with the DNS Forwarder, `rebind-domain-ok=/{zone}/` in its Advanced Settings. (The DNS Rebind Check under System → Advanced turns the protection off for every domain: prefer the line above.)",
  "dns.rebinding.publicDns":
    "Or, as the original documentation suggests: if the router lets you set its DNS servers, set them to a public DNS such as Google Public DNS (`8.8.8.8`, `8.8.4.4`) or Cloudflare (`1.1.1.1`).",
  "dns.rebinding.devices": "If the router does not support this, set the DNS on each device that works with the box (the POS computers and tablets) instead; each vendor's website explains how.",
  "dns.rebinding.terminals": "Payment terminals usually need no change: they come with DNS settings of their own.",
  "dns.wrong-address.title": "The name answers another address",
  "dns.wrong-address.authoritative":
    "The zone's DNS server answers `{hostname}` with {addresses}, but the box is now at {ip}: its address has changed since that name was shown. Open the box's current HTTPS address on this page; the certificate covers every address of the box, so nothing needs renewing. Then run these checks again.",
  "dns.wrong-address.lan":
    "The DNS of this network ({servers}) answers `{hostname}` with {addresses}, not with the box's address {ip}. A local entry for the name on the router or DNS server overrides it, or its cache is stale: remove the entries for `{zone}` on that server, or wait for its cache to expire, then check again.",
  "dns.name-unknown.title": "The zone does not know this name",
  "dns.name-unknown.body":
    "The zone's DNS server answers that `{hostname}` does not exist. A box's name is removed when its seat is freed or its certificate is revoked. Check the certificate again from this page: if the box is still eligible it gets its name back; if not, the certificate section says why.",
  "dns.authoritative-unreachable.title": "The zone's DNS servers cannot be reached",
  "dns.authoritative-unreachable.body":
    "No DNS server gave the box's address: not the DNS of this network ({servers}), and the zone's own servers ({authoritative}) did not answer. Either the box has no Internet access (check the cable, the gateway and the firewall: DNS on UDP and TCP port 53 must be allowed out), or the vendor's DNS service is down: check again later, and contact support with this page if it lasts.",
  "dns.lan-unreachable.title": "The DNS of this network does not answer",
  "dns.lan-unreachable.body":
    "The DNS servers the box uses ({servers}) did not answer, while the zone's server answers `{hostname}` with {ip}. Check the box's network settings (DHCP) and the router's DNS service, or set a public DNS such as Google Public DNS (`8.8.8.8`).",
  "dns.no-hostname.title": "No HTTPS name yet",
  "dns.no-hostname.body": "The box has no certificate yet, so there is no name to look up; the certificate section says why. The DNS check runs once the box has one.",

  "issuer.ok.title": "The issuer answers",
  "issuer.ok.body": "`{url}` answered HTTP {status} in {latency} ms, on a new connection.",
  "issuer.error.title": "The issuer cannot be reached",
  "issuer.error.body":
    "`{error}`. The box must reach `{host}` to get and renew its certificate (otherwise it shows `ERR_IOT_HTTPS_LOAD_REQUEST_EXCEPTION`). Check the Internet access, and that no firewall, proxy or VPN blocks HTTPS to it; network problems are for the system or network administrator.",

  "clock.behind": "the box's clock is {seconds} s behind the issuer's",
  "clock.ahead": "the box's clock is {seconds} s ahead of the issuer's",
  "clock.ok.title": "The box's clock is right",
  "clock.ok.body": "Measured against the issuer's clock (to ±1 s): {relation}.",
  "clock.warn.title": "The box's clock is off",
  "clock.warn.body":
    "Measured against the issuer's clock (to ±1 s): {relation}. Certificates and the box's signed requests depend on the time, and the issuer accepts at most 10 minutes of difference. Turn on time synchronisation (NTP) on the box.",
  "clock.error.title": "The box's clock is more than 10 minutes off",
  "clock.error.body":
    "Measured against the issuer's clock (to ±1 s): {relation}. The issuer refuses requests signed more than 10 minutes off, so the box cannot get or renew its certificate. Turn on time synchronisation (NTP) on the box and check its date and time.",
  "clock.unknown.title": "The clock was not compared",
  "clock.unknown.body": "The issuer's answer carried no date.",
} as const;

export type MessageKey = keyof typeof EN;

const IT: Record<MessageKey, string> = {
  title: "Diagnostica di rete",
  intro: "Controllo del {checkedAt}, durata {durationMs} ms, eseguito dalla box.",
  "col.check": "Controllo",
  "col.server": "Server",
  "col.result": "Risultato",
  "col.time": "Tempo",
  "row.lan": "DNS di questa rete",
  "row.authoritative": "DNS della zona",
  "row.issuer": "Emittente",
  "row.clock": "Orologio",
  none: "nessuno trovato",
  "lan.none": "nessun server DNS configurato sulla box",
  "authoritative.none": "non trovato: {error}",
  "outcome.answer": "{addresses}",
  "outcome.nxdomain": "NXDOMAIN: il nome non esiste",
  "outcome.nodata": "nessun indirizzo nella risposta",
  "outcome.servfail": "SERVFAIL: errore del server",
  "outcome.refused": "REFUSED: richiesta rifiutata",
  "outcome.timeout": "nessuna risposta",
  "outcome.unreachable": "connessione rifiutata",
  "outcome.error": "errore {code}",

  "dns.ok.title": "Il nome HTTPS funziona su questa rete",
  "dns.ok.body": "`{hostname}` viene risolto in {ip}, l'indirizzo della box, dal DNS di questa rete.",
  "dns.ok.noDirect":
    "Non è stato possibile interrogare direttamente i server DNS della zona (il DNS in uscita potrebbe essere filtrato); non è un problema finché il DNS di questa rete risponde.",
  "dns.rebinding.title": "Il DNS di questa rete blocca il nome della box (protezione DNS rebinding)",
  "dns.rebinding.body":
    "Il server DNS della zona risponde a `{hostname}` con {ip}, ma il server DNS di questa rete ({servers}) non inoltra la risposta. I router con protezione DNS rebinding scartano le risposte che contengono un indirizzo privato (della LAN). La box funziona comunque tramite il suo indirizzo IP; su questa rete i browser non la raggiungono con il nome HTTPS (alcuni mostrano `DNS_PROBE_FINISHED_NXDOMAIN`). Chiedi all'amministratore di rete di consentire la zona `{zone}` sul router:",
  "dns.rebinding.dnsmasq": "dnsmasq: aggiungi `rebind-domain-ok=/{zone}/` alla configurazione (oppure avvialo con `--rebind-domain-ok=/{zone}/`).",
  "dns.rebinding.openwrt":
    "OpenWrt (LuCI): Rete → DHCP e DNS → Filtri (Impostazioni generali nelle versioni meno recenti) → Domain whitelist: aggiungi `{zone}`, poi Salva e applica.",
  "dns.rebinding.unbound": "Unbound: `private-domain: \"{zone}\"` nella sezione `server:`, poi ricarica la configurazione.",
  "dns.rebinding.fritzbox": "FRITZ!Box: Rete domestica → Rete → Impostazioni di rete → Protezione DNS rebind → eccezioni per i nomi host: aggiungi `{zone}`, poi Applica.",
  "dns.rebinding.pfsense":
    "pfSense: Services → DNS Resolver → General Settings → Custom options: `server:` e, alla riga seguente, `private-domain: \"{zone}\"`; con il DNS Forwarder, `rebind-domain-ok=/{zone}/` nelle sue Advanced Settings. (Il DNS Rebind Check in System → Advanced disattiva la protezione per tutti i domini: preferisci la riga sopra.)",
  "dns.rebinding.publicDns":
    "In alternativa, come suggerisce la documentazione originale: se il router permette di configurare manualmente il DNS, imposta un DNS pubblico come il DNS di Google (`8.8.8.8`, `8.8.4.4`) o Cloudflare (`1.1.1.1`).",
  "dns.rebinding.devices":
    "Se il router non lo supporta, aggiorna le impostazioni DNS direttamente su ogni dispositivo che interagisce con la box (computer e tablet della cassa); le istruzioni si trovano sul sito web di ogni fornitore.",
  "dns.rebinding.terminals": "I terminali di pagamento di solito non richiedono modifiche al DNS: sono preconfigurati con impostazioni DNS proprie.",
  "dns.wrong-address.title": "Il nome risponde con un altro indirizzo",
  "dns.wrong-address.authoritative":
    "Il server DNS della zona risponde a `{hostname}` con {addresses}, ma ora la box ha l'indirizzo {ip}: l'indirizzo è cambiato da quando quel nome è stato mostrato. Apri l'indirizzo HTTPS attuale della box, in questa pagina; il certificato copre ogni indirizzo della box, quindi non serve rinnovarlo. Poi ripeti questi controlli.",
  "dns.wrong-address.lan":
    "Il DNS di questa rete ({servers}) risponde a `{hostname}` con {addresses} e non con l'indirizzo della box {ip}. Una voce locale per il nome sul router o sul server DNS lo sovrascrive, oppure la sua cache non è aggiornata: rimuovi le voci per `{zone}` da quel server o attendi la scadenza della cache, poi ripeti il controllo.",
  "dns.name-unknown.title": "La zona non conosce questo nome",
  "dns.name-unknown.body":
    "Il server DNS della zona risponde che `{hostname}` non esiste. Il nome di una box viene rimosso quando il suo posto viene liberato o il suo certificato revocato. Ricontrolla il certificato da questa pagina: se la box è ancora idonea riottiene il nome; altrimenti la sezione del certificato ne indica il motivo.",
  "dns.authoritative-unreachable.title": "I server DNS della zona non sono raggiungibili",
  "dns.authoritative-unreachable.body":
    "Nessun server DNS ha restituito l'indirizzo della box: non il DNS di questa rete ({servers}), e i server della zona ({authoritative}) non hanno risposto. O la box non ha accesso a Internet (controlla il cavo, il gateway e il firewall: il DNS su UDP e TCP, porta 53, deve essere consentito in uscita), oppure il servizio DNS del fornitore non è disponibile: riprova più tardi e, se il problema persiste, contatta l'assistenza allegando questa pagina.",
  "dns.lan-unreachable.title": "Il DNS di questa rete non risponde",
  "dns.lan-unreachable.body":
    "I server DNS usati dalla box ({servers}) non hanno risposto, mentre il server della zona risponde a `{hostname}` con {ip}. Controlla le impostazioni di rete della box (DHCP) e il servizio DNS del router, oppure imposta un DNS pubblico come il DNS di Google (`8.8.8.8`).",
  "dns.no-hostname.title": "Nessun nome HTTPS per ora",
  "dns.no-hostname.body":
    "La box non ha ancora un certificato, quindi non c'è un nome da verificare; la sezione del certificato ne indica il motivo. Il controllo DNS verrà eseguito quando la box ne avrà uno.",

  "issuer.ok.title": "L'emittente risponde",
  "issuer.ok.body": "`{url}` ha risposto HTTP {status} in {latency} ms, su una nuova connessione.",
  "issuer.error.title": "L'emittente non è raggiungibile",
  "issuer.error.body":
    "`{error}`. La box deve raggiungere `{host}` per ottenere e rinnovare il certificato (altrimenti mostra `ERR_IOT_HTTPS_LOAD_REQUEST_EXCEPTION`). Verifica l'accesso a Internet e che nessun firewall, proxy o VPN blocchi l'HTTPS verso di esso; i problemi di rete spettano all'amministratore di sistema o di rete.",

  "clock.behind": "l'orologio della box è indietro di {seconds} s rispetto a quello dell'emittente",
  "clock.ahead": "l'orologio della box è avanti di {seconds} s rispetto a quello dell'emittente",
  "clock.ok.title": "L'orologio della box è corretto",
  "clock.ok.body": "Confronto con l'orologio dell'emittente (precisione ±1 s): {relation}.",
  "clock.warn.title": "L'orologio della box non è preciso",
  "clock.warn.body":
    "Confronto con l'orologio dell'emittente (precisione ±1 s): {relation}. I certificati e le richieste firmate della box dipendono dall'ora, e l'emittente accetta al massimo 10 minuti di differenza. Attiva la sincronizzazione dell'ora (NTP) sulla box.",
  "clock.error.title": "L'orologio della box sbaglia di più di 10 minuti",
  "clock.error.body":
    "Confronto con l'orologio dell'emittente (precisione ±1 s): {relation}. L'emittente rifiuta le richieste firmate con più di 10 minuti di differenza, quindi la box non può ottenere né rinnovare il certificato. Attiva la sincronizzazione dell'ora (NTP) sulla box e verificane data e ora.",
  "clock.unknown.title": "L'orologio non è stato confrontato",
  "clock.unknown.body": "La risposta dell'emittente non conteneva la data.",
};

/** Every text of the fragment, per language (a test checks both have the same keys and placeholders). */
export const DIAGNOSTICS_MESSAGES: Record<Lang, Record<MessageKey, string>> = { en: EN, it: IT };

type Vars = Record<string, string | number>;

/** A template as HTML: `{name}` takes vars[name], `...` becomes <code>; everything escaped. */
export function fill(template: string, vars: Vars = {}): string {
  return template
    .split("`")
    .map((segment, i) => {
      const text = escapeHtml(segment.replace(/\{(\w+)\}/g, (_, name: string) => (name in vars ? String(vars[name]) : "")));
      return i % 2 === 1 ? `<code>${text}</code>` : text;
    })
    .join("");
}

function t(lang: Lang, key: MessageKey, vars?: Vars): string {
  return fill(DIAGNOSTICS_MESSAGES[lang][key], vars);
}

function box(severity: Severity, check: string, verdict: string, title: string, body: string, steps: string[] = [], notes: string[] = []): string {
  const list = steps.length > 0 ? `<ul>${steps.map((s) => `<li>${s}</li>`).join("")}</ul>` : "";
  const extra = notes.map((n) => `<p>${n}</p>`).join("");
  return `<div class="diag-box diag-${severity}" data-check="${escapeHtml(check)}" data-verdict="${escapeHtml(verdict)}"><h3>${title}</h3><p>${body}</p>${list}${extra}</div>`;
}

const REBINDING_STEPS: MessageKey[] = ["dns.rebinding.dnsmasq", "dns.rebinding.openwrt", "dns.rebinding.unbound", "dns.rebinding.fritzbox", "dns.rebinding.pfsense"];
const REBINDING_NOTES: MessageKey[] = ["dns.rebinding.publicDns", "dns.rebinding.devices", "dns.rebinding.terminals"];

function dnsBox(report: DiagnosticsReport, lang: Lang): string {
  const { dns } = report;
  const verdict: DnsVerdict = dns.verdict;
  const vars: Vars = {
    hostname: report.hostname ?? "",
    ip: report.ip,
    zone: report.zone ?? "",
    servers: dns.lan.map((l) => l.server).join(", ") || DIAGNOSTICS_MESSAGES[lang].none,
    authoritative: dns.authoritative.servers.join(", ") || DIAGNOSTICS_MESSAGES[lang].none,
    addresses: dns.mismatch?.addresses.join(", ") ?? "",
  };
  const title = t(lang, `dns.${verdict}.title`);
  switch (verdict) {
    case "rebinding":
      return box(
        dns.severity,
        "dns",
        verdict,
        title,
        t(lang, "dns.rebinding.body", vars),
        REBINDING_STEPS.map((k) => t(lang, k, vars)),
        REBINDING_NOTES.map((k) => t(lang, k, vars)),
      );
    case "wrong-address":
      return box(dns.severity, "dns", verdict, title, t(lang, dns.mismatch?.at === "authoritative" ? "dns.wrong-address.authoritative" : "dns.wrong-address.lan", vars));
    case "ok": {
      const reachedDirectly = dns.authoritative.lookups.some((l) => l.outcome === "answer");
      return box(dns.severity, "dns", verdict, title, t(lang, "dns.ok.body", vars), [], reachedDirectly ? [] : [t(lang, "dns.ok.noDirect")]);
    }
    default:
      return box(dns.severity, "dns", verdict, title, t(lang, `dns.${verdict}.body`, vars));
  }
}

function issuerHost(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return url;
  }
}

function relation(lang: Lang, offsetMs: number): string {
  const seconds = Math.round(Math.abs(offsetMs) / 1000);
  return DIAGNOSTICS_MESSAGES[lang][offsetMs >= 0 ? "clock.behind" : "clock.ahead"].replace("{seconds}", String(seconds));
}

function issuerBoxes(report: DiagnosticsReport, lang: Lang): string {
  const { issuer } = report;
  if (!issuer.reachable) {
    return box("error", "issuer", "unreachable", t(lang, "issuer.error.title"), t(lang, "issuer.error.body", { error: issuer.error ?? "", host: issuerHost(issuer.url) }));
  }
  const reached = box("ok", "issuer", "ok", t(lang, "issuer.ok.title"), t(lang, "issuer.ok.body", { url: issuer.url, status: issuer.status ?? "", latency: issuer.latencyMs ?? "" }));
  const verdict: ClockVerdict = issuer.clock;
  const vars = { relation: issuer.clockOffsetMs === null ? "" : relation(lang, issuer.clockOffsetMs) };
  return reached + box(issuer.clockSeverity, "clock", verdict, t(lang, `clock.${verdict}.title`), t(lang, `clock.${verdict}.body`, vars));
}

function outcomeText(lang: Lang, lookup: Lookup): string {
  const key: `outcome.${LookupOutcome}` = `outcome.${lookup.outcome}`;
  return t(lang, key, { addresses: lookup.addresses.join(", "), code: lookup.code ?? "" });
}

function row(cells: string[]): string {
  const [head, ...rest] = cells;
  return `<tr><th scope="row">${head}</th>${rest.map((c) => `<td>${c}</td>`).join("")}</tr>`;
}

function lookupRow(lang: Lang, label: MessageKey, lookup: Lookup): string {
  return row([t(lang, label), `<code>${escapeHtml(lookup.server)}</code>`, outcomeText(lang, lookup), `${lookup.ms} ms`]);
}

function table(report: DiagnosticsReport, lang: Lang): string {
  const rows: string[] = [];
  const { dns, issuer } = report;
  if (report.hostname !== null) {
    if (dns.lan.length === 0) rows.push(row([t(lang, "row.lan"), "—", t(lang, "lan.none"), ""]));
    for (const lookup of dns.lan) rows.push(lookupRow(lang, "row.lan", lookup));
    if (dns.authoritative.lookups.length === 0) {
      rows.push(row([t(lang, "row.authoritative"), "—", t(lang, "authoritative.none", { error: dns.authoritative.error ?? "" }), ""]));
    }
    for (const lookup of dns.authoritative.lookups) rows.push(lookupRow(lang, "row.authoritative", lookup));
  }
  rows.push(
    row([
      t(lang, "row.issuer"),
      `<code>${escapeHtml(issuer.url)}</code>`,
      issuer.reachable ? escapeHtml(`HTTP ${issuer.status ?? ""}`) : escapeHtml(issuer.error ?? ""),
      issuer.latencyMs === null ? "" : `${issuer.latencyMs} ms`,
    ]),
  );
  if (issuer.clockOffsetMs !== null) {
    const sign = issuer.clockOffsetMs >= 0 ? "+" : "−";
    rows.push(row([t(lang, "row.clock"), escapeHtml(issuer.serverDate ?? ""), escapeHtml(relation(lang, issuer.clockOffsetMs)), `${sign}${Math.round(Math.abs(issuer.clockOffsetMs) / 1000)} s ±1 s`]));
  }
  const head = `<thead><tr>${(["col.check", "col.server", "col.result", "col.time"] as const).map((k) => `<th scope="col">${t(lang, k)}</th>`).join("")}</tr></thead>`;
  return `<table class="diag-table">${head}<tbody>${rows.join("")}</tbody></table>`;
}

function when(iso: string): string {
  return iso.replace("T", " ").replace(/\.\d+Z$/, " UTC").replace(/Z$/, " UTC");
}

/** The report as an escaped HTML fragment: h2, verdict boxes, table. */
export function renderDiagnosticsHtml(report: DiagnosticsReport, lang: Lang): string {
  const language: Lang = lang === "it" ? "it" : "en";
  return `<section class="diagnostics" id="diagnostics" lang="${language}" data-severity="${escapeHtml(report.severity)}">
<h2>${t(language, "title")}</h2>
<p class="diag-intro">${t(language, "intro", { checkedAt: when(report.checkedAt), durationMs: report.durationMs })}</p>
${dnsBox(report, language)}
${issuerBoxes(report, language)}
${table(report, language)}
</section>`;
}
