/** Entry of bin/boxcert-box.js: the box's commands as a program of their own (the main binary is packages/cli). */
import { Command } from "commander";
import { registerBoxCommands } from "./cli.ts";

const program = new Command("boxcert-box").description("boxcert's IoT box agent");
registerBoxCommands(program);
await program.parseAsync(process.argv);
