#!/usr/bin/env bash
# `meson install --destdir` into a scratch folder, then build and run tests/install/outside.cpp
# against it with nothing but `pkg-config --cflags --libs semigrad`: the installed headers and
# semigrad.pc are enough for another project. Usage: check_install.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$1 src=$2
dest=$(mktemp -d)
trap 'rm -rf "$dest"' EXIT
meson install -C "$build" --destdir "$dest" --no-rebuild --quiet >/dev/null
pc=$(find "$dest" -name semigrad.pc | head -n 1)
[ -n "$pc" ] || { echo "semigrad.pc was not installed"; exit 1; }
export PKG_CONFIG_PATH="$(dirname "$pc")" PKG_CONFIG_SYSROOT_DIR="$dest"
c++ -std=c++20 -O1 "$src/tests/install/outside.cpp" -o "$dest/outside" \
    $(pkg-config --cflags semigrad) $(pkg-config --libs --static semigrad)
"$dest/outside"
