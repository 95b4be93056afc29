#!/usr/bin/env bash
# Debian's prometheus package: `promtool` checks the /metrics scrape and the alert rules, and
# the `prometheus` server scrapes the running service in test/integration/prometheus.test.ts.
# The tests start their own server on a free loopback port; the package's own service must not
# start (it would hold :9090 and write to /var/lib/prometheus), so the install runs under a
# policy-rc.d that forbids starting services, and the unit is disabled where systemd runs.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

if command -v promtool >/dev/null 2>&1 && command -v prometheus >/dev/null 2>&1; then exit 0; fi

policy=/usr/sbin/policy-rc.d
added_policy=0
cleanup() {
  if [ "$added_policy" = 1 ]; then as_root rm -f "$policy"; fi
}
trap cleanup EXIT
if can_be_root && [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' | as_root tee "$policy" >/dev/null && as_root chmod +x "$policy" && added_policy=1
fi

apt_install prometheus

if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
  as_root systemctl disable --now prometheus >/dev/null 2>&1 || true
fi
command -v promtool >/dev/null && command -v prometheus >/dev/null
