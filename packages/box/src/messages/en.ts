/**
 * The box's English texts, the shape of the whole catalogue (`Messages`): the pages (homepage, gear menu,
 * message pages), the network diagnostics and the error catalogue. The error codes' meanings and remedies
 * and the refusal messages live in @boxcert/shared (errors.ts), beside the codes, and are referenced here.
 *
 * Diagnostics texts are plain templates: `{name}` takes a value and `backticks` mark code (diagnostics/render.ts).
 */
import { BOX_ERRORS, REFUSAL_REASONS, REFUSALS } from "@boxcert/shared";
import type { BoxErrorCode, BoxErrorInfo, RefusalReason } from "@boxcert/shared";

const PAGES = {
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
  // The registration with the database (docs/erp.md)
  registration: "Registration",
  registered: (last: string) => `Registered with the database (last: ${last})`,
  registrationPending: "Registering with the database…",
  registrationNotPaired:
    "Not registered with the database: the box was connected without a pairing secret (the Credential, or the address and credential typed in). Connect it with a connection token from the database's IoT page to register it.",
  registrationPairingInvalid:
    "The database refused the pairing secret: it is unknown, already used or expired (a secret is valid for 24 hours and for one box). Get a new connection token from the database's IoT page and connect again.",
  registrationRefused: (code: string) => `The database refused the registration (${code}); the box tries again later.`,
  registrationFailed: "The last registration with the database failed; the box tries again later.",
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
    "connected-paired": "The box is connected to the database; it asks for its certificate and registers with the database now.",
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
    busy: "The box is checking other passwords right now: try again in a second.",
    "unpaired-origin": "This request did not come from the pages of the database the box is paired with.",
  },
  badInput: "Not saved",
  inputErrors: {
    "password-mismatch": "The two new passwords differ.",
    "too-short": "The password must have at least 8 characters.",
    "too-long": "The password must have at most 200 characters.",
    "bad-level": "The log level must be debug, info, warning or error.",
    "connect-missing": "Paste a connection token, or fill in the address, the database UUID and the subscription code.",
  },
  // Asked before a change that replaces the connection or sends it unencrypted
  confirmHeading: "Replace the box's connection?",
  confirmReplace: "The box already holds a database's credential. Saving these values replaces it: from now on the box asks for its certificate with the new ones.",
  confirmPlaintext: "This database's address starts with http://: what the box and the database say to each other travels unencrypted on the network, where anyone on the way can read or change it. Use its https:// address unless the database's vendor says otherwise.",
  confirmCurrent: "Now",
  confirmNew: "New",
  confirmButton: "Save anyway",
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

const DIAGNOSTICS = {
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

export type PageMessages = typeof PAGES;
export type DiagnosticsKey = keyof typeof DIAGNOSTICS;
export type Notice = keyof PageMessages["notices"];

export interface ErrorMessages {
  /** What each error code means and what to do. */
  codes: Record<BoxErrorCode, BoxErrorInfo>;
  /** The issuer's refusal reasons, as the box shows them. */
  refusals: Record<RefusalReason, string>;
}

/** One language's texts; every language has every string (a missing one does not compile). */
export interface Messages {
  pages: PageMessages;
  diagnostics: Record<DiagnosticsKey, string>;
  errors: ErrorMessages;
}

export const EN: Messages = {
  pages: PAGES,
  diagnostics: DIAGNOSTICS,
  errors: {
    codes: BOX_ERRORS,
    refusals: Object.fromEntries(REFUSAL_REASONS.map((reason) => [reason, REFUSALS[reason].message])) as Record<RefusalReason, string>,
  },
};
