/**
 * `npm run pack:box`: the box agent as an npm package, build/boxcert-box-<version>.tgz (`@boxcert/box`),
 * installed on a device with `npm install -g ./boxcert-box-<version>.tgz` (docs/deployment-box.md).
 *
 * The package is laid out in build/npm/boxcert-box/ and packed there by `npm pack`:
 *
 *   package.json            name, version (packages/box/package.json's), "type": "module", engines, bin
 *   bin/boxcert-box.js      the command: a shebang line and an import of the bundle
 *   dist/boxcert-box.js     the bundle (npm run build), dist/chunks/ the parts it loads later
 *   README.md, THIRD-PARTY-LICENSES
 */
import { execFileSync } from "node:child_process";
import { cpSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import { ensureBuild, ROOT } from "./ensure-build.ts";

const DIST = join(ROOT, "packages/box/dist");

const README = (version: string) => `# @boxcert/box ${version}

boxcert's IoT box agent: on a box in a shop's network, it gets a publicly trusted HTTPS certificate for a
name that resolves to the box's LAN address (\`https://192-168-1-42.<label>.<zone>\`) from the vendor's boxcert
issuer, keeps it renewed, and serves the box's homepage over HTTP and HTTPS. When it cannot get a
certificate, the homepage says why and what to do.

    npm install -g ./boxcert-box-${version}.tgz
    boxcert-box box --data-dir /var/lib/boxcert --issuer https://issuer.example.net --http-port 80 --https-port 443

Node.js 20 or later; nothing else: the agent and every library it uses are in \`dist/\`, so installing
needs no registry and builds nothing. The licences of those libraries: THIRD-PARTY-LICENSES.

Documentation, in the boxcert repository: \`docs/box.md\` (the agent, its flags, its data folder) and
\`docs/deployment-box.md\` (installing it on a device, as this package or as a Debian package with a
systemd unit).
`;

/**
 * No dependencies: the bundle holds every library. A box reads one file from its SD card at start instead
 * of hundreds of modules, installs with no registry reachable from the device, and compiles nothing (no
 * native module).
 */
function manifest(version: string): string {
  const pkg = {
    name: "@boxcert/box",
    version,
    description: "boxcert's IoT box agent: a publicly trusted HTTPS certificate for a box on a private LAN",
    license: "UNLICENSED",
    type: "module",
    engines: { node: ">=20" },
    bin: { "boxcert-box": "bin/boxcert-box.js" },
  };
  return `${JSON.stringify(pkg, null, 2)}\n`;
}

const BIN = `#!/usr/bin/env node
// boxcert's IoT box agent: the bundle does everything.
import "../dist/boxcert-box.js";
`;

/** Lays the package out and packs it; returns the tarball's path. */
export function packBox(outDir = join(ROOT, "build")): string {
  ensureBuild();
  const { version } = JSON.parse(readFileSync(join(ROOT, "packages/box/package.json"), "utf8")) as { version: string };
  const stage = join(outDir, "npm", "boxcert-box");
  rmSync(stage, { recursive: true, force: true });
  mkdirSync(join(stage, "bin"), { recursive: true });
  writeFileSync(join(stage, "package.json"), manifest(version));
  writeFileSync(join(stage, "bin/boxcert-box.js"), BIN, { mode: 0o755 });
  writeFileSync(join(stage, "README.md"), README(version));
  cpSync(join(DIST, "boxcert-box.js"), join(stage, "dist/boxcert-box.js"));
  cpSync(join(DIST, "chunks"), join(stage, "dist/chunks"), { recursive: true });
  cpSync(join(DIST, "THIRD-PARTY-LICENSES"), join(stage, "THIRD-PARTY-LICENSES"));
  const out = execFileSync("npm", ["pack", "--json", "--pack-destination", outDir], { cwd: stage, encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] });
  const [packed] = JSON.parse(out) as { filename: string }[];
  if (!packed) throw new Error(`npm pack said nothing about the package:\n${out}`);
  return join(outDir, packed.filename);
}

if (process.argv[1] === import.meta.filename) {
  console.log(`pack-box: ${relative(process.cwd(), packBox())}`);
}
