/**
 * The systemd units of the issuer and the dns (deploy/systemd/): checked by systemd-analyze, and run the way
 * they run on one machine (test/support/service-sandbox.ts): the compiled `boxcert` from /opt/boxcert, each
 * as its own unprivileged user of the group boxcert with only CAP_NET_BIND_SERVICE, sharing the issuer's
 * SQLite store, the CA keys the issuer's alone. Needs root, as the suite has.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile, execFileSync } from "node:child_process";
import { chmodSync, chownSync, mkdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { ensureBuild } from "../scripts/ensure-build.ts";
import { ensureDebianPackage, ROOT, tempDir, waitFor } from "./support/processes.ts";
import { ZONE } from "./support/system.ts";
import { bootMachine, type Machine } from "./support/machine.ts";
import { addNetns, commandLine, NET_BIND_SERVICE_ONLY, processIdentity, sandboxed, Unit, unitEnv, unitSandbox, untilOutput, type Netns, type Sandbox } from "./support/service-sandbox.ts";

const run = promisify(execFile);
const DEPLOY = join(ROOT, "deploy/systemd");
const ISSUER_UNIT = join(DEPLOY, "boxcert-issuer.service");
const DNS_UNIT = join(DEPLOY, "boxcert-dns.service");
/** The users and group boxcert.sysusers makes, as fixed numbers (no entry on this machine is needed). */
const IDS = { group: 61000, issuer: 61001, dns: 61002 };

test("systemd-analyze verify accepts both units; the dns reads the store the issuer writes, as another user of the same group", async () => {
  ensureDebianPackage("systemd-analyze", "systemd");
  // ExecStart's program is /usr/bin/node, which this machine has; the script after it is an argument.
  const verify = await run("systemd-analyze", ["verify", ISSUER_UNIT, DNS_UNIT]).catch((err: { code: number; stdout: string; stderr: string }) => err);
  const said = `${verify.stdout}${verify.stderr}`;
  assert.equal("code" in verify ? verify.code : 0, 0, said);
  // Warnings (an unknown key, a bad value) do not change the exit status: none may mention the units.
  assert.doesNotMatch(said, /boxcert-(issuer|dns)\.service/, said);

  const issuer = new Unit(ISSUER_UNIT);
  const dns = new Unit(DNS_UNIT);
  const issuerState = `/var/lib/${issuer.one("StateDirectory")}`;
  assert.ok(issuer.one("ExecStart").includes(`--store \${STATE_DIRECTORY}/registry.sqlite`));
  assert.ok(dns.one("ExecStart").includes(`--store ${issuerState}/registry.sqlite`));
  assert.ok(dns.all("ReadWritePaths").includes(`-${issuerState}`));
  assert.notEqual(issuer.one("User"), dns.one("User"));
  assert.equal(issuer.one("Group"), dns.one("Group"));
  for (const unit of [issuer, dns]) assert.deepEqual(unit.all("MemoryDenyWriteExecute"), [], unit.path);
  // The docs show the units as they are.
  assert.ok(readFileSync(join(ROOT, "docs/issuer.md"), "utf8").includes(readFileSync(ISSUER_UNIT, "utf8")), "docs/issuer.md shows another unit");
  assert.ok(readFileSync(join(ROOT, "docs/dns.md"), "utf8").includes(readFileSync(DNS_UNIT, "utf8")), "docs/dns.md shows another unit");

  // The users, as the shipped sysusers.d file makes them (in a scratch root, not on this machine).
  const users = tempDir("boxcert-sysusers-");
  try {
    mkdirSync(join(users, "etc"));
    execFileSync("systemd-sysusers", [`--root=${users}`, "-"], { input: readFileSync(join(DEPLOY, "boxcert.sysusers")), stdio: ["pipe", "ignore", "ignore"] });
    const gid = /^boxcert:x:(\d+):/m.exec(readFileSync(join(users, "etc/group"), "utf8"))?.[1];
    const passwd = readFileSync(join(users, "etc/passwd"), "utf8");
    for (const unit of [issuer, dns]) assert.match(passwd, new RegExp(`^${unit.one("User")}:x:\\d+:${gid}:`, "m"));
  } finally {
    rmSync(users, { recursive: true, force: true });
  }
});

/** Runs a unit's ExecStartPre= lines to their end, then starts its ExecStart=. */
async function startUnit(ns: Netns, unit: Unit, sandbox: Sandbox, env: Record<string, string>) {
  for (const line of unit.all("ExecStartPre")) {
    const pre = await ns.run(...sandboxed(commandLine(line, env), sandbox), { env });
    assert.equal(pre.code, 0, `${line}: ${pre.stderr}`);
  }
  return ns.spawn(...sandboxed(commandLine(unit.one("ExecStart"), env), sandbox), { env });
}

test("as their units run them, the issuer serves port 443 and the dns answers on port 53 from the issuer's store, each with only CAP_NET_BIND_SERVICE; the dns cannot read the CA keys", async (t) => {
  ensureBuild();
  const ns = addNetns("bcdeploy");
  const state = tempDir("boxcert-issuer-state-");
  t.after(async () => {
    await ns.close();
    rmSync(state, { recursive: true, force: true });
  });
  assert.equal((await ns.run("cat", ["/proc/sys/net/ipv4/ip_unprivileged_port_start"])).stdout.trim(), "1024");

  const issuerUnit = new Unit(ISSUER_UNIT);
  const dnsUnit = new Unit(DNS_UNIT);
  // The state directory systemd would make for the issuer: its user's, the group's, StateDirectoryMode.
  chownSync(state, IDS.issuer, IDS.group);
  chmodSync(state, Number.parseInt(issuerUnit.one("StateDirectoryMode"), 8));
  // The built repository where the units expect it, and the issuer's state directory at its path.
  const mounts = { "/opt/boxcert": ROOT, [`/var/lib/${issuerUnit.one("StateDirectory")}`]: state };
  const issuerSandbox = unitSandbox(issuerUnit, { uid: IDS.issuer, gid: IDS.group, capability: true, mounts });
  const dnsSandbox = (capability: boolean) => unitSandbox(dnsUnit, { uid: IDS.dns, gid: IDS.group, capability, mounts });

  const issuer = await startUnit(ns, issuerUnit, issuerSandbox, unitEnv(issuerUnit, { BOXCERT_ISSUER_OPTIONS: `--zone ${ZONE} --listen 127.0.0.1:443 --plain-http` }));
  await untilOutput(issuer, "the issuer", /"issuer listening"/);
  const only = { effective: NET_BIND_SERVICE_ONLY, bounding: NET_BIND_SERVICE_ONLY, ambient: NET_BIND_SERVICE_ONLY, noNewPrivs: true };
  assert.deepEqual(processIdentity(issuer.child.pid!), { uid: IDS.issuer, gid: IDS.group, ...only });
  const served = await ns.run("curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", "http://127.0.0.1:443/v1/nothing-here"]);
  assert.equal(served.stdout, "404");
  // Made 0660 by ExecStartPre's touch under UMask=0007, so SQLite's -wal and -shm files are too: the group may write.
  for (const file of ["registry.sqlite", "registry.sqlite-wal", "registry.sqlite-shm"]) {
    const st = statSync(join(state, file));
    assert.equal(st.mode & 0o777, 0o660, file);
    assert.equal(st.gid, IDS.group, file);
  }

  const dnsEnv = unitEnv(dnsUnit, { BOXCERT_DNS_OPTIONS: `--zone ${ZONE} --listen 127.0.0.1:53` });
  const denied = await ns.run(...sandboxed(commandLine(dnsUnit.one("ExecStart"), dnsEnv), dnsSandbox(false)), { env: dnsEnv });
  assert.notEqual(denied.code, 0);
  assert.match(denied.stdout + denied.stderr, /binding UDP 127\.0\.0\.1:53: .*EACCES/);

  const dns = await startUnit(ns, dnsUnit, dnsSandbox(true), dnsEnv);
  await untilOutput(dns, "the dns", /"dns listening \(UDP and TCP\)"/);
  assert.deepEqual(processIdentity(dns.child.pid!), { uid: IDS.dns, gid: IDS.group, ...only });
  assert.match(dns.output(), /"store":"\/var\/lib\/boxcert-issuer\/registry\.sqlite".*"zone loaded"/);
  for (const transport of ["+notcp", "+tcp"]) {
    const dig = await ns.run("dig", ["@127.0.0.1", "-p", "53", "+norec", transport, "SOA", ZONE]);
    assert.match(dig.stdout, /status: NOERROR/, dig.stdout);
    assert.match(dig.stdout, /;; flags: qr aa;/, dig.stdout);
    assert.match(dig.stdout, new RegExp(`^${ZONE.replace(".", "\\.")}\\.\\s+\\d+\\s+IN\\s+SOA\\s+ns1\\.${ZONE.replace(".", "\\.")}\\. `, "m"), dig.stdout);
  }

  // The CA's keys: the issuer's user reads them, the dns's user cannot (keys/ is 0700).
  const key = "/var/lib/boxcert-issuer/keys/embedded-ca/root.key";
  const asIssuer = await ns.run(...sandboxed(["test", "-r", key], issuerSandbox));
  assert.equal(asIssuer.code, 0);
  const asDns = await ns.run(...sandboxed(["cat", key], dnsSandbox(false)));
  assert.notEqual(asDns.code, 0);
  assert.match(asDns.stderr, /Permission denied/);
});

test("on a machine booted with systemd, installed as docs/issuer.md says, both services run as their users and the dns answers from the issuer's store", async (t) => {
  ensureBuild();
  const ns = addNetns("bcsrv");
  const machines: Machine[] = [];
  t.after(async () => {
    for (const machine of machines) await machine.stop();
    await ns.close();
  });
  const machine = await bootMachine(ns, { "/opt/boxcert": ROOT });
  machines.push(machine);
  const sh = async (script: string) => {
    const r = await machine.sh(script);
    assert.equal(r.code, 0, `${script}\n${r.stdout}`);
    return r.stdout;
  };
  await sh(
    [
      "set -e",
      "cd /opt/boxcert/deploy/systemd",
      "install -m 0644 boxcert-issuer.service boxcert-dns.service /etc/systemd/system/",
      "install -D -m 0644 boxcert.sysusers /etc/sysusers.d/boxcert.conf",
      "systemd-sysusers",
      `echo 'BOXCERT_ISSUER_OPTIONS="--zone ${ZONE} --listen 127.0.0.1:443 --plain-http"' > /etc/default/boxcert-issuer`,
      `echo 'BOXCERT_DNS_OPTIONS="--zone ${ZONE} --listen 127.0.0.1:53"' > /etc/default/boxcert-dns`,
      "systemctl daemon-reload",
      "systemctl enable --now boxcert-issuer boxcert-dns",
    ].join("\n"),
  );
  const soa = await waitFor("the dns's answer", async () => {
    const dig = await ns.run("dig", ["@127.0.0.1", "-p", "53", "+norec", "+tries=1", "+time=1", "SOA", ZONE]);
    return /status: NOERROR/.test(dig.stdout) ? dig.stdout : null;
  }, 30_000).catch(async (err: Error) => {
    throw new Error(`${err.message}\n${(await machine.sh("journalctl -u boxcert-issuer -u boxcert-dns --no-pager | tail -30")).stdout}`);
  });
  assert.match(soa, /;; flags: qr aa;/);
  await waitFor("the issuer's answer", async () => {
    const served = await ns.run("curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", "http://127.0.0.1:443/v1/nothing-here"]);
    return served.stdout === "404";
  }, 30_000);

  for (const service of ["boxcert-issuer", "boxcert-dns"]) {
    const status = await sh(`grep -E '^(Uid|CapEff|NoNewPrivs):' /proc/$(systemctl show --property=MainPID --value ${service})/status; id -u ${service}`);
    const uid = status.trim().split("\n").at(-1);
    assert.match(status, new RegExp(`^Uid:\\s+${uid}\\s`, "m"), service);
    assert.match(status, new RegExp(`^CapEff:\\s+${NET_BIND_SERVICE_ONLY}$`, "m"), service);
    assert.match(status, /^NoNewPrivs:\s+1$/m, service);
  }
  // The store and SQLite's files beside it: the group's to write, whoever made them; the keys: the issuer user's.
  assert.match(await sh("stat -c '%n %a %G' /var/lib/boxcert-issuer/registry.sqlite*"), /^(\S+ 660 boxcert\n){3}$/);
  assert.equal((await machine.sh("runuser -u boxcert-dns -- cat /var/lib/boxcert-issuer/keys/embedded-ca/root.key")).code, 1);
  // The issuer's user writes the store while the dns has it open.
  await sh("runuser -u boxcert-issuer -- /usr/bin/node /opt/boxcert/packages/cli/bin/boxcert.js admin subscription add DEPLOY-1 --state in_progress --seats 1 --store /var/lib/boxcert-issuer/registry.sqlite");
  assert.equal((await sh("systemctl is-active boxcert-issuer boxcert-dns")).trim(), "active\nactive");
});
