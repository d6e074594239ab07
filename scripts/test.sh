#!/usr/bin/env bash
# The README's test command: installs what the tests need (Debian packages when missing and we are root
# with apt), then runs every test file with node's test runner. Node 20's runner takes no globs and passes
# an empty list with exit 0, so the list is built here and an empty one is an error.
set -euo pipefail
cd "$(dirname "$0")/.."

# command -> Debian package
# chromium and certutil: the browser tests (test/*browser.test.ts); dnsmasq: a LAN resolver for the box's
# diagnostics tests; lintian, systemd-analyze and systemd-nspawn: the Debian package and the systemd units (test/package-deb,
# test/deploy-systemd); haproxy: in front of two issuers (test/fleet.test.ts, the storm benchmark).
declare -A NEEDS=([openssl]=openssl [curl]=curl [dig]=dnsutils [pebble]=pebble [chromium]=chromium [certutil]=libnss3-tools [dnsmasq]=dnsmasq-base [lintian]=lintian [systemd-analyze]=systemd [systemd-nspawn]=systemd-container [haproxy]=haproxy)
missing=()
for cmd in "${!NEEDS[@]}"; do
  # dnsmasq lives in /usr/sbin, which is not on every user's PATH.
  command -v "$cmd" >/dev/null 2>&1 || [ -x "/usr/sbin/$cmd" ] || missing+=("${NEEDS[$cmd]}")
done
# PostgreSQL's server binaries are not on PATH on Debian.
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || missing+=(postgresql)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "test: installing ${missing[*]} (apt-get)" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "test: missing Debian packages; run: sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
fi

[ -d node_modules ] || npm install --no-audit --no-fund
# The compiled programs, once, before the test files that run them start side by side (scripts/ensure-build.ts).
npm run -s build

# Tiers, fastest first (CONTRIBUTING.md): `unit` is every package's own tests (pure functions, and one
# component on real sockets on port 0, seconds each); `system` is test/ without the browser (real boxcert
# processes, Pebble, PostgreSQL, dig, curl); `browser` is test/*browser.test.ts (Debian's Chromium: the box's
# homepage, and @boxcert/web in a POS page).
# TIER=unit|system|browser runs one; the default runs all three.
mapfile -t files < <(
  case "${TIER:-all}" in
    unit) find packages -path '*/test/*.test.ts' -not -path '*/node_modules/*' | sort ;;
    system) find test -name '*.test.ts' -not -name '*browser.test.ts' | sort ;;
    browser) find test -name '*browser.test.ts' | sort ;;
    all) { find packages -path '*/test/*.test.ts' -not -path '*/node_modules/*' | sort; find test -name '*.test.ts' | sort; } ;;
    *) echo "test: unknown TIER=$TIER (unit, system, browser, all)" >&2; exit 2 ;;
  esac
)
if [ ${#files[@]} -eq 0 ]; then
  echo "test: no test files found: refusing to report success for a run that tests nothing" >&2
  exit 1
fi
echo "test: ${#files[@]} files" >&2
# A test reported as skipped fails the run (the shop's LAN tests skip, with their reason, where network
# namespaces cannot be made): the TAP copy of the report gives the count.
tap=$(mktemp)
trap 'rm -f "$tap"' EXIT
status=0
node --import tsx --test --test-reporter=spec --test-reporter-destination=stdout --test-reporter=tap --test-reporter-destination="$tap" \
  --test-concurrency=3 --test-timeout=300000 "${files[@]}" || status=$?
skipped=$(grep -E '^# skipped [0-9]+$' "$tap" | tail -1 | awk '{print $3}')
if [ "$status" = 0 ] && [ "${skipped:-0}" != 0 ]; then
  echo "test: $skipped test(s) skipped (their reasons are above): a run that skips is not a pass" >&2
  grep -E '# SKIP' "$tap" >&2 || true
  exit 1
fi
exit "$status"
