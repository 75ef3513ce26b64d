#!/usr/bin/env bash
# Prepares the arm64 Node test path (used by scripts/test-arm64.js):
#   1. an arm64 Node 18 (Debian packages, fetched with `apt-get download`, unpacked
#      with `dpkg -x` into build-arm64/node-root; nothing is installed system-wide),
#   2. the mnq addon cross-built for aarch64: build-arm64/addon/mnq.node
#      (native/CMakeLists.txt's cmake-js target, configured with the aarch64
#      toolchain file and the N-API headers of node_modules/node-api-headers).
# Then: qemu-aarch64 -cpu cortex-a72 -L build-arm64/node-root \
#         -E LD_LIBRARY_PATH=build-arm64/node-root/usr/lib/aarch64-linux-gnu \
#         build-arm64/node-root/usr/bin/node ...
# Needs: aarch64-linux-gnu-g++, cmake, qemu-user, and (for step 1, once) the arm64
# dpkg architecture: as root this script runs `dpkg --add-architecture arm64 &&
# apt-get update` itself when it is missing.
# Usage: scripts/arm64-node.sh [--node-only | --addon-only]
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT_DIR=$PWD
OUT=${MNQ_ARM64_BUILD:-$ROOT_DIR/build-arm64}
NODE_ROOT=$OUT/node-root
DEBS=$OUT/node-debs
JOBS=${MNQ_ARM64_JOBS:-2}
say() { echo "[arm64-node] $*"; }

PKGS=(nodejs:arm64 libnode108:arm64 libuv1:arm64 libicu72:arm64 libssl3:arm64 libc-ares2:arm64
      libbrotli1:arm64 zlib1g:arm64 libnghttp2-14:arm64 libstdc++6:arm64 libgcc-s1:arm64 libc6:arm64
      node-acorn node-cjs-module-lexer node-undici)

fetch_node() {
  if [ -x "$NODE_ROOT/usr/bin/node" ]; then
    say "arm64 Node already in ${NODE_ROOT#$ROOT_DIR/}"
    return
  fi
  if ! dpkg --print-foreign-architectures | grep -qx arm64; then
    if [ "$(id -u)" != 0 ]; then
      say "the arm64 dpkg architecture is missing; run as root: dpkg --add-architecture arm64 && apt-get update" >&2
      exit 2
    fi
    say "adding the arm64 dpkg architecture (dpkg --add-architecture arm64 && apt-get update)"
    dpkg --add-architecture arm64
    apt-get update -qq
  fi
  mkdir -p "$DEBS"
  say "apt-get download ${PKGS[*]}"
  if ! (cd "$DEBS" && apt-get download "${PKGS[@]}" >/dev/null); then
    if [ "$(id -u)" = 0 ]; then
      say "download failed; refreshing the package lists (apt-get update) and retrying"
      apt-get update -qq
      (cd "$DEBS" && apt-get download "${PKGS[@]}" >/dev/null)
    else
      exit 1
    fi
  fi
  rm -rf "$NODE_ROOT.tmp"
  mkdir -p "$NODE_ROOT.tmp"
  for deb in "$DEBS"/*.deb; do dpkg -x "$deb" "$NODE_ROOT.tmp"; done
  rm -rf "$NODE_ROOT"
  mv "$NODE_ROOT.tmp" "$NODE_ROOT"
  say "arm64 Node: $(qemu-aarch64 -cpu cortex-a72 -L "$NODE_ROOT" \
    -E LD_LIBRARY_PATH="$NODE_ROOT/usr/lib/aarch64-linux-gnu" "$NODE_ROOT/usr/bin/node" \
    -p 'process.version + " " + process.arch + " N-API " + process.versions.napi')"
}

build_addon() {
  local headers addon_api
  headers=$(node -p "require('node-api-headers').include_dir")
  # node-addon-api's include_dir is relative to the package root: pass it absolute.
  addon_api=$(node -p "require('path').resolve(require('node-addon-api').include_dir)")
  say "cross-building the addon (N-API headers: ${headers#$ROOT_DIR/})"
  cmake -S native -B "$OUT/addon" -DCMAKE_TOOLCHAIN_FILE="$ROOT_DIR/native/cmake/aarch64-toolchain.cmake" \
    -DCMAKE_BUILD_TYPE=Release -DCMAKE_JS_INC="$headers;$addon_api" >/dev/null
  nice cmake --build "$OUT/addon" -j "$JOBS"
  test -f "$OUT/addon/mnq.node"
  # ELF e_machine (bytes 18-19) must be 183 = EM_AARCH64.
  local machine
  machine=$(od -An -tu2 -j18 -N2 "$OUT/addon/mnq.node" | tr -d ' ')
  [ "$machine" = 183 ] || { say "addon is not an aarch64 ELF (e_machine $machine)" >&2; exit 1; }
  say "addon: ${OUT#$ROOT_DIR/}/addon/mnq.node (aarch64)"
}

case "${1:-}" in
  --node-only) fetch_node ;;
  --addon-only) build_addon ;;
  "") fetch_node; build_addon ;;
  *) echo "usage: $0 [--node-only | --addon-only]" >&2; exit 2 ;;
esac
