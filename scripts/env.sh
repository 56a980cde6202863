# Sourced by the other scripts: where builds and caches live.
# The cargo target directory sits outside the checkout so that every clone on this machine
# (CI makes a fresh one per run) reuses what was already compiled.
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
export JUMPGATE_CACHE_DIR="${JUMPGATE_CACHE_DIR:-$HOME/.cache/jumpgate}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$JUMPGATE_CACHE_DIR/target}"
# Two cores: more parallel jobs only add memory pressure.
export CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-2}"
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1

# Builds the release front end (WASM, JS, CSS into target/site), then the release server,
# which embeds that site into the one `jumpgate` binary.
build_release() {
  cargo leptos build --release --frontend-only
  cargo build --release -p jumpgate
}
