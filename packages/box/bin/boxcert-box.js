#!/usr/bin/env node
// The box's commands on their own, without the main `boxcert` binary: `boxcert-box box --data-dir DIR ...`.
import { register } from "tsx/esm/api";

register();
await import("../src/main.ts");
