#!/usr/bin/env bash
# The whole test suite, exactly as CI runs it: formatting, lints, docs and every test.
# Installs what the suite needs when it is missing, so it works on a fresh machine.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

# The browser tests drive Debian's Chromium through chromedriver; the PostgreSQL tests start
# a throwaway cluster with the postgresql-15 server binaries. Install what is missing.
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
[ -x /usr/lib/postgresql/15/bin/initdb ] || missing+=(postgresql-15)
# The SIEM stream tests send syslog, CEF and OCSF to a real rsyslog the tests start, also
# over TLS (its OpenSSL driver).
[ -x /usr/sbin/rsyslogd ] || missing+=(rsyslog)
dpkg -s rsyslog-openssl >/dev/null 2>&1 || missing+=(rsyslog-openssl)
if [ ${#missing[@]} -gt 0 ]; then
  step "installing ${missing[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
# The OpenTelemetry SDK (and other Python peers) come from a venv of their own, rebuilt only
# when scripts/requirements-test.txt changes.
venv=target/test-venv
if ! cmp -s scripts/requirements-test.txt "$venv/requirements-test.txt"; then
  step "installing the Python test peers into $venv"
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r scripts/requirements-test.txt
  cp scripts/requirements-test.txt "$venv/requirements-test.txt"
fi
export LOGVAULT_TEST_PYTHON="$PWD/$venv/bin/python"
# In this suite, browser, PostgreSQL, Python-peer and rsyslog tests fail (rather than skip)
# when they cannot run.
export LOGVAULT_TEST_REQUIRE_BROWSER=1 LOGVAULT_TEST_REQUIRE_POSTGRES=1 LOGVAULT_TEST_REQUIRE_PYTHON=1
export LOGVAULT_TEST_REQUIRE_RSYSLOG=1

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (-D warnings)"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "cargo doc (-D warnings)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --locked

step "cargo test"
cargo test --workspace --locked

step "all checks passed"
