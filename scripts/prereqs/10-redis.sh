#!/usr/bin/env bash
# redis-server for the shared rate-limit test (test/integration/rate-limit-redis.test.ts):
# the test starts its own instance on loopback and a free port; nothing runs as a service.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
command -v redis-server >/dev/null 2>&1 || apt_install redis-server
