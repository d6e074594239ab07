/**
 * The error catalogue: the six box error codes of the contract (the original product page's, listed in
 * docs/errors.md), the issuer's refusal reasons and the issuer's error codes with their HTTP statuses. The
 * homepage, the status API, the docs and the translations all read from here; a test fails when one of them
 * misses a code.
 */

/** The box's error codes, in the order the check and the load reach them. */
export const BOX_ERROR_CODES = [
  "ERR_IOT_HTTPS_CHECK_NO_SERVER",
  "ERR_IOT_HTTPS_CHECK_CERT_READ_EXCEPTION",
  "ERR_IOT_HTTPS_LOAD_NO_CREDENTIAL",
  "ERR_IOT_HTTPS_LOAD_REQUEST_EXCEPTION",
  "ERR_IOT_HTTPS_LOAD_REQUEST_STATUS",
  "ERR_IOT_HTTPS_LOAD_REQUEST_NO_RESULT",
] as const;
export type BoxErrorCode = (typeof BOX_ERROR_CODES)[number];

export interface BoxErrorInfo {
  /** What the code means, in one sentence. */
  meaning: string;
  /** What the person in front of the box should do, from the original page. */
  remedies: string[];
}

/** The languages of the box's interface. */
export const LANGUAGES = ["en", "it"] as const;
export type Language = (typeof LANGUAGES)[number];

/**
 * English. The homepage adds what depends on the case beside these: the detail, the HTTP status and its
 * meaning, the issuer's reason, buttons that open the gear menu's dialogs.
 */
export const BOX_ERRORS: Record<BoxErrorCode, BoxErrorInfo> = {
  ERR_IOT_HTTPS_CHECK_NO_SERVER: {
    meaning: "The server configuration is missing: the box is not connected to a database.",
    remedies: [
      "Connect the box to your database: gear menu → Connect to a database (paste the connection token from the database's IoT page, or its address, database UUID and subscription code), or run boxcert box connect.",
    ],
  },
  ERR_IOT_HTTPS_CHECK_CERT_READ_EXCEPTION: {
    meaning: "An error occurred while reading the existing HTTPS certificate file.",
    remedies: [
      "Check that the HTTPS certificate file (https.pem in the box's data folder) is readable by the box.",
      "If the file is damaged, remove it: the box then asks for a new certificate at its next check. The box never overwrites it by itself.",
    ],
  },
  ERR_IOT_HTTPS_LOAD_NO_CREDENTIAL: {
    meaning: "The subscription code and/or the database UUID are missing on the box.",
    remedies: [
      "Check that both values are set correctly: click the gear button, then Credential, and enter the database UUID and the subscription code.",
    ],
  },
  ERR_IOT_HTTPS_LOAD_REQUEST_EXCEPTION: {
    meaning: "An unexpected error occurred when the box tried to reach the certificate issuer: a network problem.",
    remedies: [
      "Check that the box has internet access.",
      "Check that no network restriction (a firewall, a VPN, a router with a built-in firewall) blocks the connection to the issuer; if one does, allow it until the certificate is generated.",
      "The full exception is in the box's log: gear menu → Download logs; set the Log level to debug (gear menu) for more detail.",
      "Network problems are for the system or network administrator to solve.",
    ],
  },
  ERR_IOT_HTTPS_LOAD_REQUEST_STATUS: {
    meaning: "The box reached the certificate issuer but received an unusual HTTP response (status code).",
    remedies: [
      "Open the issuer's address in a browser to check whether the service is temporarily down for maintenance.",
      "If it is down for maintenance, wait until it is available again.",
      "If the service is up, open a support ticket and include the 3-digit HTTP status code shown with this error.",
    ],
  },
  ERR_IOT_HTTPS_LOAD_REQUEST_NO_RESULT: {
    meaning: "The box reached the certificate issuer, but the issuer refused to provide an HTTPS certificate.",
    remedies: [
      "Check that the box and the database meet the eligibility requirements for an HTTPS certificate:",
      "the database must be a production instance: not a copy, a duplicate, a staging or a development environment;",
      "the subscription must be active (In progress) and have an IoT-box line, with a free seat for this box.",
      "If the IoT-box line was added after the box was connected to the database, reload this page (or Check again) or restart the box.",
    ],
  },
};

/** Italian, faithful to the original product page (its meanings and remedies, in its words). */
export const BOX_ERRORS_IT: Record<BoxErrorCode, BoxErrorInfo> = {
  ERR_IOT_HTTPS_CHECK_NO_SERVER: {
    meaning: "Configurazione del server mancante: il sistema IoT non è collegato a un database.",
    remedies: [
      "Collega il sistema IoT al tuo database: menu ingranaggio → Collega a un database (incolla il token di collegamento della pagina IoT del database, oppure il suo indirizzo, l'UUID del database e il codice abbonamento), oppure esegui boxcert box connect.",
    ],
  },
  ERR_IOT_HTTPS_CHECK_CERT_READ_EXCEPTION: {
    meaning: "Si è verificato un errore durante il tentativo di lettura del certificato HTTPS esistente.",
    remedies: [
      "Verifica che il file del certificato HTTPS (https.pem nella cartella dati del sistema IoT) sia leggibile.",
      "Se il file è danneggiato, rimuovilo: al controllo successivo il sistema IoT richiede un nuovo certificato. Il sistema IoT non lo sovrascrive mai da solo.",
    ],
  },
  ERR_IOT_HTTPS_LOAD_NO_CREDENTIAL: {
    meaning: "Manca il contratto (codice abbonamento) e/o l'UUID del database dal sistema IoT.",
    remedies: [
      "Verifica che entrambi i valori siano configurati correttamente: fai clic sul pulsante ingranaggio e infine su Credenziale, e inserisci l'UUID del database e il codice abbonamento.",
    ],
  },
  ERR_IOT_HTTPS_LOAD_REQUEST_EXCEPTION: {
    meaning: "Si è verificato un errore inaspettato quando il sistema IoT ha cercato di raggiungere l'emittente dei certificati: un problema di rete.",
    remedies: [
      "Verifica che il sistema IoT abbia accesso a Internet.",
      "Verifica che non ci siano restrizioni di rete (firewall, VPN, router con firewall integrato) che impediscono la comunicazione con l'emittente; in tal caso, disattivale finché il certificato non viene generato.",
      "I dettagli completi dell'eccezione sono nei registri del sistema IoT: menu ingranaggio → Scarica registri; imposta il Livello log su debug (menu ingranaggio) per più dettagli.",
      "Per risolvere i problemi di rete, contatta l'amministratore di sistema o di rete.",
    ],
  },
  ERR_IOT_HTTPS_LOAD_REQUEST_STATUS: {
    meaning: "Il sistema IoT ha raggiunto l'emittente dei certificati con successo, ma ha ricevuto una risposta HTTP (codice di stato) insolita.",
    remedies: [
      "Apri l'indirizzo dell'emittente in un browser per verificare che il servizio non sia temporaneamente fuori uso per manutenzione.",
      "Se è fuori uso per manutenzione, aspetta che torni disponibile.",
      "Se il servizio è operativo, apri un ticket di supporto e includi il codice di stato HTTP a 3 cifre mostrato con questo errore.",
    ],
  },
  ERR_IOT_HTTPS_LOAD_REQUEST_NO_RESULT: {
    meaning: "Il sistema IoT ha raggiunto l'emittente dei certificati, ma l'emittente si è rifiutato di fornire il certificato HTTPS.",
    remedies: [
      "Verifica che il sistema IoT e il database rispettino i requisiti di idoneità per un certificato HTTPS:",
      "il database deve essere un'istanza di produzione: non una copia, un duplicato, un ambiente di staging o di sviluppo;",
      "l'abbonamento deve essere attivo (stato In corso) e avere una riga abbonamento box IoT, con un posto libero per questo sistema IoT.",
      "Se la riga box IoT è stata aggiunta dopo aver collegato il sistema IoT al database, ricarica questa pagina (o Controlla di nuovo) oppure riavvia il sistema IoT.",
    ],
  },
};

export function boxErrorInfo(code: BoxErrorCode, lang: Language): BoxErrorInfo {
  return lang === "it" ? BOX_ERRORS_IT[code] : BOX_ERRORS[code];
}

/**
 * The issuer's refusal reasons, in the order eligibility is checked, then the identity and request
 * refusals, then those only a database report gets. `status` is the HTTP status the issuer answers with; the box shows every refusal that carries
 * a reason from this list as ERR_IOT_HTTPS_LOAD_REQUEST_NO_RESULT.
 */
export const REFUSALS = {
  unknown_database: { status: 403, message: "the database UUID is not known to the issuer" },
  code_mismatch: { status: 403, message: "the subscription code does not match the database's subscription" },
  database_not_production: { status: 403, message: "the database is not a production database" },
  subscription_not_in_progress: { status: 403, message: "the subscription is not in progress" },
  no_iot_box_line: { status: 403, message: "the subscription has no IoT-box line" },
  no_free_seat: { status: 403, message: "every IoT-box seat of the subscription is taken" },
  identity_mismatch: {
    status: 403,
    message: "this box identifier is registered with another identity key; an operator must free it first",
  },
  box_revoked: {
    status: 403,
    message: "this box was revoked by an operator: it gets no certificate and its name does not resolve",
  },
  box_not_enrolled: { status: 403, message: "the box is not enrolled for this label; enroll first" },
  csr_names_mismatch: { status: 403, message: "the CSR names differ from the names this box is owed" },
  /** A database report (POST /v1/database) names a subscription code the issuer does not know. */
  unknown_subscription: { status: 403, message: "the subscription code is not known to the issuer" },
} as const;
export type RefusalReason = keyof typeof REFUSALS;

/**
 * The issuer's error codes: every `{"error": {"code", "message"}}` answer, with its HTTP status and what it
 * means. The issuer picks a status only where an outcome becomes HTTP (its app.ts), from here; the box shows
 * each as ERR_IOT_HTTPS_LOAD_REQUEST_STATUS with the status. docs/errors.md lists them all (a test checks).
 */
export const ISSUER_ERRORS = {
  bad_json: { status: 400, meaning: "the body is not valid JSON" },
  bad_request: { status: 400, meaning: "wrong or missing fields, or a timestamp that is not an ISO 8601 date" },
  bad_csr: { status: 400, meaning: "the CSR is garbage, badly signed, or has a weak key (RSA under 2048 bits)" },
  bad_identity_key: { status: 400, meaning: "identityKey (a database report's databaseKey) is not an ECDSA P-256 public key (SPKI DER, base64)" },
  bad_signature: { status: 401, meaning: "the identity signature is missing or does not sign the body" },
  stale_request: { status: 401, meaning: "the request's timestamp is more than 10 minutes from the issuer's clock" },
  not_found: { status: 404, meaning: "no such endpoint (wrong issuer URL)" },
  body_too_large: { status: 413, meaning: "the body is over 64 KiB" },
  unsupported_media_type: { status: 415, meaning: "the body is not application/json" },
  rate_limited: { status: 429, meaning: "the label already got its certificates for the week; Retry-After says when" },
  internal_error: { status: 500, meaning: "a bug; the issuer logged it" },
  ca_refused: { status: 502, meaning: "the public CA refused the order; the message carries the CA's reason" },
  ca_unavailable: { status: 503, meaning: "the certificate source is unreachable, slow or busy; Retry-After says when to try again" },
  busy: { status: 503, meaning: "the issuer has as many requests in flight as it takes (--max-in-flight); Retry-After says when to come back" },
  store_unavailable: { status: 503, meaning: "the issuer's store (database) is unreachable; Retry-After says when to try again" },
} as const satisfies Record<string, { status: number; meaning: string }>;
export type IssuerErrorCode = keyof typeof ISSUER_ERRORS;
export const ISSUER_ERROR_CODES = Object.keys(ISSUER_ERRORS) as IssuerErrorCode[];

/** The refusal messages in Italian (the issuer answers in English; the box translates by reason). */
export const REFUSALS_IT: Record<RefusalReason, string> = {
  unknown_database: "l'UUID del database non è noto all'emittente",
  code_mismatch: "il codice abbonamento non corrisponde all'abbonamento del database",
  database_not_production: "il database non è un database di produzione",
  subscription_not_in_progress: "l'abbonamento non è in corso",
  no_iot_box_line: "l'abbonamento non ha una riga box IoT",
  no_free_seat: "tutti i posti box IoT dell'abbonamento sono occupati",
  identity_mismatch:
    "questo identificativo del sistema IoT è registrato con un'altra chiave d'identità: un operatore deve prima liberarlo",
  box_revoked: "questo sistema IoT è stato revocato da un operatore: non riceve certificati e il suo nome non si risolve",
  box_not_enrolled: "il sistema IoT non è registrato per questa etichetta; si registra di nuovo da solo",
  csr_names_mismatch: "i nomi della CSR sono diversi da quelli dovuti a questo sistema IoT",
  unknown_subscription: "il codice abbonamento non è noto all'emittente",
};
export const REFUSAL_REASONS = Object.keys(REFUSALS) as RefusalReason[];

export function isRefusalReason(value: unknown): value is RefusalReason {
  return typeof value === "string" && Object.prototype.hasOwnProperty.call(REFUSALS, value);
}

/** The code as displayed: REQUEST_STATUS carries the HTTP status number. */
export function formatErrorCode(code: BoxErrorCode, status?: number): string {
  return code === "ERR_IOT_HTTPS_LOAD_REQUEST_STATUS" && status !== undefined ? `${code} ${status}` : code;
}
