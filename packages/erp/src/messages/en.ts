/**
 * The database pages' English texts; their shape (`Messages`) is the catalogue's, which it.ts follows.
 * Functions take values already formatted (dates, numbers); the pages escape everything.
 */
import type { DatabaseKind } from "../wire.ts";

export const EN = {
  langName: "English",
  switchLanguage: "Language",
  appName: "boxcert database",
  title: (page: string) => `${page} · boxcert database`,
  nav: { iot: "IoT", pos: "POS test", logout: "Log out" },
  noLogin: "These pages run without a login (--insecure-no-login): anyone who reaches them sees the subscription code.",
  // Login
  loginTitle: "Log in",
  loginIntro: "The IoT page shows the subscription code: log in with the operator's password.",
  password: "Password",
  login: "Log in",
  // IoT page
  iotTitle: "IoT boxes",
  databaseHeading: "This database",
  dbUuid: "Database UUID",
  declaredKind: "Kind (as this database declares it)",
  kinds: { production: "production", staging: "staging", development: "development", duplicate: "duplicate" } satisfies Record<DatabaseKind, string>,
  issuerAnswer: "The issuer's answer",
  recordedAs: (kind: string, subscription: string, at: string) => `The issuer records this database as ${kind} (subscription ${subscription}; reported ${at}).`,
  notProduction: "Boxes connected to this database get no HTTPS certificate: the issuer gives certificates only to the production database of a subscription.",
  notReported: "Not reported to the issuer yet.",
  reportFailed: (detail: string, next: string) => `The last report to the issuer failed: ${detail}. Next attempt: ${next}.`,
  connectHeading: "Connect a box",
  connectIntro:
    "Makes a connection token with a new one-time pairing secret, valid for 24 hours and for one box. Paste it into the box's homepage (gear menu → Connect to a database) or run boxcert box connect --token.",
  connectButton: "Connect a box",
  tokenLabel: "Connection token",
  tokenValidUntil: (at: string) => `Valid until ${at}, for one box. It holds the subscription code: give it to the installer only.`,
  copy: "Copy",
  copied: "Copied",
  boxesHeading: "Boxes",
  noBoxes: "No box has registered with this database yet.",
  columns: { name: "Name", https: "HTTPS address", expiry: "Certificate expiry", lastSeen: "Last seen", version: "Version", logs: "Logs" },
  noCertificate: "no certificate yet",
  daysLeft: (n: number) => (n === 1 ? "1 day left" : `${n} days left`),
  expiredAgo: (n: number) => (n === 1 ? "expired 1 day ago" : `expired ${n} days ago`),
  downloadLogs: "Download logs",
  reaching: "Reaching the box…",
  unreachable:
    "The box cannot be reached from this device: its HTTPS name may not resolve on this network, or this device is not on the shop's network.",
  // POS test page
  posTitle: "POS test",
  posIntro:
    "Calls each box from this browser, as a point-of-sale page does, at its HTTPS address; when that does not work, the page says why and what to do, and goes on over the box's IP address where the browser allows it (degraded). The box answers this database's address only.",
  noPosBoxes: "No box has an HTTPS address yet.",
  callBox: "Call the box",
  testRequest: "Test request",
  answered: (status: string) => `The box answered HTTP ${status}:`,
  posUnreachable: "The box cannot be reached from this device, or it does not accept calls from this database's address (it answers the database it is paired with only).",
  columnsPos: { address: "Address", call: "Call", answer: "Answer" },
  viaHttps: "over HTTPS by name",
  degraded: "degraded: over the box's IP address",
  whatToDo: "What to do:",
  callFailed: (detail: string) => `The call failed on the way (${detail}); call the box again to look for a path.`,
  // Refusals
  refused: "Refused",
  back: "Back",
  refusals: {
    "foreign-origin": "This request came from another site. Changes are accepted only from these pages.",
    "foreign-host": "This request was sent to a name this database does not answer to.",
    csrf: "The form's security token is missing or expired. Reload the page and try again.",
    "login-needed": "Log in first.",
    "wrong-password": "Wrong password.",
    "too-many": "Too many wrong passwords: wait a minute and try again.",
  },
};

export type Messages = typeof EN;
export type Refusal = keyof Messages["refusals"];
