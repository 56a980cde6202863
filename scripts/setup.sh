#!/usr/bin/env bash
# Installs everything Jumpgate needs to build, run and test on a Debian 12 machine, as root.
# Idempotent: each step checks first and does nothing when its piece is already there.
# Called by scripts/run.sh and scripts/test.sh; safe to run on its own.
set -euo pipefail

# Pinned versions. The wasm-bindgen CLI must equal the `wasm-bindgen` library version in
# Cargo.lock byte for byte, or the generated JS glue does not match the WASM module.
CARGO_LEPTOS_VERSION=0.3.11
WASM_BINDGEN_VERSION=0.2.130

# What the build and the tests need from Debian:
#   pkg-config libssl-dev                      TLS for outbound HTTP and sqlx
#   libclang-dev libxml2-dev libxmlsec1-dev    samael (SAML, XML signatures through xmlsec)
#   openssh-server openssh-client              real SSH targets and clients in tests
#   postgresql                                 the second storage backend in tests
#   chromium                                   browser end-to-end tests (Playwright drives it)
#   xmlsec1                                    signs the test identity provider's responses
#   tmux                                       drives interactive terminals in tests
#   rsync                                      rsync through the SSH gateway in tests
#   faketime                                   a test identity provider whose clock is wrong
APT_PACKAGES=(
  pkg-config libssl-dev libclang-dev libxml2-dev libxmlsec1-dev
  openssh-server openssh-client postgresql chromium xmlsec1 tmux rsync curl ca-certificates
  faketime
)

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
log() { printf '[setup] %s\n' "$*" >&2; }

install_apt_packages() {
  local missing=()
  for p in "${APT_PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
      missing+=("$p")
    fi
  done
  if [ ${#missing[@]} -eq 0 ]; then
    return
  fi
  log "installing Debian packages: ${missing[*]}"
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: these Debian packages are missing and installing them needs root: ${missing[*]}" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

install_wasm_target() {
  if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
    log "adding the wasm32-unknown-unknown Rust target"
    rustup target add wasm32-unknown-unknown
  fi
}

# Builds a published crate's binaries from its own source after adjusting its lock file.
# `cargo install --locked` of these two pins fails on this toolchain (a lock entry needs a
# newer rustc, or points at a yanked crate); one precise downgrade fixes each.
build_tool_from_source() {
  local crate=$1 version=$2 fix_pkg=$3 fix_version=$4
  local work
  work=$(mktemp -d)
  log "building $crate $version from source (takes a while, once per machine)"
  mkdir -p "$work/fetch/src"
  cat >"$work/fetch/Cargo.toml" <<TOML
[package]
name = "fetch-$crate"
version = "0.0.0"
edition = "2021"
[dependencies]
$crate = "=$version"
TOML
  : >"$work/fetch/src/lib.rs"
  (cd "$work/fetch" && cargo fetch -q)
  local src
  src=$(find "${CARGO_HOME:-$HOME/.cargo}/registry/src" -maxdepth 2 -type d -name "$crate-$version" | head -n1)
  if [ -z "$src" ]; then
    echo "setup: could not find the source of $crate $version after cargo fetch" >&2
    exit 1
  fi
  cp -r "$src" "$work/src"
  (cd "$work/src" && cargo update -q -p "$fix_pkg" --precise "$fix_version" &&
    cargo install -q -j "${BUILD_JOBS:-2}" --path . --locked)
  rm -rf "$work"
}

install_cargo_leptos() {
  if cargo leptos --version 2>/dev/null | grep -q " $CARGO_LEPTOS_VERSION\$"; then
    return
  fi
  build_tool_from_source cargo-leptos "$CARGO_LEPTOS_VERSION" cargo-util-schemas 0.14.1
}

install_wasm_bindgen() {
  if wasm-bindgen --version 2>/dev/null | grep -q " $WASM_BINDGEN_VERSION\$"; then
    return
  fi
  build_tool_from_source wasm-bindgen-cli "$WASM_BINDGEN_VERSION" webpki-roots 1.0.10
}

install_npm_packages() {
  # Playwright must not download a browser of its own: the tests use Debian's Chromium.
  export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
  if [ -d "$here/node_modules" ] && [ "$here/node_modules/.package-lock.json" -nt "$here/package-lock.json" ]; then
    return
  fi
  log "installing npm packages (binaryen, sass-free CSS, xterm.js, Playwright)"
  (cd "$here" && npm ci --no-audit --no-fund --loglevel=error)
}

# The browser console's terminal: xterm.js and its fit add-on, from the npm packages above, are
# served by the panel from public/vendor/ (never from a CDN). Copied on every run so that an
# upgrade of the packages reaches the build.
copy_terminal_assets() {
  local to="$here/public/vendor/xterm"
  mkdir -p "$to"
  cp "$here/node_modules/@xterm/xterm/lib/xterm.mjs" "$to/xterm.mjs"
  cp "$here/node_modules/@xterm/xterm/css/xterm.css" "$to/xterm.css"
  cp "$here/node_modules/@xterm/addon-fit/lib/addon-fit.mjs" "$to/addon-fit.mjs"
}

# The SAML tests sign people in at a real third-party identity provider: pysaml2's, driven by
# server/tests/support/saml_idp.py. It lives in its own virtual environment under the cache
# directory, so the machine's Python stays untouched.
PYSAML2_VERSION=7.5.5
install_test_idp() {
  local venv="${JUMPGATE_CACHE_DIR:-$HOME/.cache/jumpgate}/pyvenv"
  if "$venv/bin/python" -c "import saml2, sys; sys.exit(saml2.__version__ != '$PYSAML2_VERSION')" 2>/dev/null; then
    return
  fi
  log "installing pysaml2 $PYSAML2_VERSION (the SAML tests' identity provider) into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check "pysaml2==$PYSAML2_VERSION"
}

export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
install_apt_packages
install_wasm_target
install_wasm_bindgen
install_cargo_leptos
install_npm_packages
copy_terminal_assets
install_test_idp
log "all build and test prerequisites are present"
