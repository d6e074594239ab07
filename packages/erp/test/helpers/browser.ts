/**
 * A browser as the pages see it: it keeps the cookies it is given, sends the page's CSRF field with its
 * forms, and an Origin header as browsers do with a POST.
 */
import { httpsRequest, setCookies, type Answer } from "./https.ts";
import type { Target } from "./fake-box.ts";

export class Browser {
  readonly cookies = new Map<string, string>();
  readonly #target: Target;
  readonly #origin: string;

  constructor(target: Target) {
    this.#target = target;
    this.#origin = new URL(target.url).origin;
  }

  #cookieHeader(): Record<string, string> {
    return this.cookies.size === 0 ? {} : { cookie: [...this.cookies].map(([name, value]) => `${name}=${value}`).join("; ") };
  }

  #keep(answer: Answer): Answer {
    for (const [name, value] of setCookies(answer)) {
      if (value === "") this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
    return answer;
  }

  async get(path: string, headers: Record<string, string> = {}): Promise<Answer> {
    return this.#keep(await httpsRequest(new URL(path, this.#target.url).toString(), this.#target.ca, { headers: { ...this.#cookieHeader(), ...headers } }));
  }

  /** Posts a form; `origin: null` sends none (a client that is not a browser). */
  async post(path: string, form: Record<string, string>, options: { origin?: string | null; headers?: Record<string, string> } = {}): Promise<Answer> {
    const origin = options.origin === undefined ? this.#origin : options.origin;
    const answer = await httpsRequest(new URL(path, this.#target.url).toString(), this.#target.ca, {
      method: "POST",
      body: new URLSearchParams(form).toString(),
      headers: { "content-type": "application/x-www-form-urlencoded", ...(origin === null ? {} : { origin }), ...this.#cookieHeader(), ...options.headers },
    });
    return this.#keep(answer);
  }

  /** The CSRF field of a page. */
  static csrfOf(page: Answer): string {
    const match = /name="csrf" value="([^"]+)"/.exec(page.text);
    if (!match) throw new Error(`no CSRF field in the page:\n${page.text.slice(0, 500)}`);
    return match[1]!;
  }

  /** Opens the login page and logs in; returns the login's answer. */
  async login(password: string): Promise<Answer> {
    const page = await this.get("/login");
    return this.post("/login", { csrf: Browser.csrfOf(page), password, next: "/iot" });
  }
}
