#!/usr/bin/env node
/**
 * `boxcert`: one command for every component. Components are imported lazily so `boxcert box` on a box
 * never loads the issuer's store or CA libraries.
 */
import { Command, CommanderError } from "commander";

const COMPONENTS: Record<string, () => Promise<(program: Command) => void>> = {
  issuer: async () => (await import("@boxcert/issuer")).registerIssuerCommand,
  admin: async () => (await import("@boxcert/admin")).registerAdminCommands,
  box: async () => (await import("@boxcert/box")).registerBoxCommands,
  dns: async () => (await import("@boxcert/dns")).registerDnsCommand,
  erp: async () => (await import("@boxcert/erp")).registerErpCommand,
  demo: async () => (await import("./demo.ts")).registerDemoCommand,
};

async function main(argv: string[]): Promise<void> {
  const program = new Command("boxcert")
    .description("Publicly trusted HTTPS for IoT boxes on private networks")
    .exitOverride();
  const wanted = argv[2];
  // Own keys only: `boxcert constructor` must not find Object.prototype's.
  const register = wanted !== undefined && Object.hasOwn(COMPONENTS, wanted) ? COMPONENTS[wanted] : undefined;
  if (register) {
    (await register())(program);
  } else if (wanted !== undefined && !wanted.startsWith("-")) {
    process.stderr.write(`boxcert: unknown component '${wanted}' (expected one of: ${Object.keys(COMPONENTS).join(", ")}; see 'boxcert --help')\n`);
    process.exitCode = 2;
    return;
  } else {
    for (const name of Object.keys(COMPONENTS)) program.command(name).description(`run 'boxcert ${name} --help'`);
  }
  await program.parseAsync(argv);
}

main(process.argv).catch((err: unknown) => {
  if (err instanceof CommanderError) process.exit(err.exitCode);
  const message = err instanceof Error ? err.message : String(err);
  process.stderr.write(`boxcert: ${message}\n`);
  process.exit(1);
});
