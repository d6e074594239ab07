export { registerErpCommand } from "./cli.ts";
export { startErp, type ErpOptions, type RunningErp } from "./erp.ts";
export { duplicateDatabase } from "./duplicate.ts";
export { dataPaths, readDatabase, type Database, type DatabaseRecord } from "./database.ts";
export { formatConnectionToken, parseConnectionToken, type IssuedPairing } from "./pairing.ts";
export * from "./wire.ts";
