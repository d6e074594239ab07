/**
 * Every string of the box's pages, in English and Italian. The error codes' meanings and remedies and the
 * refusal messages live in the shared catalogue (@boxcert/shared errors.ts) beside the codes; this module
 * has the rest. `Messages` is the English object's type, so a string missing in Italian does not compile.
 */
import { LANGUAGES } from "@boxcert/shared";
import type { Language } from "@boxcert/shared";

export type Lang = Language;
export { LANGUAGES };

export const LANG_COOKIE = "boxcert_lang";

const EN = {
  langName: "English",
  title: (name: string) => `${name} · IoT box`,
  switchLanguage: "Language",
  // Home
  name: "Name",
  ip: "IP address",
  identifier: "Identifier",
  httpAddress: "HTTP address",
  httpsAddress: "HTTPS address",
  database: "Database",
  logLevel: "Log level",
  httpsNoneChecking: "None yet: the box is asking for a certificate now.",
  httpsNoneError: "None: the box has no valid certificate (see the error below).",
  httpsNoneNever: "None yet: the box has not asked for a certificate.",
  notConnected: "Not connected.",
  howToConnect: "Connect the box from the gear menu (Connect to a database), with the connection token from the database's IoT page, or run:",
  credentialMissing: "the database UUID or the subscription code is missing",
  databaseUuid: "database",
  checking: "Checking the HTTPS certificate… this page reloads when it is done.",
  // Certificate banner
  certificate: "HTTPS certificate",
  status: "Status",
  statusWords: { ok: "Valid", renewing: "Valid, renewal pending", error: "No valid certificate", missing: "No certificate yet" },
  valid: "Valid",
  validFromUntil: (from: string, until: string) => `from ${from} until ${until}`,
  daysLeft: (n: number) => (n === 1 ? "1 day left" : `${n} days left`),
  expiredAgo: (n: number) => (n === 1 ? "expired 1 day ago" : `expired ${n} days ago`),
  renewalFrom: "Renewal from",
  subject: "Subject",
  issuer: "Issuer",
  names: "Names",
  lastCheck: "Last check",
  runningNow: "running now…",
  checkAgain: "Check again",
  diagnoseNetwork: "Diagnose the network (DNS, issuer, clock)",
  // Error section
  error: "Error",
  whatItMeans: "What it means",
  whatToDo: "What to do",
  detail: "Detail",
  issuerReason: "The issuer's reason",
  issuerAddress: "The issuer's address",
  httpStatus: (status: string, meaning: string) => `The issuer answered HTTP ${status}${meaning ? ` (${meaning})` : ""}.`,
  quoteStatus: (status: string) => `The 3-digit status to quote in the ticket: ${status}.`,
  logsWhere: (file: string) => `The log file on the box: ${file}.`,
  certificateFileWhere: (file: string) => `The certificate file: ${file}.`,
  openConnect: "Connect to a database…",
  openCredential: "Credential…",
  openLogs: "Download logs",
  openLogLevel: "Log level…",
  // Gear menu
  gear: "Settings",
  credential: "Credential",
  connect: "Connect to a database",
  downloadLogs: "Download logs",
  certificateDetails: "Certificate details",
  diagnostics: "Diagnostics",
  adminPassword: "Admin password",
  logout: "Log out",
  close: "Close",
  save: "Save",
  clear: "Clear",
  cancel: "Cancel",
  // Credential
  credentialIntro: "The database UUID and the subscription code the box sends to the issuer. They are shown masked.",
  credentialCurrent: "Current",
  credentialNone: "not set",
  dbUuidLabel: "Database UUID",
  codeLabel: "Subscription code",
  clearCredential: "Clear the credential",
  // Log level
  logLevelIntro: "How much the box writes to its log. Applied at once and kept across restarts.",
  logLevels: { debug: "debug", info: "info", warning: "warning", error: "error" },
  // Connect
  connectIntro: "Paste the connection token from the database's IoT page, or enter the three values.",
  tokenLabel: "Connection token",
  or: "or",
  serverLabel: "Database address (URL)",
  connectButton: "Connect",
  // Certificate details
  noCertificate: "The box has no certificate yet.",
  fingerprint: "SHA-256 fingerprint",
  serial: "Serial number",
  chain: "Certificate chain (PEM)",
  // Admin password
  passwordIntroNone: "No admin password is set: anyone on the network can use this menu. Set one to protect it.",
  passwordIntroSet: "An admin password protects this menu. Changing or clearing it needs the current one.",
  currentPassword: "Current password",
  newPassword: "New password",
  repeatPassword: "Repeat the new password",
  setPassword: "Set the password",
  clearPassword: "Clear the password",
  password: "Password",
  login: "Log in",
  locked: "This menu is protected by an admin password.",
  // Browser-side check of the HTTPS address
  browserCheckTrying: (url: string) => `Checking whether this device reaches ${url} …`,
  browserCheckOk: (url: string) => `This device reaches ${url}: you can use the HTTPS address.`,
  browserCheckFail: (url: string) =>
    `This device cannot reach ${url}. Its name may not resolve on this network (a DNS problem: see Diagnostics), or a firewall blocks it. The IP address keeps working.`,
  // Notices after a change
  notices: {
    credential: "The credential was saved; the box checks its certificate with it now.",
    "credential-cleared": "The credential was cleared.",
    "log-level": "The log level was changed.",
    connected: "The box is connected to the database; it asks for its certificate now.",
    "password-set": "The admin password was set.",
    "password-cleared": "The admin password was cleared.",
    "logged-in": "Logged in.",
    "logged-out": "Logged out.",
    check: "A check was started.",
  },
  // Refusals and bad input
  refused: "Refused",
  back: "Back to the box's homepage",
  refusals: {
    "foreign-origin": "This request came from another site. Changes to the box are accepted only from the box's own pages.",
    "foreign-host": "This request was sent to a name the box does not answer to. Open the box by its IP address or its HTTPS address.",
    csrf: "The form's security token is missing or expired (the box may have restarted). Reload the page and try again.",
    "login-needed": "This action needs the admin password: log in from the gear menu.",
    "wrong-password": "Wrong password.",
    "too-many": "Too many wrong passwords: wait a minute and try again.",
  },
  badInput: "Not saved",
  inputErrors: {
    "password-mismatch": "The two new passwords differ.",
    "too-short": "The password must have at least 8 characters.",
    "too-long": "The password must have at most 200 characters.",
    "bad-level": "The log level must be debug, info, warning or error.",
    "connect-missing": "Paste a connection token, or fill in the address, the database UUID and the subscription code.",
  },
  // Diagnostics page
  diagnosticsIntro: "What the box sees of its HTTPS name, the issuer and its clock. Runs at most once every 10 seconds.",
  runAgain: "Run again",
  diagnosticsFailed: (message: string) => `The diagnostics could not run: ${message}`,
  // HTTP status meanings (REQUEST_STATUS)
  statusMeanings: {
    400: "Bad Request",
    401: "Unauthorized: the box's signature was refused or its clock is off",
    403: "Forbidden",
    404: "Page Not Found: the issuer's address may be wrong",
    413: "Payload Too Large",
    415: "Unsupported Media Type",
    429: "Too Many Requests: the box will try again later",
    500: "Internal Server Error",
    502: "Bad Gateway: the certificate authority refused the order",
    503: "Service Unavailable: maintenance or overload",
    504: "Gateway Timeout",
  } as Record<number, string>,
};

export type Messages = typeof EN;

const IT: Messages = {
  langName: "Italiano",
  title: (name) => `${name} · sistema IoT`,
  switchLanguage: "Lingua",
  name: "Nome",
  ip: "Indirizzo IP",
  identifier: "Identificativo",
  httpAddress: "Indirizzo HTTP",
  httpsAddress: "Indirizzo HTTPS",
  database: "Database",
  logLevel: "Livello log",
  httpsNoneChecking: "Non ancora: il sistema IoT sta richiedendo un certificato.",
  httpsNoneError: "Nessuno: il sistema IoT non ha un certificato valido (vedi l'errore qui sotto).",
  httpsNoneNever: "Non ancora: il sistema IoT non ha ancora richiesto un certificato.",
  notConnected: "Non collegato.",
  howToConnect: "Collega il sistema IoT dal menu ingranaggio (Collega a un database), con il token di collegamento della pagina IoT del database, oppure esegui:",
  credentialMissing: "manca l'UUID del database o il codice abbonamento",
  databaseUuid: "database",
  checking: "Controllo del certificato HTTPS in corso… la pagina si ricarica al termine.",
  certificate: "Certificato HTTPS",
  status: "Stato",
  statusWords: { ok: "Valido", renewing: "Valido, rinnovo in sospeso", error: "Nessun certificato valido", missing: "Ancora nessun certificato" },
  valid: "Validità",
  validFromUntil: (from, until) => `dal ${from} al ${until}`,
  daysLeft: (n) => (n === 1 ? "manca 1 giorno" : `mancano ${n} giorni`),
  expiredAgo: (n) => (n === 1 ? "scaduto da 1 giorno" : `scaduto da ${n} giorni`),
  renewalFrom: "Rinnovo dal",
  subject: "Soggetto",
  issuer: "Emittente",
  names: "Nomi",
  lastCheck: "Ultimo controllo",
  runningNow: "in corso…",
  checkAgain: "Controlla di nuovo",
  diagnoseNetwork: "Diagnostica di rete (DNS, emittente, orologio)",
  error: "Errore",
  whatItMeans: "Cosa significa",
  whatToDo: "Cosa fare",
  detail: "Dettaglio",
  issuerReason: "Il motivo dell'emittente",
  issuerAddress: "L'indirizzo dell'emittente",
  httpStatus: (status, meaning) => `L'emittente ha risposto HTTP ${status}${meaning ? ` (${meaning})` : ""}.`,
  quoteStatus: (status) => `Il codice di stato a 3 cifre da indicare nel ticket: ${status}.`,
  logsWhere: (file) => `Il file di registro sul sistema IoT: ${file}.`,
  certificateFileWhere: (file) => `Il file del certificato: ${file}.`,
  openConnect: "Collega a un database…",
  openCredential: "Credenziale…",
  openLogs: "Scarica registri",
  openLogLevel: "Livello log…",
  gear: "Impostazioni",
  credential: "Credenziale",
  connect: "Collega a un database",
  downloadLogs: "Scarica registri",
  certificateDetails: "Dettagli del certificato",
  diagnostics: "Diagnostica",
  adminPassword: "Password amministratore",
  logout: "Esci",
  close: "Chiudi",
  save: "Salva",
  clear: "Cancella",
  cancel: "Annulla",
  credentialIntro: "L'UUID del database e il codice abbonamento che il sistema IoT invia all'emittente. Sono mostrati mascherati.",
  credentialCurrent: "Attuale",
  credentialNone: "non impostato",
  dbUuidLabel: "UUID del database",
  codeLabel: "Codice abbonamento",
  clearCredential: "Cancella la credenziale",
  logLevelIntro: "Quanto il sistema IoT scrive nel suo registro. Applicato subito e mantenuto dopo un riavvio.",
  logLevels: { debug: "debug", info: "info", warning: "avviso", error: "errore" },
  connectIntro: "Incolla il token di collegamento della pagina IoT del database, oppure inserisci i tre valori.",
  tokenLabel: "Token di collegamento",
  or: "oppure",
  serverLabel: "Indirizzo del database (URL)",
  connectButton: "Collega",
  noCertificate: "Il sistema IoT non ha ancora un certificato.",
  fingerprint: "Impronta SHA-256",
  serial: "Numero di serie",
  chain: "Catena dei certificati (PEM)",
  passwordIntroNone: "Nessuna password amministratore: chiunque sulla rete può usare questo menu. Impostane una per proteggerlo.",
  passwordIntroSet: "Una password amministratore protegge questo menu. Per cambiarla o cancellarla serve quella attuale.",
  currentPassword: "Password attuale",
  newPassword: "Nuova password",
  repeatPassword: "Ripeti la nuova password",
  setPassword: "Imposta la password",
  clearPassword: "Cancella la password",
  password: "Password",
  login: "Accedi",
  locked: "Questo menu è protetto da una password amministratore.",
  browserCheckTrying: (url) => `Verifica in corso: questo dispositivo raggiunge ${url}?`,
  browserCheckOk: (url) => `Questo dispositivo raggiunge ${url}: puoi usare l'indirizzo HTTPS.`,
  browserCheckFail: (url) =>
    `Questo dispositivo non raggiunge ${url}. Il nome potrebbe non risolversi su questa rete (un problema DNS: vedi Diagnostica), oppure un firewall lo blocca. L'indirizzo IP continua a funzionare.`,
  notices: {
    credential: "La credenziale è stata salvata; il sistema IoT controlla ora il certificato con essa.",
    "credential-cleared": "La credenziale è stata cancellata.",
    "log-level": "Il livello log è stato cambiato.",
    connected: "Il sistema IoT è collegato al database; ora richiede il certificato.",
    "password-set": "La password amministratore è stata impostata.",
    "password-cleared": "La password amministratore è stata cancellata.",
    "logged-in": "Accesso effettuato.",
    "logged-out": "Disconnesso.",
    check: "Un controllo è stato avviato.",
  },
  refused: "Rifiutato",
  back: "Torna alla pagina principale del sistema IoT",
  refusals: {
    "foreign-origin": "Questa richiesta proviene da un altro sito. Le modifiche al sistema IoT sono accettate solo dalle sue pagine.",
    "foreign-host": "Questa richiesta è stata inviata a un nome a cui il sistema IoT non risponde. Apri il sistema IoT con il suo indirizzo IP o il suo indirizzo HTTPS.",
    csrf: "Il token di sicurezza del modulo manca o è scaduto (il sistema IoT potrebbe essersi riavviato). Ricarica la pagina e riprova.",
    "login-needed": "Questa azione richiede la password amministratore: accedi dal menu ingranaggio.",
    "wrong-password": "Password errata.",
    "too-many": "Troppe password errate: aspetta un minuto e riprova.",
  },
  badInput: "Non salvato",
  inputErrors: {
    "password-mismatch": "Le due nuove password sono diverse.",
    "too-short": "La password deve avere almeno 8 caratteri.",
    "too-long": "La password deve avere al massimo 200 caratteri.",
    "bad-level": "Il livello log deve essere debug, info, warning o error.",
    "connect-missing": "Incolla un token di collegamento, oppure compila l'indirizzo, l'UUID del database e il codice abbonamento.",
  },
  diagnosticsIntro: "Cosa vede il sistema IoT del suo nome HTTPS, dell'emittente e del suo orologio. Al massimo una volta ogni 10 secondi.",
  runAgain: "Esegui di nuovo",
  diagnosticsFailed: (message) => `La diagnostica non è stata eseguita: ${message}`,
  statusMeanings: {
    400: "Richiesta non valida",
    401: "Non autorizzato: la firma del sistema IoT è stata rifiutata o il suo orologio è sbagliato",
    403: "Vietato",
    404: "Pagina non trovata: l'indirizzo dell'emittente potrebbe essere sbagliato",
    413: "Richiesta troppo grande",
    415: "Tipo di contenuto non supportato",
    429: "Troppe richieste: il sistema IoT riproverà più tardi",
    500: "Errore interno del server",
    502: "Gateway non valido: l'autorità di certificazione ha rifiutato l'ordine",
    503: "Servizio non disponibile: manutenzione o sovraccarico",
    504: "Timeout del gateway",
  },
};

const CATALOGUE: Record<Lang, Messages> = { en: EN, it: IT };

export function messages(lang: Lang): Messages {
  return CATALOGUE[lang];
}

export function isLang(value: unknown): value is Lang {
  return typeof value === "string" && (LANGUAGES as readonly string[]).includes(value);
}

/**
 * The page's language: `?lang=` first (the switch), then the cookie it set, then Accept-Language (by q,
 * the first of ours), then English.
 */
export function chooseLang(input: { query?: string | undefined; cookie?: string | undefined; acceptLanguage?: string | undefined }): Lang {
  if (isLang(input.query)) return input.query;
  if (isLang(input.cookie)) return input.cookie;
  const ranked = (input.acceptLanguage ?? "")
    .split(",")
    .map((part, index) => {
      const [tag, ...params] = part.trim().split(";");
      const q = params.map((p) => /^\s*q=([\d.]+)\s*$/.exec(p)).find((m) => m)?.[1];
      return { lang: (tag ?? "").trim().toLowerCase().split("-")[0] as string, q: q === undefined ? 1 : Number(q), index };
    })
    .filter((entry) => entry.q > 0)
    .sort((a, b) => b.q - a.q || a.index - b.index);
  return ranked.map((entry) => entry.lang).find(isLang) ?? "en";
}
