#!/usr/bin/env bash
# Makes the seed inputs afresh (make_seeds, with this build's checkpoint format) and runs each
# fuzz target's replay program over its own: a valid seed must load and round-trip, a nearly
# valid one must be refused cleanly. Usage: replay_fresh_seeds.sh MAKE_SEEDS REPLAY_<target>...
set -euo pipefail
make_seeds=$1; shift
seeds=$(mktemp -d)
trap 'rm -rf "$seeds"' EXIT
"$make_seeds" "$seeds"
for replay in "$@"; do
  target=${replay##*/replay_}
  [ -d "$seeds/$target" ] || { echo "error: make_seeds made no seeds for $target"; exit 1; }
  "$replay" "$seeds/$target"
done
