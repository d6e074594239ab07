/**
 * `npm run pack:deb -- --issuer https://issuer.example.net [--zone iot.example.net]`: the box agent as a
 * Debian package, build/boxcert-box_<version>_all.deb (docs/deployment-box.md).
 *
 * The package is laid out here and handed to `dpkg-deb --build --root-owner-group`, without debhelper: its
 * content is a JavaScript bundle, a unit, a few small files; its maintainer scripts are the ones debhelper
 * would write (deploy/debian/). Files:
 *
 *   /usr/lib/boxcert-box/            the bundle (packages/box/dist): boxcert-box.js (executable, #!/usr/bin/node) and chunks/
 *   /usr/bin/boxcert-box             a symbolic link to it
 *   /lib/systemd/system/boxcert-box.service, /usr/lib/sysusers.d/boxcert-box.conf (the boxcert user)
 *   /etc/default/boxcert-box         the service's options (a conffile): --issuer and --zone from this script's flags
 *   /usr/share/doc/boxcert-box/      copyright (DEP-5), changelog.gz, THIRD-PARTY-LICENSES.gz
 *   /usr/share/man/man1/boxcert-box.1.gz  from the agent's own --help
 *
 * Reproducible: the same sources give the same bytes. Every file's time is SOURCE_DATE_EPOCH (by default the
 * date of the latest deploy/debian/changelog entry, as dpkg-buildpackage does), modes are set here rather
 * than taken from the umask, gzip runs with -n, and xz with one thread (its output depends on the count).
 */
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { chmodSync, cpSync, lstatSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, utimesSync, writeFileSync, lutimesSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { parseArgs } from "node:util";
import { ensureBuild, ROOT } from "./ensure-build.ts";

const DEBIAN = join(ROOT, "deploy/debian");
const DIST = join(ROOT, "packages/box/dist");

interface ChangelogHead {
  version: string;
  maintainer: string;
  epoch: number;
}

/** The latest entry of deploy/debian/changelog: its version must be the box's, so a release gets an entry. */
function changelogHead(text: string): ChangelogHead {
  const version = /^boxcert-box \(([^)]+)\)/.exec(text)?.[1];
  const trailer = /^ -- (.+?)  (.+)$/m.exec(text);
  if (!version || !trailer) throw new Error("deploy/debian/changelog: no entry in Debian's format at the top");
  const epoch = Date.parse(trailer[2]!) / 1000;
  if (!Number.isFinite(epoch)) throw new Error(`deploy/debian/changelog: "${trailer[2]}" is not a date`);
  return { version, maintainer: trailer[1]!, epoch };
}

function fill(template: string, values: Record<string, string>): string {
  return template.replace(/@([A-Z_]+)@/g, (whole, key: string) => {
    if (!(key in values)) throw new Error(`no value for ${whole}`);
    return values[key]!;
  });
}

function write(path: string, data: string | Buffer, mode = 0o644): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, data);
  chmodSync(path, mode);
}

function gzip(data: string | Buffer): Buffer {
  return execFileSync("gzip", ["-9n"], { input: data });
}

/** The bundled libraries from THIRD-PARTY-LICENSES (scripts/build.ts): `name@version (licence)` heads each section. */
function bundledLibraries(text: string): { name: string; version: string; licence: string }[] {
  return [...text.matchAll(/^(@?[^@\s]+)@(\S+) \(([^)]+)\)$/gm)].map((m) => ({ name: m[1]!, version: m[2]!, licence: m[3]! }));
}

function copyright(maintainer: string, thirdParty: string): string {
  const libraries = bundledLibraries(thirdParty);
  if (libraries.length === 0) throw new Error("THIRD-PARTY-LICENSES lists no library");
  const licences = [...new Set(libraries.map((l) => l.licence))].sort();
  // One paragraph per licence: Apache-2.0 is in Debian's common licences; the others' texts differ by their
  // notices, all of which are in THIRD-PARTY-LICENSES.
  const paragraphs = licences.map((licence) =>
    licence === "Apache-2.0"
      ? `License: Apache-2.0\n On Debian systems, the full text of the Apache License, Version 2.0 is in\n /usr/share/common-licenses/Apache-2.0.\n`
      : `License: ${licence}\n The text of each bundled library's ${licence} licence, with its copyright\n notice, is in /usr/share/doc/boxcert-box/THIRD-PARTY-LICENSES.gz.\n`,
  );
  const head = fill(readFileSync(join(DEBIAN, "copyright"), "utf8"), {
    MAINTAINER: maintainer,
    LICENCES: licences.join(" and "),
    LIBRARIES: libraries.map((l) => ` ${l.name} ${l.version} (${l.licence})`).join("\n"),
  });
  return `${head}\n${paragraphs.join("\n")}`;
}

/** A manual page made of the agent's own help, so it never disagrees with the program. */
function manPage(version: string, epoch: number): string {
  const bundle = join(DIST, "boxcert-box.js");
  const help = (...args: string[]) => execFileSync(process.execPath, [bundle, ...args, "--help"], { encoding: "utf8" });
  // In roff, a backslash escapes and a line starting with a dot or a quote is a request; "\-" is a minus sign.
  const roff = (text: string) => text.replace(/\\/g, "\\e").replace(/-/g, "\\-").replace(/^([.'])/gm, "\\&$1");
  const section = (title: string, text: string) => `.SH ${title}\n.nf\n${roff(text.trimEnd())}\n.fi\n`;
  const date = new Date(epoch * 1000).toISOString().slice(0, 10);
  return [
    `.TH BOXCERT\\-BOX 1 ${date} "boxcert-box ${version}" "boxcert"\n`,
    ".SH NAME\nboxcert\\-box \\- boxcert's IoT box agent: a publicly trusted HTTPS certificate for a box on a private LAN\n",
    section("SYNOPSIS", help()),
    section("THE AGENT", help("box")),
    section("CONNECTING TO A DATABASE", help("box", "connect")),
    section("CREDENTIAL", help("box", "credential")),
    ".SH FILES\n.TP\n.I /etc/default/boxcert\\-box\nthe options of the boxcert\\-box service\n",
    ".TP\n.I /var/lib/boxcert\nthe service's data folder: configuration, keys, certificate, logs\n",
    ".SH SEE ALSO\nThe boxcert repository: docs/box.md (the agent) and docs/deployment\\-box.md (this package).\n",
  ].join("");
}

/** The files of the package's tree (below DEBIAN/ excluded), for md5sums and Installed-Size. */
function payload(root: string): string[] {
  return (readdirSync(root, { recursive: true, encoding: "utf8" }) as string[]).filter((p) => !p.startsWith("DEBIAN")).sort();
}

function layOut(root: string, options: { version: string; maintainer: string; epoch: number; boxOptions: string }): void {
  const lib = join(root, "usr/lib/boxcert-box");
  // The bundle is the program: a shebang line makes it executable on its own.
  write(join(lib, "boxcert-box.js"), `#!/usr/bin/node\n${readFileSync(join(DIST, "boxcert-box.js"), "utf8")}`, 0o755);
  cpSync(join(DIST, "chunks"), join(lib, "chunks"), { recursive: true });
  write(join(lib, "package.json"), readFileSync(join(DIST, "package.json")));
  mkdirSync(join(root, "usr/bin"), { recursive: true });
  symlinkSync("../lib/boxcert-box/boxcert-box.js", join(root, "usr/bin/boxcert-box"));
  write(join(root, "lib/systemd/system/boxcert-box.service"), readFileSync(join(ROOT, "deploy/systemd/boxcert-box.service")));
  write(join(root, "usr/lib/sysusers.d/boxcert-box.conf"), readFileSync(join(DEBIAN, "boxcert-box.sysusers")));
  write(join(root, "etc/default/boxcert-box"), fill(readFileSync(join(DEBIAN, "boxcert-box.default"), "utf8"), { OPTIONS: options.boxOptions }));
  const doc = join(root, "usr/share/doc/boxcert-box");
  const thirdParty = readFileSync(join(DIST, "THIRD-PARTY-LICENSES"), "utf8");
  write(join(doc, "copyright"), copyright(options.maintainer, thirdParty));
  write(join(doc, "changelog.gz"), gzip(readFileSync(join(DEBIAN, "changelog"))));
  write(join(doc, "THIRD-PARTY-LICENSES.gz"), gzip(thirdParty));
  write(join(root, "usr/share/man/man1/boxcert-box.1.gz"), gzip(manPage(options.version, options.epoch)));
}

function writeControl(root: string, options: { version: string; maintainer: string }): void {
  const files = payload(root);
  // As dpkg-gencontrol counts: each file's size rounded up to a KiB, one KiB per other entry.
  const installedSize = files.reduce((sum, f) => {
    const st = lstatSync(join(root, f));
    return sum + (st.isFile() ? Math.ceil(st.size / 1024) : 1);
  }, 0);
  const conffiles = readFileSync(join(DEBIAN, "conffiles"), "utf8");
  const isConffile = new Set(conffiles.split("\n").filter(Boolean).map((f) => f.slice(1)));
  const md5sums = files
    .filter((f) => lstatSync(join(root, f)).isFile() && !isConffile.has(f))
    .map((f) => `${createHash("md5").update(readFileSync(join(root, f))).digest("hex")}  ${f}\n`)
    .join("");
  const control = join(root, "DEBIAN");
  write(join(control, "control"), fill(readFileSync(join(DEBIAN, "control"), "utf8"), { VERSION: options.version, MAINTAINER: options.maintainer, INSTALLED_SIZE: String(installedSize) }));
  write(join(control, "conffiles"), conffiles);
  write(join(control, "md5sums"), md5sums);
  for (const script of ["postinst", "prerm", "postrm"]) write(join(control, script), readFileSync(join(DEBIAN, script)), 0o755);
}

/**
 * Modes 0755 (folders, programs) or 0644, and every time set to the epoch: nothing of the machine that built
 * it (its umask, its clock) stays in the package.
 */
function normalise(root: string, epoch: number): void {
  for (const rel of ["", ...(readdirSync(root, { recursive: true, encoding: "utf8" }) as string[])]) {
    const path = join(root, rel);
    const st = lstatSync(path);
    if (st.isSymbolicLink()) {
      lutimesSync(path, epoch, epoch);
      continue;
    }
    chmodSync(path, st.isDirectory() || st.mode & 0o100 ? 0o755 : 0o644);
    utimesSync(path, epoch, epoch);
  }
}

export interface DebBuild {
  deb: string;
  version: string;
}

export function buildDeb(options: { issuer: string; zone?: string; outDir?: string }): DebBuild {
  const issuer = new URL(options.issuer);
  if (issuer.protocol !== "https:") throw new Error(`--issuer must be an https:// URL, not ${options.issuer}`);
  // Both end up in a line systemd splits at spaces.
  if (/\s/.test(issuer.href) || (options.zone !== undefined && !/^[a-z0-9.-]+$/i.test(options.zone))) {
    throw new Error(`--issuer and --zone must be a URL and a zone name without spaces`);
  }
  ensureBuild();
  const { version: boxVersion } = JSON.parse(readFileSync(join(ROOT, "packages/box/package.json"), "utf8")) as { version: string };
  const head = changelogHead(readFileSync(join(DEBIAN, "changelog"), "utf8"));
  if (head.version !== boxVersion) {
    throw new Error(`deploy/debian/changelog's latest entry is ${head.version}, packages/box/package.json says ${boxVersion}: add an entry for ${boxVersion}`);
  }
  const epoch = process.env.SOURCE_DATE_EPOCH ? Number(process.env.SOURCE_DATE_EPOCH) : head.epoch;
  const outDir = options.outDir ?? join(ROOT, "build");
  const root = join(outDir, "deb", "boxcert-box");
  rmSync(root, { recursive: true, force: true });
  mkdirSync(root, { recursive: true });
  const boxOptions = [`--issuer ${issuer.href.replace(/\/$/, "")}`, ...(options.zone ? [`--zone ${options.zone}`] : [])].join(" ");
  layOut(root, { version: boxVersion, maintainer: head.maintainer, epoch, boxOptions });
  writeControl(root, { version: boxVersion, maintainer: head.maintainer });
  normalise(root, epoch);
  const deb = join(outDir, `boxcert-box_${boxVersion}_all.deb`);
  execFileSync("dpkg-deb", ["--build", "--root-owner-group", "-Zxz", "--threads-max=1", root, deb], {
    env: { ...process.env, SOURCE_DATE_EPOCH: String(epoch) },
    stdio: ["ignore", "ignore", "inherit"],
  });
  return { deb, version: boxVersion };
}

if (process.argv[1] === import.meta.filename) {
  const { values } = parseArgs({ options: { issuer: { type: "string" }, zone: { type: "string" } } });
  if (!values.issuer) {
    console.error("build-deb: give the vendor's issuer: npm run pack:deb -- --issuer https://issuer.example.net [--zone iot.example.net]");
    process.exit(2);
  }
  const { deb } = buildDeb({ issuer: values.issuer, ...(values.zone ? { zone: values.zone } : {}) });
  console.log(`build-deb: ${relative(process.cwd(), deb)}`);
}
