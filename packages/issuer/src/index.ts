export { buildIssuerApp, type IssuerAppOptions } from "./app.ts";
export { startIssuer, registerIssuerCommand, type IssuerConfig, type RunningIssuer } from "./cli.ts";
export { openStore, type Store } from "./store/db.ts";
export { Registry, RegistryError } from "./registry.ts";
export { EmbeddedCa } from "./embedded-ca.ts";
