#!/usr/bin/env bash
# Installs what is missing, builds the release binary and runs Jumpgate on embedded SQLite.
# Arguments are passed to `jumpgate serve` (for example --config FILE).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. scripts/env.sh

bash scripts/setup.sh
build_release
echo "[run] starting Jumpgate: web panel on ${JUMPGATE_WEB_LISTEN:-127.0.0.1:3000}, data in ${JUMPGATE_STORAGE_DATA_DIR:-./data}" >&2
exec "$CARGO_TARGET_DIR/release/jumpgate" serve "$@"
