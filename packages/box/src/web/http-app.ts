/**
 * The routes of one listener on node's own HTTP server: the small part of fastify's API the box's web
 * layer uses, kept under the same names so the route modules read as before.
 *
 * Why hand-written: a box is a small device whose cold start and idle memory are budgeted (docs/box.md
 * "Memory and start-up"). With fastify the compiled box started in 167 ms against 94 ms for a bare node
 * https server, and CPU profiles put what was left on fastify: ~25 ms compiling its part of the bundle,
 * ~20 ms loading the node built-ins it requires at load (http2, perf_hooks, diagnostics_channel,
 * assert...), ~40 ms evaluating it and its dependencies (find-my-way, avvio, semver, light-my-request...),
 * ~30 ms building two instances and registering the routes on each. The box has about twenty routes and
 * needs none of its plugin system, schemas, router or per-request logging.
 *
 * What it does, as fastify did for the box:
 *   - routes by method and exact path, a `:name` segment taking any one non-empty segment (decoded); a GET
 *     route answers HEAD too; anything else is a 404 (a known path with another method included);
 *   - the query (duplicate names give an array), the route's params, the client's address;
 *   - a body is read only when a parser takes its media type (415 otherwise), within the route's bodyLimit
 *     or else the parser's (413 over it); JSON is built in (400 when it does not parse);
 *   - preHandler hooks (all routes', then the route's own), then the handler, whose returned value is sent
 *     when it did not send; onSend hooks see every answer, the 404s and errors included;
 *   - a thrown error is a 500 that says nothing of it (it is logged); 503 once the listener is closing.
 */
import { STATUS_CODES } from "node:http";
import type { IncomingHttpHeaders, IncomingMessage, OutgoingHttpHeaders, ServerResponse } from "node:http";
import type { Logger } from "pino";

/** The body limit of a parser that sets none (the JSON one), as fastify's default: 1 MiB. */
const DEFAULT_BODY_LIMIT = 1024 * 1024;

export interface HttpRequest {
  readonly method: string;
  /** As sent: the path and the query. */
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
  readonly query: Readonly<Record<string, string | string[]>>;
  readonly params: Readonly<Record<string, string>>;
  /** The client's address. */
  readonly ip: string;
  /** What the body's parser made of it; undefined without a body. */
  readonly body: unknown;
  /** The path of the route that matched, as declared (`/static/:file`); undefined for a 404. */
  readonly routeOptions: { readonly url: string | undefined };
}

/** A body as it goes on the wire; onSend hooks receive it and return it (or another). */
export type Payload = string | Buffer | undefined;
export type Handler = (request: HttpRequest, reply: HttpReply) => Promise<unknown>;
export type PreHandler = (request: HttpRequest, reply: HttpReply) => Promise<unknown>;
export type OnSend = (request: HttpRequest, reply: HttpReply, payload: Payload) => Promise<Payload>;

interface Hooks {
  preHandler: PreHandler;
  onSend: OnSend;
}

export interface RouteOptions {
  /** Bytes of body this route takes, whatever the parser's own limit. */
  bodyLimit?: number;
  /** Runs after the hooks of every route (a refusal sends, and the handler does not run). */
  preHandler?: PreHandler;
}

interface Route {
  method: string;
  path: string;
  segments: readonly string[];
  options: RouteOptions;
  handler: Handler;
}

interface Parser {
  bodyLimit: number;
  parse: (body: string) => unknown;
}

/** A request the client got wrong: answered with its status and message, not logged. */
class HttpError extends Error {
  readonly status: number;

  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

function errorBody(status: number, message: string): { statusCode: number; error: string; message: string } {
  return { statusCode: status, error: STATUS_CODES[status] ?? "Error", message };
}

type HeaderValue = string | number | string[];

/** What a handler answers with; chainable, like fastify's reply. */
export class HttpReply {
  readonly #request: HttpRequest;
  readonly #res: ServerResponse;
  readonly #onSend: readonly OnSend[];
  readonly #logger: Logger;
  #status = 200;
  readonly #headers = Object.create(null) as Record<string, HeaderValue>;
  #sent = false;

  constructor(request: HttpRequest, res: ServerResponse, onSend: readonly OnSend[], logger: Logger) {
    this.#request = request;
    this.#res = res;
    this.#onSend = onSend;
    this.#logger = logger;
  }

  /** Whether send() was called: the hooks and handler after it do not run. */
  get sent(): boolean {
    return this.#sent;
  }

  code(status: number): this {
    this.#status = status;
    return this;
  }

  /** Sets a header, replacing it; but Set-Cookie adds up (a page sets the CSRF and the session cookies). */
  header(name: string, value: HeaderValue): this {
    const key = name.toLowerCase();
    const held = this.#headers[key];
    this.#headers[key] = key === "set-cookie" && held !== undefined ? [held, value].flat().map(String) : value;
    return this;
  }

  getHeader(name: string): HeaderValue | undefined {
    return this.#headers[name.toLowerCase()];
  }

  type(contentType: string): this {
    return this.header("content-type", contentType);
  }

  redirect(url: string, status: number): this {
    return this.code(status).header("location", url).send();
  }

  /** A string or Buffer as it is, anything else as JSON; undefined for no body. */
  send(payload?: unknown): this {
    // A second answer has nowhere to go (fastify, too, only warns).
    if (this.#sent) return this;
    this.#sent = true;
    void this.#deliver(this.#serialize(payload));
    return this;
  }

  #serialize(payload: unknown): Payload {
    if (payload === undefined) return undefined;
    const [body, type] =
      typeof payload === "string"
        ? [payload, "text/plain; charset=utf-8"]
        : Buffer.isBuffer(payload)
          ? [payload, "application/octet-stream"]
          : [JSON.stringify(payload), "application/json; charset=utf-8"];
    if (this.#headers["content-type"] === undefined) this.#headers["content-type"] = type;
    return body;
  }

  async #deliver(payload: Payload): Promise<void> {
    try {
      for (const hook of this.#onSend) payload = await hook(this.#request, this, payload);
      this.#write(payload);
    } catch (err) {
      // A hook failed or a header value is not one Node sends: that answer cannot be trusted, a bare 500 can.
      this.#logger.error({ event: "reply_failed", err, route: this.#request.routeOptions.url ?? null }, "an answer could not be sent");
      if (this.#res.headersSent) {
        this.#res.destroy();
        return;
      }
      this.#res.writeHead(500, { "content-length": 0 });
      this.#res.end();
    }
  }

  #write(payload: Payload): void {
    const headers: OutgoingHttpHeaders = { ...this.#headers };
    const bodyless = this.#status === 204 || this.#status === 304;
    if (!bodyless) headers["content-length"] = payload === undefined ? 0 : Buffer.byteLength(payload);
    // On a connection Node has already answered (408) or the client closed, both calls do nothing.
    this.#res.writeHead(this.#status, headers);
    this.#res.end(bodyless || this.#request.method === "HEAD" ? undefined : payload);
  }
}

/** `?a=1&b=2&b=3` as { a: "1", b: ["2", "3"] }, own names only (`?__proto__=` is a name like any other). */
function parseQuery(search: string): Record<string, string | string[]> {
  const query = Object.create(null) as Record<string, string | string[]>;
  for (const [name, value] of new URLSearchParams(search)) {
    const held = query[name];
    query[name] = held === undefined ? value : [held, value].flat();
  }
  return query;
}

/** The params when path matches the route's segments, null otherwise (an undecodable param matches nothing). */
function matchPath(segments: readonly string[], path: string): Record<string, string> | null {
  const parts = path.split("/");
  if (parts.length !== segments.length) return null;
  const params = Object.create(null) as Record<string, string>;
  for (const [i, segment] of segments.entries()) {
    const part = parts[i] as string;
    if (!segment.startsWith(":")) {
      if (part !== segment) return null;
      continue;
    }
    if (part === "") return null;
    try {
      params[segment.slice(1)] = decodeURIComponent(part);
    } catch {
      return null;
    }
  }
  return params;
}

function parseJson(body: string): unknown {
  if (body === "") throw new HttpError(400, "the JSON body is empty");
  try {
    return JSON.parse(body);
  } catch {
    throw new HttpError(400, "the body is not valid JSON");
  }
}

/** The body as text, refused (413) as soon as it is known to be over limit: by its Content-Length, or while it arrives. */
function readText(req: IncomingMessage, limit: number): Promise<string> {
  if (Number(req.headers["content-length"]) > limit) return Promise.reject(new HttpError(413, "the body is too large"));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let length = 0;
    const onData = (chunk: Buffer): void => {
      length += chunk.length;
      if (length <= limit) {
        chunks.push(chunk);
        return;
      }
      req.off("data", onData);
      reject(new HttpError(413, "the body is too large"));
    };
    req.on("data", onData);
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    // A client gone or timed out (Node answered 408) before the end: nothing more will come.
    req.on("close", () => reject(new HttpError(400, "the body was cut short")));
  });
}

interface MutableRequest extends HttpRequest {
  params: Record<string, string>;
  body: unknown;
  routeOptions: { url: string | undefined };
}

function newRequest(req: IncomingMessage): MutableRequest {
  const url = req.url ?? "/";
  const q = url.indexOf("?");
  return {
    method: req.method ?? "GET",
    url,
    headers: req.headers,
    query: parseQuery(q < 0 ? "" : url.slice(q + 1)),
    params: Object.create(null) as Record<string, string>,
    ip: req.socket.remoteAddress ?? "",
    body: undefined,
    routeOptions: { url: undefined },
  };
}

/** One listener's routes, hooks and parsers; `handle` is its server's request listener. */
export class HttpApp {
  readonly #logger: Logger;
  readonly #routes: Route[] = [];
  readonly #parsers = new Map<string, Parser>([["application/json", { bodyLimit: DEFAULT_BODY_LIMIT, parse: parseJson }]]);
  readonly #preHandlers: PreHandler[] = [];
  readonly #onSend: OnSend[] = [];
  #closing = false;

  /** Errors of the box's own (500s) are logged here. */
  constructor(logger: Logger) {
    this.#logger = logger;
  }

  get(path: string, ...route: [Handler] | [RouteOptions, Handler]): void {
    this.#add("GET", path, route);
  }

  post(path: string, ...route: [Handler] | [RouteOptions, Handler]): void {
    this.#add("POST", path, route);
  }

  options(path: string, ...route: [Handler] | [RouteOptions, Handler]): void {
    this.#add("OPTIONS", path, route);
  }

  addHook<K extends keyof Hooks>(name: K, hook: Hooks[K]): void {
    if (name === "preHandler") this.#preHandlers.push(hook as PreHandler);
    else this.#onSend.push(hook as OnSend);
  }

  /** Bodies of this media type (parameters such as charset aside) are read as UTF-8 text and given to parse. */
  addContentTypeParser(mediaType: string, options: { bodyLimit: number }, parse: (body: string) => unknown): void {
    this.#parsers.set(mediaType, { bodyLimit: options.bodyLimit, parse });
  }

  /** The listener is closing: requests still arriving on open connections get 503 and the connection ends. */
  close(): void {
    this.#closing = true;
  }

  readonly handle = (req: IncomingMessage, res: ServerResponse): void => {
    void this.#dispatch(req, res);
  };

  #add(method: string, path: string, route: [Handler] | [RouteOptions, Handler]): void {
    const [options, handler] = route.length === 1 ? [{}, route[0]] : route;
    this.#routes.push({ method, path, segments: path.split("/"), options, handler });
  }

  #match(method: string, path: string): { route: Route; params: Record<string, string> } | null {
    for (const route of this.#routes) {
      if (route.method !== method && !(method === "HEAD" && route.method === "GET")) continue;
      const params = matchPath(route.segments, path);
      if (params) return { route, params };
    }
    return null;
  }

  async #dispatch(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const request = newRequest(req);
    const reply = new HttpReply(request, res, this.#onSend, this.#logger);
    try {
      if (this.#closing) {
        reply.code(503).header("connection", "close").send(errorBody(503, "the box is stopping"));
        return;
      }
      const path = request.url.split("?", 1)[0] as string;
      const found = this.#match(request.method, path);
      if (!found) {
        reply.code(404).send(errorBody(404, `Route ${request.method}:${path} not found`));
        return;
      }
      request.routeOptions.url = found.route.path;
      request.params = found.params;
      request.body = await this.#readBody(req, found.route);
      await this.#run(found.route, request, reply);
    } catch (err) {
      this.#fail(err, request, reply);
    }
  }

  async #run(route: Route, request: HttpRequest, reply: HttpReply): Promise<void> {
    const preHandlers = route.options.preHandler ? [...this.#preHandlers, route.options.preHandler] : this.#preHandlers;
    for (const hook of preHandlers) {
      await hook(request, reply);
      if (reply.sent) return;
    }
    const result = await route.handler(request, reply);
    // A handler may return what it answers instead of sending it.
    if (!reply.sent) reply.send(result);
  }

  /** As fastify: GET and HEAD take no body; a request without one and without a Content-Type has none. */
  async #readBody(req: IncomingMessage, route: Route): Promise<unknown> {
    if (req.method === "GET" || req.method === "HEAD") return undefined;
    const type = req.headers["content-type"];
    const hasBody = req.headers["transfer-encoding"] !== undefined || (req.headers["content-length"] ?? "0") !== "0";
    if (type === undefined && !hasBody) return undefined;
    const mediaType = (type ?? "").split(";", 1)[0]!.trim().toLowerCase();
    const parser = this.#parsers.get(mediaType);
    if (!parser) throw new HttpError(415, `the box takes no ${mediaType || "untyped"} body`);
    return parser.parse(await readText(req, route.options.bodyLimit ?? parser.bodyLimit));
  }

  #fail(err: unknown, request: HttpRequest, reply: HttpReply): void {
    if (err instanceof HttpError) {
      if (!reply.sent) reply.code(err.status).send(errorBody(err.status, err.message));
      return;
    }
    this.#logger.error({ event: "request_failed", err, method: request.method, route: request.routeOptions.url ?? null }, "a request failed");
    // The error's message may hold anything (a path, a value): the client learns only that it failed.
    if (!reply.sent) reply.code(500).send(errorBody(500, "the request failed"));
  }
}
