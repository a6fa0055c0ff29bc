# Sourced by the other scripts: where the toolchain pieces live and how to keep tools offline.
# Tools are cached outside the work tree (override with GASTOWN_CACHE) and skipped when present.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export GASTOWN_CACHE="${GASTOWN_CACHE:-$HOME/.cache/gastown-tools}"
NODE_VERSION=22.23.5
WORKER_BUILD_VERSION=0.8.7
# wasm-bindgen-cli must match the wasm-bindgen in Cargo.lock exactly.
WASM_BINDGEN_VERSION="$(awk '/^name = "wasm-bindgen"$/{getline; gsub(/"/,"",$3); print $3; exit}' Cargo.lock)"
NODE_HOME="$GASTOWN_CACHE/node-$NODE_VERSION/package"
WORKER_BUILD_ROOT="$GASTOWN_CACHE/worker-build-$WORKER_BUILD_VERSION"
WASM_BINDGEN_ROOT="$GASTOWN_CACHE/wasm-bindgen-$WASM_BINDGEN_VERSION"
export PATH="$NODE_HOME/bin:$WORKER_BUILD_ROOT/bin:$WASM_BINDGEN_ROOT/bin:$ROOT/node_modules/.bin:$PATH"
# worker-build: use this instead of downloading from GitHub. (It runs no wasm-opt: Cargo.toml turns
# it off, so none is installed; turned on, it would fail to download one rather than run another.)
export WASM_BINDGEN_BIN="$WASM_BINDGEN_ROOT/bin/wasm-bindgen"
# worker-build --panic-unwind rebuilds std (nightly cargo -Z build-std): with its smaller
# algorithms too (README "Wasm size"). Stable cargo ignores it.
export CARGO_UNSTABLE_BUILD_STD_FEATURES=panic-unwind,optimize_for_size
export ESBUILD_BIN="$ROOT/node_modules/@esbuild/linux-x64/bin/esbuild"
export XDG_CACHE_HOME="$GASTOWN_CACHE/xdg-cache"
# wrangler: no metrics, no error reports, no fetches of its own; config in the cache.
export WRANGLER_SEND_METRICS=false WRANGLER_SEND_ERROR_REPORTS=false
export CLOUDFLARE_CF_FETCH_ENABLED=false WRANGLER_HIDE_BANNER=true
export XDG_CONFIG_HOME="$GASTOWN_CACHE/xdg-config"
export NO_UPDATE_NOTIFIER=1 NPM_CONFIG_UPDATE_NOTIFIER=false NPM_CONFIG_FUND=false NPM_CONFIG_AUDIT=false
step() { printf '\n==> %s\n' "$*"; }
