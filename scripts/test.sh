#!/usr/bin/env bash
# Runs every test: formatting, lints (server and WASM builds), unit and integration tests on
# SQLite and PostgreSQL, then the browser end-to-end tests against the release build.
# Installs whatever is missing first. Set JUMPGATE_SKIP_E2E=1 to stop before the browser tests.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. scripts/env.sh

step() { printf '\n[test] %s\n' "$*" >&2; }

step "prerequisites"
bash scripts/setup.sh

step "formatting (cargo fmt --check)"
cargo fmt --all -- --check

step "lints: server (ssr) build"
cargo clippy -p jumpgate --all-targets -- -D warnings
step "lints: browser (hydrate, wasm32) build"
cargo clippy -p jumpgate-frontend --target wasm32-unknown-unknown -- -D warnings

step "PostgreSQL for the storage tests"
export JUMPGATE_TEST_POSTGRES_URL
JUMPGATE_TEST_POSTGRES_URL=$(bash scripts/postgres.sh start)
export JUMPGATE_TEST_REQUIRE_POSTGRES=1
trap 'bash scripts/postgres.sh stop' EXIT

step "unit and integration tests (SQLite and PostgreSQL)"
cargo test -p jumpgate -p jumpgate-app

if [ "${JUMPGATE_SKIP_E2E:-0}" = 1 ]; then
  step "browser tests skipped (JUMPGATE_SKIP_E2E=1)"
  exit 0
fi

step "release build"
build_release

step "browser end-to-end tests (Playwright, Debian's Chromium)"
export JUMPGATE_BIN="$CARGO_TARGET_DIR/release/jumpgate"
npx playwright test -c end2end/playwright.config.ts
