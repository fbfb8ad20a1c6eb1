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
if [ ${#missing[@]} -gt 0 ]; then
  step "installing ${missing[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
# In this suite, browser and PostgreSQL tests fail (rather than skip) when they cannot run.
export LOGVAULT_TEST_REQUIRE_BROWSER=1 LOGVAULT_TEST_REQUIRE_POSTGRES=1

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (-D warnings)"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "cargo doc (-D warnings)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --locked

step "cargo test"
cargo test --workspace --locked

step "all checks passed"
