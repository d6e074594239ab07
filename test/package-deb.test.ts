/**
 * The Debian package of the box (scripts/build-deb.ts): its systemd unit checked by systemd-analyze, the
 * package by lintian, and its contents run the way the unit runs them, as an unprivileged user holding only
 * CAP_NET_BIND_SERVICE, serving ports 80 and 443 (test/support/service-sandbox.ts says how close to systemd
 * that is). Needs root (namespaces, setpriv), as the suite has.
 */
import { before, after, test } from "node:test";
import assert from "node:assert/strict";
import { execFile, execFileSync } from "node:child_process";
import { chmodSync, chownSync, copyFileSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { createHash } from "node:crypto";
import { basename, dirname, join } from "node:path";
import { promisify } from "node:util";
import { buildDeb } from "../scripts/build-deb.ts";
import { ensureDebianPackage, ROOT, StopWaiting, tempDir, waitFor } from "./support/processes.ts";
import { customer, ZONE, type BoxStatus } from "./support/system.ts";
import { bootMachine, type Machine } from "./support/machine.ts";
import { addNetns, commandLine, NET_BIND_SERVICE_ONLY, processIdentity, sandboxed, Unit, unitEnv, unitSandbox, untilOutput } from "./support/service-sandbox.ts";

const run = promisify(execFile);
const NOBODY = 65534;
const UNIT = "lib/systemd/system/boxcert-box.service";

let work: string;
let deb: string;
/** The package's contents, as `dpkg-deb -x` lays them out. */
let root: string;

before(() => {
  ensureDebianPackage("lintian", "lintian");
  ensureDebianPackage("systemd-analyze", "systemd");
  work = tempDir("boxcert-deb-");
  ({ deb } = buildDeb({ issuer: "https://issuer.example.net", zone: ZONE, outDir: join(work, "out") }));
  root = join(work, "root");
  execFileSync("dpkg-deb", ["-x", deb, root]);
  // The unprivileged user of the last test runs the program from there (mkdtemp made both 0700).
  chmodSync(work, 0o755);
  chmodSync(root, 0o755);
});

after(() => rmSync(work, { recursive: true, force: true }));

test("the package holds the bundle, the command, the unit, the user, the conffile; the same sources give the same bytes", async () => {
  const info = execFileSync("dpkg-deb", ["--info", deb], { encoding: "utf8" });
  assert.match(info, /^ Package: boxcert-box$/m);
  assert.match(info, /^ Architecture: all$/m);
  assert.match(info, /^ Depends: nodejs \(>= 20\)/m);
  const listing = execFileSync("dpkg-deb", ["--contents", deb], { encoding: "utf8" });
  for (const line of listing.trim().split("\n")) assert.match(line, /^\S+ root\/root /, `not root's: ${line}`);
  assert.match(listing, /^-rwxr-xr-x \S+ +\d+ [\d-]+ [\d:]+ \.\/usr\/lib\/boxcert-box\/boxcert-box\.js$/m);
  assert.match(listing, /\.\/usr\/bin\/boxcert-box -> \.\.\/lib\/boxcert-box\/boxcert-box\.js$/m);
  assert.match(listing, /\.\/usr\/lib\/boxcert-box\/chunks\/x509[^ ]*\.js$/m);
  assert.equal(execFileSync("dpkg-deb", ["--field", deb, "Version"], { encoding: "utf8" }).trim(), JSON.parse(readFileSync(join(ROOT, "packages/box/package.json"), "utf8")).version);
  const control = join(work, "control");
  execFileSync("dpkg-deb", ["--control", deb, control]);
  assert.equal(readFileSync(join(control, "conffiles"), "utf8"), "/etc/default/boxcert-box\n");
  assert.match(readFileSync(join(root, "etc/default/boxcert-box"), "utf8"), /^BOXCERT_BOX_OPTIONS="--issuer https:\/\/issuer\.example\.net --zone boxcert\.test"$/m);

  // The user the unit names, as the shipped sysusers.d file makes it (in a scratch root, not on this machine).
  const users = join(work, "users");
  mkdirSync(join(users, "etc"), { recursive: true });
  execFileSync("systemd-sysusers", [`--root=${users}`, "-"], { input: readFileSync(join(root, "usr/lib/sysusers.d/boxcert-box.conf")), stdio: ["pipe", "ignore", "ignore"] });
  assert.match(readFileSync(join(users, "etc/passwd"), "utf8"), /^boxcert:x:\d+:\d+:[^:]*:\/var\/lib\/boxcert:\/usr\/sbin\/nologin$/m);
  const unit = new Unit(join(root, UNIT));
  assert.equal(unit.one("User"), "boxcert");
  // V8 compiles to machine code at run time: with this setting node cannot start.
  assert.deepEqual(unit.all("MemoryDenyWriteExecute"), []);
  const shipped = readFileSync(join(root, UNIT), "utf8");
  assert.ok(readFileSync(join(ROOT, "docs/deployment-box.md"), "utf8").includes(shipped), "docs/deployment-box.md shows another unit");

  // Reproducible: built again elsewhere, byte for byte the same.
  const again = buildDeb({ issuer: "https://issuer.example.net", zone: ZONE, outDir: join(work, "again") });
  const sha = (file: string) => createHash("sha256").update(readFileSync(file)).digest("hex");
  assert.equal(sha(again.deb), sha(deb));
});

test("systemd-analyze verify accepts the unit, its ExecStart found in the package's own tree", async () => {
  // systemd 252's `verify --root=DIR` loads the unit from DIR and checks that ExecStart's program exists and
  // is executable there (following /usr/bin/boxcert-box's relative link inside DIR), so the package is
  // checked as installed without installing it. The units every service depends on (sysinit.target and
  // the other targets) come from this machine's systemd, copied into DIR.
  const verifyRoot = join(work, "verify");
  execFileSync("dpkg-deb", ["-x", deb, verifyRoot]);
  const units = "/lib/systemd/system";
  for (const name of readdirSync(units).filter((n) => n.endsWith(".target"))) {
    try {
      copyFileSync(join(units, name), join(verifyRoot, "lib/systemd/system", name));
    } catch {
      // a dangling link among the machine's units: not one this unit needs
    }
  }
  // Documentation=man:boxcert-box(1) is checked with man(1), which looks where MANPATH says: the package's pages.
  const env = { ...process.env, MANPATH: join(verifyRoot, "usr/share/man") };
  const verify = await run("systemd-analyze", ["verify", `--root=${verifyRoot}`, "boxcert-box.service"], { env }).catch((err: { code: number; stdout: string; stderr: string }) => err);
  const said = `${verify.stdout}${verify.stderr}`;
  assert.equal("code" in verify ? verify.code : 0, 0, said);
  // Warnings (an unknown key, a bad value) do not change the exit status: none may mention the unit.
  assert.doesNotMatch(said, /boxcert-box/, said);

  // And the check bites: the same tree without the program fails.
  rmSync(join(verifyRoot, "usr/lib/boxcert-box/boxcert-box.js"));
  const broken = await run("systemd-analyze", ["verify", `--root=${verifyRoot}`, "boxcert-box.service"], { env }).then(
    () => ({ code: 0, stderr: "" }),
    (err: { code: number; stderr: string }) => err,
  );
  assert.notEqual(broken.code, 0);
  assert.match(broken.stderr, /\/usr\/bin\/boxcert-box is not executable/);
});

test("lintian finds no error and no warning in the package", async () => {
  const result = await run("lintian", ["--display-info", "--pedantic", deb]).then(
    (r) => ({ code: 0, out: r.stdout + r.stderr }),
    (err: { code: number; stdout: string; stderr: string }) => ({ code: err.code, out: err.stdout + err.stderr }),
  );
  assert.doesNotMatch(result.out, /^E: /m, result.out);
  assert.doesNotMatch(result.out, /^W: /m, result.out);
  assert.equal(result.code, 0, result.out);
});

test("as an unprivileged user with only CAP_NET_BIND_SERVICE, the packaged box serves HTTP on port 80 and its certificate on 443; without the capability it cannot bind", async (t) => {
  const ns = addNetns("bcdeb");
  const dir = tempDir("boxcert-deb-run-");
  t.after(async () => {
    await ns.close();
    rmSync(dir, { recursive: true, force: true });
  });
  // Ports below this one need CAP_NET_BIND_SERVICE: the capability is what lets the box bind 80 and 443.
  assert.equal((await ns.run("cat", ["/proc/sys/net/ipv4/ip_unprivileged_port_start"])).stdout.trim(), "1024");

  // A test issuer in the namespace (as root: it is not what this test is about).
  const issuerDir = join(dir, "issuer");
  const store = join(issuerDir, "registry.sqlite");
  const issuer = ns.spawn(process.execPath, [join(ROOT, "packages/cli/bin/boxcert.js"), "issuer", "--zone", ZONE, "--store", store, "--listen", "127.0.0.1:8700", "--plain-http", "--cert-lifetime", "1h"], { cwd: ROOT });
  await untilOutput(issuer, "the issuer", /issuer listening/);
  const code = "DEB-PACKAGE-1";
  const dbUuid = await customer(store, code, "in_progress", 1);

  // The state directory systemd would make: the service user's, 0700, at /var/lib/boxcert.
  const data = join(dir, "data");
  mkdirSync(data, { mode: 0o700 });
  chownSync(data, NOBODY, NOBODY);
  const unit = new Unit(join(root, UNIT));
  const sandbox = (capability: boolean) => unitSandbox(unit, { uid: NOBODY, gid: NOBODY, capability, mounts: { "/var/lib/boxcert": data } });
  const env = unitEnv(unit, { BOXCERT_BOX_OPTIONS: "--ip 127.0.0.1 --listen-host 127.0.0.1 --issuer http://127.0.0.1:8700" });
  // The unit's command line, its program taken from the package's tree.
  const [program, ...args] = commandLine(unit.one("ExecStart"), env);
  const command = [join(root, program!), ...args];
  assert.deepEqual(args.slice(0, 7), ["box", "--data-dir", "/var/lib/boxcert", "--http-port", "80", "--https-port", "443"]);

  // Connected as the service user, the way docs/deployment-box.md says (runuser -u boxcert -- boxcert-box box connect ...).
  const connect = await ns.run(...sandboxed([join(root, "usr/bin/boxcert-box"), "box", "connect", "--data-dir", "/var/lib/boxcert", "--server", "http://erp.test:8069", "--db-uuid", dbUuid, "--enterprise-code", code], sandbox(true)), { env });
  assert.equal(connect.code, 0, connect.stderr);

  const denied = await ns.run(...sandboxed(command, sandbox(false)), { env, timeoutMs: 60_000 });
  assert.notEqual(denied.code, 0);
  assert.match(denied.stdout + denied.stderr, /cannot listen for HTTP on 127\.0\.0\.1:80: permission denied/);

  const box = ns.spawn(...sandboxed(command, sandbox(true)), { env });
  const status = await waitFor("the packaged box's certificate", async () => {
    if (box.child.exitCode !== null) throw new StopWaiting(`the box exited with ${box.child.exitCode}`);
    const res = await ns.run("curl", ["-sf", "http://127.0.0.1:80/api/status"]);
    if (res.code !== 0) return null;
    const s = JSON.parse(res.stdout) as BoxStatus;
    return !s.checking && s.certificate.status === "ok" ? s : null;
  }, 60_000).catch((err: Error) => {
    throw new Error(`${err.message}\n${box.output().slice(-3000)}`);
  });

  const only = { effective: NET_BIND_SERVICE_ONLY, bounding: NET_BIND_SERVICE_ONLY, ambient: NET_BIND_SERVICE_ONLY, noNewPrivs: true };
  assert.deepEqual(processIdentity(box.child.pid!), { uid: NOBODY, gid: NOBODY, ...only });

  // HTTPS on 443, by the box's name, the chain verified against the issuer's root and nothing else.
  const name = new URL(status.httpsUrl ?? "").hostname;
  assert.equal(new URL(status.httpsUrl ?? "").port, "");
  const rootPem = join(issuerDir, "keys/embedded-ca/root.pem");
  const https = await ns.run("curl", ["-sS", "--fail", "--cacert", rootPem, "--resolve", `${name}:443:127.0.0.1`, "--write-out", "\n%{ssl_verify_result}", `https://${name}/api/status`]);
  assert.equal(https.code, 0, https.stderr);
  const [body, verified] = https.stdout.split("\n");
  assert.equal(verified, "0");
  assert.equal((JSON.parse(body!) as BoxStatus).httpsUrl, status.httpsUrl);

  // It wrote as the service user, in its state directory only: everything else was read-only.
  assert.equal(statSync(join(data, "https.pem")).uid, NOBODY);
  assert.equal(statSync(join(data, "https.pem")).mode & 0o777, 0o600);
  assert.doesNotMatch(box.output(), /EROFS|read-only file system/i);
});

test("installed with apt on a machine booted with systemd: started at once as the boxcert user in its sandbox, certified once configured and connected, restarted by an upgrade, and purge removes its data", async (t) => {
  const ns = addNetns("bcapt");
  const dir = tempDir("boxcert-apt-");
  const machines: Machine[] = [];
  t.after(async () => {
    for (const machine of machines) await machine.stop();
    await ns.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const issuerDir = join(dir, "issuer");
  const store = join(issuerDir, "registry.sqlite");
  const issuer = ns.spawn(process.execPath, [join(ROOT, "packages/cli/bin/boxcert.js"), "issuer", "--zone", ZONE, "--store", store, "--listen", "127.0.0.1:8700", "--plain-http", "--cert-lifetime", "1h"], { cwd: ROOT });
  await untilOutput(issuer, "the issuer", /issuer listening/);
  const code = "DEB-APT-1";
  const dbUuid = await customer(store, code, "in_progress", 1);

  const machine = await bootMachine(ns, { "/srv/boxcert": dirname(deb) });
  machines.push(machine);
  const sh = async (script: string) => {
    const r = await machine.sh(script);
    assert.equal(r.code, 0, `${script}\n${r.stdout}`);
    return r.stdout;
  };
  const installed = await sh(`DEBIAN_FRONTEND=noninteractive apt-get install -y /srv/boxcert/${basename(deb)}`);
  assert.match(installed, /Creating user 'boxcert'/);
  assert.equal((await sh("systemctl is-enabled boxcert-box; systemctl is-active boxcert-box")).trim(), "enabled\nactive");

  // What docs/deployment-box.md tells the engineer: the options, the connection (as the service's user), a restart.
  await sh(`echo 'BOXCERT_BOX_OPTIONS="--issuer http://127.0.0.1:8700 --ip 127.0.0.1"' > /etc/default/boxcert-box`);
  await sh(`runuser -u boxcert -- boxcert-box box connect --data-dir /var/lib/boxcert --server http://erp.test:8069 --db-uuid ${dbUuid} --enterprise-code ${code}`);
  await sh("systemctl restart boxcert-box");
  const certified = async () =>
    waitFor("the installed service's certificate", async () => {
      const res = await ns.run("curl", ["-sf", "http://127.0.0.1:80/api/status"]);
      const s = res.code === 0 ? (JSON.parse(res.stdout) as BoxStatus) : null;
      return s && !s.checking && s.certificate.status === "ok" ? s : null;
    }, 60_000).catch(async (err: Error) => {
      throw new Error(`${err.message}\n${(await machine.sh("journalctl -u boxcert-box --no-pager | tail -20")).stdout}`);
    });
  const status = await certified();
  const name = new URL(status.httpsUrl ?? "").hostname;
  const https = await ns.run("curl", ["-sS", "--fail", "--cacert", join(issuerDir, "keys/embedded-ca/root.pem"), "--resolve", `${name}:443:127.0.0.1`, `https://${name}/api/status`]);
  assert.equal(https.code, 0, https.stderr);

  // systemd's sandbox, as the running service has it: its user, one capability, a read-only system but its state.
  const mainPid = async () => Number((await sh("systemctl show --property=MainPID --value boxcert-box")).trim());
  const pid = await mainPid();
  const proc = await sh(`id -u boxcert; grep -E '^(Uid|CapEff|CapBnd|CapAmb|NoNewPrivs):' /proc/${pid}/status; awk '{print $5, $6}' /proc/${pid}/mountinfo`);
  const [uid] = proc.split("\n");
  assert.match(proc, new RegExp(`^Uid:\\s+${uid}\\s`, "m"));
  for (const set of ["CapEff", "CapBnd", "CapAmb"]) assert.match(proc, new RegExp(`^${set}:\\s+${NET_BIND_SERVICE_ONLY}$`, "m"));
  assert.match(proc, /^NoNewPrivs:\s+1$/m);
  assert.match(proc, /^\/ ro,/m);
  assert.match(proc, /^\/var\/lib\/boxcert rw,/m);
  assert.match(await sh("stat -c '%U %a' /var/lib/boxcert /var/lib/boxcert/https.pem"), /^boxcert 700\nboxcert 600\n$/);
  assert.match(await sh("journalctl -u boxcert-box --no-pager"), /"msg":"box started"/);

  // An upgrade (the same package again): restarted, the edited options kept, the certificate still there.
  await sh(`DEBIAN_FRONTEND=noninteractive apt-get install -y --reinstall /srv/boxcert/${basename(deb)}`);
  assert.notEqual(await mainPid(), pid);
  assert.match(await sh("cat /etc/default/boxcert-box"), /--issuer http:\/\/127\.0\.0\.1:8700/);
  assert.equal((await certified()).httpsUrl, status.httpsUrl);

  // Purge: stopped, its data gone, saying so.
  const purged = await sh("DEBIAN_FRONTEND=noninteractive apt-get purge -y boxcert-box");
  assert.match(purged, /removing \/var\/lib\/boxcert/);
  assert.equal((await machine.sh("test -e /var/lib/boxcert || echo gone; systemctl is-active boxcert-box")).stdout.trim(), "gone\ninactive");
  assert.notEqual((await ns.run("curl", ["-sf", "http://127.0.0.1:80/api/status"])).code, 0);
});
