#!/usr/bin/env bash
# The sysroot the prebuilt binaries are built against (scripts/prebuild.js): Debian 11 (bullseye)'s glibc 2.31
# and libstdc++ 6.0.28 (GCC 10), headers and libraries, so that the binaries load on Debian 11 / 12, Ubuntu 20.04+
# and Raspberry Pi OS (bullseye and bookworm). The compiler stays the system's GCC (g++ /
# aarch64-linux-gnu-g++), which knows every ISA the kernels use; only the C and C++ libraries are the old ones.
#   scripts/prebuild-sysroot.sh x64|arm64   ->  build-prebuild/sysroot-<arch>/
# Debian packages fetched with `apt-get download` through a private apt configuration (build-prebuild/apt:
# bullseye's package list; the system's apt sources are not touched), unpacked with `dpkg -x`, absolute
# symbolic links made relative so that the linker stays inside the sysroot. Nothing is installed.
set -euo pipefail
cd "$(dirname "$0")/.."
ARCH=${1:?usage: $0 x64|arm64}
OUT=${MNQ_PREBUILD_DIR:-$PWD/build-prebuild}
SYSROOT=$OUT/sysroot-$ARCH
APT=$OUT/apt
SUITE=bullseye
say() { echo "[prebuild-sysroot] $*"; }

case "$ARCH" in
  x64) PKGS=(libc6:amd64 libc6-dev:amd64 linux-libc-dev:amd64 libcrypt1:amd64 libcrypt-dev:amd64
             libgcc-s1:amd64 libstdc++6:amd64 libstdc++-10-dev:amd64) ;;
  arm64) PKGS=(libc6-arm64-cross libc6-dev-arm64-cross linux-libc-dev-arm64-cross libgcc-s1-arm64-cross
               libstdc++6-arm64-cross libstdc++-10-dev-arm64-cross) ;;
  *) echo "usage: $0 x64|arm64" >&2; exit 2 ;;
esac

if [ -f "$SYSROOT/.complete" ]; then
  say "sysroot for $ARCH already in ${SYSROOT#$PWD/}"
  exit 0
fi

mkdir -p "$APT/lists/partial" "$APT/cache/archives/partial" "$APT/debs-$ARCH"
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
[ -f "$KEYRING" ] || { say "missing $KEYRING (apt-get install debian-archive-keyring)" >&2; exit 1; }
echo "deb [arch=amd64 signed-by=$KEYRING] http://deb.debian.org/debian $SUITE main" > "$APT/sources.list"
APT_OPTS=(-o "Dir::Etc::SourceList=$APT/sources.list" -o "Dir::Etc::SourceParts=/dev/null"
          -o "Dir::State::Lists=$APT/lists" -o "Dir::Cache=$APT/cache" -o "Debug::NoLocking=1")
if [ ! -f "$APT/lists/.updated" ]; then
  say "apt-get update ($SUITE package list, private to ${APT#$PWD/})"
  apt-get "${APT_OPTS[@]}" update -qq
  touch "$APT/lists/.updated"
fi
say "apt-get download ${PKGS[*]} ($SUITE)"
(cd "$APT/debs-$ARCH" && rm -f ./*.deb && apt-get "${APT_OPTS[@]}" download "${PKGS[@]/%//$SUITE}" 2>&1 \
  | grep -v "^W: Download is performed unsandboxed" || true)
n=$(ls "$APT/debs-$ARCH"/*.deb 2>/dev/null | wc -l)
[ "$n" = "${#PKGS[@]}" ] || { say "expected ${#PKGS[@]} packages, got $n" >&2; exit 1; }

rm -rf "$SYSROOT.tmp"
mkdir -p "$SYSROOT.tmp"
for deb in "$APT/debs-$ARCH"/*.deb; do dpkg -x "$deb" "$SYSROOT.tmp"; done
# absolute links (libc.so.6 -> /lib/..., ld.so) would leave the sysroot: make them relative
find "$SYSROOT.tmp" -type l -lname '/*' | while read -r link; do
  target=$(readlink "$link")
  ln -sfn "$(realpath -m --relative-to="$(dirname "$link")" "$SYSROOT.tmp$target")" "$link"
done
rm -rf "$SYSROOT"
mv "$SYSROOT.tmp" "$SYSROOT"
touch "$SYSROOT/.complete"
say "sysroot for $ARCH: ${SYSROOT#$PWD/} ($(du -sh "$SYSROOT" | cut -f1))"
