#!/usr/bin/env bash
# Prepares the arm64 Node of the emulated tests (scripts/test-arm64-node.js): an arm64 Node 18 (Debian packages,
# fetched with `apt-get download`, unpacked with `dpkg -x` into build-arm64/node-root; nothing is installed
# system-wide). The addon it loads is the npm package's arm64 prebuild (scripts/prebuild.js).
# Then: qemu-aarch64 -cpu cortex-a72 -L build-arm64/node-root \
#         -E LD_LIBRARY_PATH=build-arm64/node-root/usr/lib/aarch64-linux-gnu \
#         build-arm64/node-root/usr/bin/node ...
# Needs: qemu-user, and (once) the arm64 dpkg architecture: as root this script runs
# `dpkg --add-architecture arm64 && apt-get update` itself when it is missing.
# Usage: scripts/arm64-node.sh [--node-only]   (--node-only: the same; kept for callers that pass it)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT_DIR=$PWD
OUT=${MNQ_ARM64_BUILD:-$ROOT_DIR/build-arm64}
NODE_ROOT=$OUT/node-root
DEBS=$OUT/node-debs
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

case "${1:-}" in
  --node-only | "") fetch_node ;;
  *) echo "usage: $0 [--node-only]" >&2; exit 2 ;;
esac
