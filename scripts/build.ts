/**
 * `npm run build`: every package compiled to JavaScript, as bundles made by esbuild.
 *
 * - `packages/cli/dist/`: the `boxcert` command (every component). The workspace's own code is bundled;
 *   the libraries stay in node_modules (better-sqlite3 is native, pg and the ACME client are loaded only by
 *   the components that use them). Each component is a chunk of its own, loaded when named, as from the
 *   sources. `packages/cli/bin/boxcert.js` runs it when it is there.
 * - `packages/box/dist/`: the box agent on its own, with every library it uses inside (pino,
 *   commander; @peculiar/x509 in a chunk of its own, loaded at the first CSR). It is what the npm package and
 *   the Debian package ship: one file to read at start instead of about 400 modules from an SD card, no
 *   registry needed on the device, no native module, nothing to resolve. The bundled libraries' licences
 *   are collected beside it (THIRD-PARTY-LICENSES).
 *
 * Each package's `src/package-files.ts` (its static files and package.json, read from disk in development) is
 * replaced by a module holding those files, so a bundle carries its stylesheets and scripts.
 */
import { build, type Metafile, type Plugin } from "esbuild";
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, relative, resolve, sep } from "node:path";

const ROOT = resolve(import.meta.dirname, "..");

/** In an ES module bundle, CommonJS libraries' require() of node's modules needs a real require. */
const REQUIRE_BANNER = 'import { createRequire as __boxcertCreateRequire } from "node:module";\nconst require = __boxcertCreateRequire(import.meta.url);';

function packageFilesOf(packageRoot: string): Record<string, string> {
  const files: Record<string, string> = {};
  const pkg = JSON.parse(readFileSync(join(packageRoot, "package.json"), "utf8")) as { name: string; version: string };
  // Only what the code reads from it: the name and version, not the development dependencies.
  files["package.json"] = Buffer.from(JSON.stringify({ name: pkg.name, version: pkg.version })).toString("base64");
  const staticDir = join(packageRoot, "static");
  if (existsSync(staticDir)) {
    for (const name of readdirSync(staticDir).sort()) files[`static/${name}`] = readFileSync(join(staticDir, name)).toString("base64");
  }
  return files;
}

/** Replaces each `packages/X/src/package-files.ts` by a module that holds package X's files. */
const embedPackageFiles: Plugin = {
  name: "embed-package-files",
  setup(b) {
    b.onLoad({ filter: /[\\/]packages[\\/][^\\/]+[\\/]src[\\/]package-files\.ts$/ }, (args) => {
      const files = packageFilesOf(resolve(dirname(args.path), ".."));
      return {
        loader: "js",
        contents: [
          `const FILES = ${JSON.stringify(files)};`,
          "export function packageFile(path) {",
          "  if (!Object.hasOwn(FILES, path)) throw new Error(`${path} is not in this build`);",
          '  return Buffer.from(FILES[path], "base64");',
          "}",
        ].join("\n"),
      };
    });
  },
};

/** Keeps every library outside the bundle but the workspace's own packages. */
const libraryImportsExternal: Plugin = {
  name: "libraries-external",
  setup(b) {
    b.onResolve({ filter: /^[^./]/ }, (args) => {
      if (args.path.startsWith("@boxcert/") || args.path.startsWith("node:")) return undefined;
      return { path: args.path, external: true };
    });
  },
};

interface Target {
  name: string;
  entry: string;
  outdir: string;
  outName: string;
  plugins: Plugin[];
}

const TARGETS: Target[] = [
  { name: "boxcert", entry: "packages/cli/src/main.ts", outdir: "packages/cli/dist", outName: "boxcert", plugins: [embedPackageFiles, libraryImportsExternal] },
  { name: "boxcert-box", entry: "packages/box/src/main.ts", outdir: "packages/box/dist", outName: "boxcert-box", plugins: [embedPackageFiles] },
];

/** The libraries inside a bundle (from its metafile), each with its licence text, for THIRD-PARTY-LICENSES. */
function thirdPartyLicences(metafile: Metafile): string {
  const packages = new Map<string, string>();
  for (const input of Object.keys(metafile.inputs)) {
    const parts = input.split(/[\\/]/);
    const at = parts.lastIndexOf("node_modules");
    if (at < 0) continue;
    const nameParts = parts[at + 1]?.startsWith("@") ? parts.slice(at + 1, at + 3) : parts.slice(at + 1, at + 2);
    if (nameParts[0] === "@boxcert") continue;
    packages.set(nameParts.join("/"), join(ROOT, ...parts.slice(0, at + 1 + nameParts.length)));
  }
  const sections: string[] = [];
  for (const [name, dir] of [...packages].sort(([a], [b]) => a.localeCompare(b))) {
    const pkg = JSON.parse(readFileSync(join(dir, "package.json"), "utf8")) as { version: string; license?: string };
    const licenceFile = readdirSync(dir).find((f) => /^(licen[cs]e|copying)(\.(md|txt))?$/i.test(f));
    const text = licenceFile ? readFileSync(join(dir, licenceFile), "utf8").trim() : `(no licence file in the package; its package.json says ${pkg.license ?? "nothing"})`;
    sections.push(`${name}@${pkg.version} (${pkg.license ?? "unknown"})\n\n${text}\n`);
  }
  return `Libraries bundled in this build, with their licences.\n\n${sections.join(`\n${"-".repeat(72)}\n\n`)}`;
}

async function buildTarget(target: Target): Promise<void> {
  const outdir = join(ROOT, target.outdir);
  rmSync(outdir, { recursive: true, force: true });
  const result = await build({
    entryPoints: { [target.outName]: join(ROOT, target.entry) },
    outdir,
    bundle: true,
    splitting: true,
    format: "esm",
    platform: "node",
    target: "node20",
    outExtension: { ".js": ".js" },
    chunkNames: "chunks/[name]-[hash]",
    banner: { js: REQUIRE_BANNER },
    // Whitespace and syntax only: function and class names stay, so stack traces in a box's log still read.
    minifyWhitespace: true,
    minifySyntax: true,
    legalComments: "none",
    metafile: true,
    logLevel: "warning",
    plugins: target.plugins,
  });
  writeFileSync(join(outdir, "package.json"), `${JSON.stringify({ type: "module" })}\n`);
  writeFileSync(join(outdir, "THIRD-PARTY-LICENSES"), thirdPartyLicences(result.metafile));
  const bytes = Object.entries(result.metafile.outputs).reduce((sum, [, o]) => sum + o.bytes, 0);
  const files = Object.keys(result.metafile.outputs).map((f) => relative(ROOT, f).split(sep).join("/"));
  process.stdout.write(`build: ${target.name}: ${files.length} files, ${(bytes / 1024).toFixed(0)} KiB in ${target.outdir}\n`);
}

for (const target of TARGETS) await buildTarget(target);
