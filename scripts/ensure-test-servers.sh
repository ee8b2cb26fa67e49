#!/bin/sh
# Makes sure the servers the JS tests start are installed (Debian/Ubuntu).
# Idempotent and quiet: does nothing when they are already there.
#   PostgreSQL: installs Debian's `postgresql` only if no initdb exists
#   under /usr/lib/postgresql/*/bin/.
#   Chromium: installs Debian's `chromium` only if it is not on PATH.
#   Redis: installs Debian's `redis-server` only if it is not on PATH.
#   Prometheus: installs Debian's `prometheus` (it ships promtool) only if either is missing.
# Needs root (or sudo without a password) only when something must be installed.
set -eu

have_initdb() {
  for f in /usr/lib/postgresql/*/bin/initdb; do
    [ -x "$f" ] && return 0
  done
  return 1
}

apt_install() {
  if [ "$(id -u)" -eq 0 ]; then SUDO=""; elif command -v sudo >/dev/null 2>&1; then SUDO="sudo -n"; else
    echo "ensure-test-servers: need root to install $*" >&2
    return 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  # Try without refreshing the package lists first; refresh only if that fails.
  if ! $SUDO apt-get install -y -q --no-install-recommends "$@" >/dev/null 2>&1; then
    $SUDO apt-get update -q >/dev/null
    $SUDO apt-get install -y -q --no-install-recommends "$@" >/dev/null
  fi
}

if ! have_initdb; then
  echo "ensure-test-servers: installing postgresql (apt-get)" >&2
  apt_install postgresql
  have_initdb || { echo "ensure-test-servers: postgresql installed but no initdb under /usr/lib/postgresql/*/bin" >&2; exit 1; }
fi

# Chromium for the dashboard's browser test (driven by playwright-core).
if ! command -v chromium >/dev/null 2>&1; then
  echo "ensure-test-servers: installing chromium (apt-get)" >&2
  apt_install chromium
  command -v chromium >/dev/null 2>&1 || { echo "ensure-test-servers: chromium installed but not on PATH" >&2; exit 1; }
fi

# Redis for the several-instances test.
if ! command -v redis-server >/dev/null 2>&1; then
  echo "ensure-test-servers: installing redis-server (apt-get)" >&2
  apt_install redis-server
  command -v redis-server >/dev/null 2>&1 || { echo "ensure-test-servers: redis-server installed but not on PATH" >&2; exit 1; }
fi

# Prometheus (with promtool) for the scrape test. The test starts its own
# `prometheus` on 127.0.0.1 with a temporary config and storage, so whether
# Debian's service started (on :9090) does not matter.
if ! command -v prometheus >/dev/null 2>&1 || ! command -v promtool >/dev/null 2>&1; then
  echo "ensure-test-servers: installing prometheus (apt-get)" >&2
  apt_install prometheus
  command -v promtool >/dev/null 2>&1 || { echo "ensure-test-servers: prometheus installed but promtool not on PATH" >&2; exit 1; }
fi
