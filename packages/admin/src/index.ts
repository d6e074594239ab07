export { registerAdminCommands, formatTable, type AdminOutput } from "./cli.ts";
