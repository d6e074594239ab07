/**
 * `boxcert admin`: the vendor's operators manage subscriptions, databases, boxes and certificates.
 * Every command takes --store and --json; errors are one line and a non-zero exit.
 */
import type { Command} from "commander";
import { InvalidArgumentError } from "commander";
import { openStore, RegistryOperations } from "@boxcert/store";

type Row = Record<string, unknown>;

function seatsArg(value: string): number {
  if (!/^\d+$/.test(value.trim())) throw new InvalidArgumentError(`"${value}" is not a whole number of seats`);
  return Number(value);
}

/** Plain aligned columns for people; --json gives scripts the full rows. */
export function formatTable(rows: Row[], columns: string[]): string {
  if (rows.length === 0) return "(none)";
  const cells = rows.map((row) => columns.map((c) => {
    const v = row[c];
    return v === null || v === undefined ? "-" : Array.isArray(v) ? v.join(",") : String(v);
  }));
  const widths = columns.map((c, i) => Math.max(c.length, ...cells.map((r) => r[i]!.length)));
  const line = (values: string[]) => values.map((v, i) => v.padEnd(widths[i]!)).join("  ").trimEnd();
  return [line(columns), ...cells.map(line)].join("\n");
}

interface Common {
  store: string;
  json?: boolean;
}

async function withOperations<T>(opts: Common, fn: (operations: RegistryOperations) => Promise<T>): Promise<T> {
  const store = await openStore(opts.store);
  try {
    return await fn(new RegistryOperations(store));
  } finally {
    await store.close();
  }
}

/** Where a command's rows go: stdout, or what a test reads. */
export interface AdminOutput {
  write(text: string): unknown;
}

function printer(out: AdminOutput) {
  return (opts: Common, data: Row | Row[], columns: string[]): void => {
    out.write((opts.json ? JSON.stringify(data, null, 2) : formatTable(Array.isArray(data) ? data : [data], columns)) + "\n");
  };
}

function common(cmd: Command): Command {
  return cmd.option("--store <url>", "SQLite file path, or postgres://...", ".data/issuer/registry.sqlite").option("--json", "JSON output for scripts");
}

const MIGRATION_COLUMNS = ["name", "executedAt", "ranNow"];
const SUB_COLUMNS = ["code", "state", "iotBoxSeats", "seatsTaken", "createdAt"];
const DB_COLUMNS = ["uuid", "subscription", "kind", "keyRecorded", "reportedAt", "createdAt"];
const BOX_COLUMNS = ["label", "identifier", "database", "seat", "lastSeenAt", "freedAt", "revokedAt"];
const CERT_COLUMNS = ["serial", "label", "source", "notBefore", "notAfter", "renewAfter", "revokedAt"];

export function registerAdminCommands(program: Command, out: AdminOutput = process.stdout): void {
  const output = printer(out);
  const admin = program.command("admin").description("manage subscriptions, databases, boxes and certificates");

  // Every command migrates the store when it opens it, as issuers do at start; this one only does that, and
  // shows where the schema stands (before a rolling upgrade, or to check one).
  common(admin.command("migrate").description("bring the store's schema up to date and list its migrations")).action(async (opts: Common) => {
    const store = await openStore(opts.store);
    try {
      output(opts, (await store.migrations()) as unknown as Row[], MIGRATION_COLUMNS);
    } finally {
      await store.close();
    }
  });

  const subscription = admin.command("subscription").description("subscriptions (the contract a database belongs to)");
  common(subscription.command("add <code>").description("add a subscription"))
    .option("--state <state>", "draft | in_progress | paused | closed", "draft")
    .option("--seats <n>", "IoT-box seats (0 = no IoT-box line)", seatsArg, 0)
    .action(async (code: string, opts: Common & { state: string; seats: number }) => {
      output(opts, await withOperations(opts, (r) => r.addSubscription({ code, state: opts.state, seats: opts.seats })) as unknown as Row, SUB_COLUMNS);
    });
  common(subscription.command("set <code>").description("change a subscription's state or seats"))
    .option("--state <state>", "draft | in_progress | paused | closed")
    .option("--seats <n>", "IoT-box seats (0 = no IoT-box line)", seatsArg)
    .action(async (code: string, opts: Common & { state?: string; seats?: number }) => {
      output(opts, await withOperations(opts, (r) => r.setSubscription(code, { state: opts.state, seats: opts.seats })) as unknown as Row, SUB_COLUMNS);
    });
  common(subscription.command("list").description("list subscriptions")).action(async (opts: Common) => {
    output(opts, (await withOperations(opts, (r) => r.listSubscriptions())) as unknown as Row[], SUB_COLUMNS);
  });

  const database = admin.command("database").description("databases (an ERP instance of a subscription)");
  common(database.command("add <uuid>").description("add a database"))
    .requiredOption("--subscription <code>", "the subscription it belongs to")
    .option("--kind <kind>", "production | staging | development | duplicate", "production")
    .action(async (uuid: string, opts: Common & { subscription: string; kind: string }) => {
      output(opts, (await withOperations(opts, (r) => r.addDatabase({ uuid, subscription: opts.subscription, kind: opts.kind }))) as unknown as Row, DB_COLUMNS);
    });
  common(database.command("set <uuid>").description("change a database's kind or subscription (a subscription has at most one production database)"))
    .option("--kind <kind>", "production | staging | development | duplicate")
    .option("--subscription <code>", "move it to another subscription")
    .action(async (uuid: string, opts: Common & { kind?: string; subscription?: string }) => {
      output(opts, (await withOperations(opts, (r) => r.setDatabase(uuid, { kind: opts.kind, subscription: opts.subscription }))) as unknown as Row, DB_COLUMNS);
    });
  common(database.command("list").description("list databases")).action(async (opts: Common) => {
    output(opts, (await withOperations(opts, (r) => r.listDatabases())) as unknown as Row[], DB_COLUMNS);
  });

  const box = admin.command("box").description("boxes (one seat each)");
  common(box.command("list").description("list boxes"))
    .option("--all", "include freed boxes")
    .action(async (opts: Common & { all?: boolean }) => {
      output(opts, (await withOperations(opts, (r) => r.listBoxes({ includeFreed: opts.all }))) as unknown as Row[], BOX_COLUMNS);
    });
  common(box.command("free <label-or-identifier>").description("free a box: release its seat and identity; its name stops resolving"))
    .action(async (key: string, opts: Common) => {
      output(opts, (await withOperations(opts, (r) => r.freeBox(key))) as unknown as Row, BOX_COLUMNS);
    });

  common(box.command("revoke <label>").description("revoke a box: its certificates are revoked, its name stops resolving, it gets no new certificate"))
    .action(async (label: string, opts: Common) => {
      output(opts, (await withOperations(opts, (r) => r.revokeBox(label))) as unknown as Row, BOX_COLUMNS);
    });

  const cert = admin.command("cert").description("issued certificates");
  common(cert.command("list").description("list certificates"))
    .option("--label <label>", "only this box's")
    .action(async (opts: Common & { label?: string }) => {
      output(opts, (await withOperations(opts, (r) => r.listCertificates({ label: opts.label }))) as unknown as Row[], CERT_COLUMNS);
    });
  common(cert.command("revoke <serial>").description("revoke a certificate (the box gets a new one at its next check)"))
    .action(async (serial: string, opts: Common) => {
      output(opts, (await withOperations(opts, (r) => r.revokeCertificate(serial))) as unknown as Row, CERT_COLUMNS);
    });
}
