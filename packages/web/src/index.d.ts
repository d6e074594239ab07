/**
 * Types of @boxcert/web (boxcert-web.js). Hand-written because the module is plain JavaScript that
 * browsers load as it is (no build step in this repository); packages/web/test/types.test.ts makes tsc
 * check that the module's JSDoc types and these agree. What each reason means: docs/web.md.
 */

/** How one request of the diagnosis ended: any HTTP answer is "ok". */
export type Outcome = "ok" | "failed" | "timeout" | "not-tried";

/** The browser's local-network permission for this page; "unknown" when the browser has none (Firefox, Safari). */
export type Permission = "granted" | "denied" | "prompt" | "unknown";

export type Reason =
  | "lna-denied"
  | "lna-prompt"
  | "name-not-resolving"
  | "certificate"
  | "unreachable"
  | "mixed-content"
  | "name-or-certificate";

/** For reason "certificate": what is wrong with it. */
export type CertificateDetail = "untrusted" | "expired" | "missing" | "wrong-name";

export type Lang = "en" | "it";

/** Chromium's Local Network Access address spaces a box can be in. */
export type AddressSpace = "loopback" | "local";

/** What the box's GET /api/status says of its certificate, as far as the diagnosis needs it. */
export interface StatusFacts {
  /** "ok" | "renewing" | "error" | "missing" */
  status: string;
  names: string[];
  notAfter: string | null;
  errorCode: string | null;
}

/** The facts reach() gathers; diagnose() decides from them alone. */
export interface Facts {
  /** GET <httpsUrl>api/ping */
  https: Exclude<Outcome, "not-tried">;
  /** The URL is plain http:// to a name the browser does not count as secure, from an https:// page. */
  mixedContent: boolean;
  /** GET http://<name>:<httpPort>/api/ping: does the name resolve to the box? */
  httpByName: Outcome;
  /** The box asked by its IP address (/api/status, else /api/ping). */
  ip: Outcome;
  /** The box's status, when it could be read by IP. */
  status: StatusFacts | null;
  /** Read after the attempts (they may make the browser ask). */
  permission: Permission;
  /** The HTTPS name the page uses. */
  hostname: string;
  /** Milliseconds since the epoch. */
  now: number;
}

export interface Diagnosis {
  ok: boolean;
  via: "https" | "ip" | null;
  reason: Reason | null;
  detail: CertificateDetail | null;
  /** For an expired certificate. */
  notAfter: string | null;
  /** The box's own error code, for a missing or expired certificate. */
  errorCode: string | null;
}

/** Where the texts point the cashier. */
export interface Place {
  /** The HTTPS name the page uses. */
  host: string;
  zone: string;
  /** The box's homepage by IP address, ending in "/": also where the degraded path goes. */
  boxPage: string;
}

export interface Text {
  message: string;
  /** One step a line, in order. */
  advice: string[];
}

export type ReachResult =
  | { ok: true; via: "https" }
  | {
      ok: true;
      via: "ip";
      /** Plain HTTP by IP address: unencrypted, this network only. Show it. */
      degraded: true;
      reason: Reason;
      detail: CertificateDetail | null;
      message: string;
      advice: string[];
      permission: Permission;
    }
  | {
      ok: false;
      reason: Reason;
      detail: CertificateDetail | null;
      message: string;
      advice: string[];
      permission: Permission;
    };

export interface PermissionsLike {
  query(descriptor: { name: string }): Promise<{ state: string }>;
}

export interface BoxClientOptions {
  /** The box's HTTPS address, `https://192-168-1-42.<label>.<zone>:8443/`. */
  httpsUrl: string;
  /** The box's LAN address (the one encoded in its name). */
  ip: string;
  /** The box's plain HTTP port; 8069. */
  httpPort?: number;
  /** "en" (default) or "it". */
  lang?: Lang;
  /** The deadline of each request of the diagnosis; 4000 ms. */
  timeoutMs?: number;
  /** For tests and embeddings: the global fetch otherwise. */
  fetch?: typeof fetch;
  /** navigator.permissions otherwise. */
  permissions?: PermissionsLike;
  /** location.protocol otherwise. */
  pageProtocol?: string;
  /** Date.now otherwise. */
  now?: () => number;
}

export interface BoxClient {
  /** Finds the path to the box that works, and says why HTTPS does not. */
  reach(): Promise<ReachResult>;
  /**
   * A request to the box over the path reach() found (calls reach() first when it has not run). Throws
   * BoxUnreachableError when the box cannot be reached; a network failure makes the next call diagnose again.
   */
  fetch(path: string, init?: RequestInit): Promise<Response>;
  /** The last result of reach(), or null. */
  readonly last: ReachResult | null;
}

export declare class BoxUnreachableError extends Error {
  constructor(result: ReachResult & { ok: false });
  result: ReachResult & { ok: false };
}

export declare const LANGUAGES: readonly Lang[];

export declare function boxClient(options: BoxClientOptions): BoxClient;
/** The decision: facts in, diagnosis out. Pure. */
export declare function diagnose(facts: Facts): Diagnosis;
/** The message and advice for a diagnosis; null when there is nothing to say (reached over HTTPS). */
export declare function describe(diagnosis: Diagnosis, lang: Lang, place: Place): Text | null;
/** What the box says is wrong with its certificate, or null. */
export declare function certificateProblem(status: StatusFacts | null, hostname: string, now: number): Partial<Diagnosis> | null;
/** The address space Chromium puts an IP address in; null for a public address. */
export declare function addressSpace(ip: string): AddressSpace | null;
/** Whether a request to this URL from a page with this protocol is blocked as mixed content. */
export declare function isMixedContent(url: URL, pageProtocol: string): boolean;
/** The zone of a box's HTTPS name `<address>.<label>.<zone>`. */
export declare function zoneOf(hostname: string): string;
