export { registerAdminCommands, formatTable } from "./cli.ts";
