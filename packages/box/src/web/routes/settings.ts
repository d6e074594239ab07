/**
 * The gear menu's changes: the credential, the log level, the connection, the admin password, and the log
 * download. Each needs the admin session when a password is set (kit.requireAdmin); the request guard
 * has already checked the POSTs. Bad input is a 400 page that says what is wrong.
 */
import type { HttpApp } from "../http-app.ts";
import { isLogLevel } from "@boxcert/shared";
import { ConfigError, connectionPatch, parseConnection, parseConnectionToken, parseCredentialField, withinZonePin } from "../../config.ts";
import type { BoxConfig, Connection } from "../../config.ts";
import { logDownloadName, readAllLogs } from "../../logs.ts";
import { hashPassword, passwordProblem } from "../admin-password.ts";
import type { PageKit } from "../page-kit.ts";
import { formOf } from "../request-data.ts";
import { maskedUuid } from "../../secrets.ts";
import type { Form } from "../request-data.ts";

function hasValue(value: string | undefined): value is string {
  return typeof value === "string" && value.trim() !== "";
}

/**
 * A connection token (refused when it names another zone than the box's --zone pin), or the three values;
 * a string says what is missing. Throws ConfigError for a bad value.
 */
function connectionOf(form: Form, zonePin: string | null): Connection | "connect-missing" {
  if (hasValue(form.token)) return withinZonePin(parseConnectionToken(form.token), zonePin);
  if (hasValue(form.server) && hasValue(form.dbUuid) && hasValue(form.enterpriseCode)) {
    return parseConnection({ server: form.server, dbUuid: form.dbUuid, enterpriseCode: form.enterpriseCode });
  }
  return "connect-missing";
}

/** The fields a confirmation page carries back: the form as posted, without its CSRF token and `confirm`. */
function carried(form: Form, names: readonly string[]): Record<string, string> {
  return Object.fromEntries(names.filter((name) => hasValue(form[name])).map((name) => [name, form[name] as string]));
}

/**
 * Whether saving `next` replaces a credential the box holds: a pasted token or a typo must not silently
 * disconnect a working box. Whether the held one works, the box cannot know for sure (an issuer outage is
 * not the credential's fault), so any held credential that differs is asked about.
 */
function replaces(current: BoxConfig, next: { server?: string; dbUuid: string; enterpriseCode: string }): boolean {
  if (current.dbUuid === null || current.enterpriseCode === null) return false;
  const serverChanges = next.server !== undefined && current.server !== null && next.server !== current.server;
  return serverChanges || next.dbUuid !== current.dbUuid || next.enterpriseCode !== current.enterpriseCode;
}

/** Runs parse; a ConfigError is bad input (its message shown), anything else a bug. */
function parsed<T>(parse: () => T): T | ConfigError {
  try {
    return parse();
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
}

export async function settingsPlugin(app: HttpApp, { kit }: { kit: PageKit }): Promise<void> {
  const { deps } = kit;
  const admin = { preHandler: kit.requireAdmin };

  app.post("/credential", admin, async (request, reply) => {
    const form = formOf(request);
    const credential = parsed(() => ({
      dbUuid: parseCredentialField("database UUID", form.dbUuid ?? ""),
      enterpriseCode: parseCredentialField("subscription code", form.enterpriseCode ?? ""),
    }));
    if (credential instanceof ConfigError) return kit.badInput(request, reply, () => credential.message);
    const current = deps.config();
    if (form.confirm !== "yes" && replaces(current, credential)) {
      return kit.confirm(request, reply, {
        action: "/credential",
        fields: carried(form, ["dbUuid", "enterpriseCode"]),
        current: { server: null, dbUuid: maskedUuid(current.dbUuid) },
        next: { server: null, dbUuid: maskedUuid(credential.dbUuid) },
        replacing: true,
        plaintext: false,
      });
    }
    await deps.changeConfig(credential);
    deps.logger.info({ event: "credential_set", dbUuid: maskedUuid(credential.dbUuid), from: "homepage" }, "credential set from the homepage");
    deps.checkAgain();
    return kit.done(reply, "credential");
  });

  app.post("/credential/clear", admin, async (_request, reply) => {
    await deps.changeConfig({ dbUuid: null, enterpriseCode: null });
    deps.logger.info({ event: "credential_cleared", from: "homepage" }, "credential cleared from the homepage");
    return kit.done(reply, "credential-cleared");
  });

  app.post("/log-level", admin, async (request, reply) => {
    const level = formOf(request).level;
    if (!isLogLevel(level)) return kit.badInput(request, reply, (t) => t.inputErrors["bad-level"]);
    await deps.changeConfig({ logLevel: level });
    return kit.done(reply, "log-level");
  });

  app.post("/connect", admin, async (request, reply) => {
    const form = formOf(request);
    const connection = parsed(() => connectionOf(form, deps.config().zonePin));
    if (connection instanceof ConfigError) return kit.badInput(request, reply, () => connection.message);
    if (connection === "connect-missing") return kit.badInput(request, reply, (t) => t.inputErrors["connect-missing"]);
    const current = deps.config();
    const replacing = replaces(current, connection);
    const plaintext = new URL(connection.server).protocol === "http:";
    if (form.confirm !== "yes" && (replacing || plaintext)) {
      return kit.confirm(request, reply, {
        action: "/connect",
        fields: carried(form, hasValue(form.token) ? ["token"] : ["server", "dbUuid", "enterpriseCode"]),
        current: { server: current.server, dbUuid: maskedUuid(current.dbUuid) },
        next: { server: connection.server, dbUuid: maskedUuid(connection.dbUuid) },
        replacing,
        plaintext,
      });
    }
    await deps.changeConfig((held) => connectionPatch(connection, held));
    if (plaintext) deps.logger.warn({ event: "server_plaintext", server: connection.server }, "the database's address is http://: the box's requests to it are not encrypted");
    const pairing = connection.pairingSecret !== undefined;
    deps.logger.info(
      { event: "connected", server: connection.server, dbUuid: maskedUuid(connection.dbUuid), pairing, from: "homepage" },
      "connected to a database from the homepage",
    );
    // The check registers with the database after it, when the token brought a pairing secret.
    deps.checkAgain();
    return kit.done(reply, pairing ? "connected-paired" : "connected");
  });

  app.post("/admin-password", admin, async (request, reply) => {
    const form = formOf(request);
    const { sessions } = kit.state;
    const stored = deps.config().adminPassword;
    // Changing or clearing a password needs the current one.
    if (stored !== null) {
      const attempt = await sessions.tryPassword(request.ip, form.current ?? "", stored);
      if (attempt.outcome === "too-many" || attempt.outcome === "busy") return kit.refuse(request, reply.header("retry-after", attempt.retryAfterS), attempt.outcome, 429);
      if (attempt.outcome === "wrong") return kit.refuse(request, reply, "wrong-password");
    }
    if (form.action === "clear") {
      if (stored === null) return kit.done(reply, "password-cleared");
      await deps.changeConfig({ adminPassword: null });
      sessions.closeAll();
      deps.logger.info({ event: "admin_password_cleared" }, "admin password cleared");
      return kit.done(reply, "password-cleared");
    }
    const password = form.password ?? "";
    if (password !== (form.repeat ?? "")) return kit.badInput(request, reply, (t) => t.inputErrors["password-mismatch"]);
    const problem = passwordProblem(password);
    if (problem) return kit.badInput(request, reply, (t) => t.inputErrors[problem]);
    await deps.changeConfig({ adminPassword: await hashPassword(password) });
    sessions.closeAll();
    // Whoever set it stays logged in.
    kit.sessionCookie(reply, sessions.open());
    deps.logger.info({ event: "admin_password_set" }, "admin password set");
    return kit.done(reply, "password-set");
  });

  // A GET, but the logs are the box's own: the request guard checks its Host (request-guard.ts).
  app.get("/logs/download", admin, async (_request, reply) => {
    const body = await readAllLogs(deps.logFile);
    const name = logDownloadName(deps.config().name, deps.clock());
    deps.logger.info({ event: "logs_downloaded", bytes: body.length }, "logs downloaded");
    return reply
      .type("text/plain; charset=utf-8")
      .header("content-disposition", `attachment; filename="${name}"`)
      .header("cache-control", "no-store")
      .header("x-content-type-options", "nosniff")
      .send(body);
  });
}
