#!/usr/bin/env bash
# End-to-end tests of the trainer examples/mnist_triplet, one concern per CASE:
#   train        ~300 steps on 1,600 real images: the loss falls, retrieval beats chance, every
#                output file is well formed (check_outputs.py)
#   determinism  same seed and threads -> byte-identical vecs.tsv; another seed -> different
#   resume       2 epochs + checkpoint, resumed to 3 == straight 3 epochs, byte for byte;
#                mismatched --seed/--batch-size/--epochs are refused with exit 2
#   bad_input    bad flags (exit 2), missing/corrupt data and checkpoints, --out on a file
#                (exit 1): one `error:` line naming the culprit, existing outputs untouched
#   cli          --help, --version, --summary (no data needed)
# Data: the first images of Debian's Fashion-MNIST, written as a small MNIST folder at test time
# by make_idx.py. Exit 77 (meson: skipped) when that package is not installed.
#
# Usage: trainer_test.sh CASE PATH/TO/mnist_triplet
# Environment: FASHION_MNIST_DIR (default /usr/share/datasets/fashion-mnist), PYTHON3 (python3).
set -euo pipefail

case_name=${1:?usage: trainer_test.sh CASE PATH/TO/mnist_triplet}
bin=${2:?usage: trainer_test.sh CASE PATH/TO/mnist_triplet}
here=$(cd "$(dirname "$0")" && pwd)
fashion=${FASHION_MNIST_DIR:-/usr/share/datasets/fashion-mnist}
python=${PYTHON3:-python3}
threads=2

tmp=$(mktemp -d "${TMPDIR:-/tmp}/trainer-e2e.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"

failures=0
fail() { echo "FAIL $*"; failures=$((failures + 1)); }
pass() { echo "ok   $*"; }

# make_data DIR TRAIN TEST: exits the whole test with 77 when Fashion-MNIST is missing.
make_data() {
  local rc=0
  "$python" "$here/make_idx.py" "$fashion" "$1" "$2" "$3" || rc=$?
  if ((rc == 77)); then exit 77; fi
  if ((rc != 0)); then echo "make_idx.py failed ($rc)"; exit 1; fi
}

# run NAME ARGS...: runs the trainer, keeping NAME.out, NAME.err and the exit code in $rc.
rc=0
run() {
  local name=$1
  shift
  rc=0
  "$bin" "$@" >"$name.out" 2>"$name.err" || rc=$?
}

# fingerprint DIR: names, sizes and checksums of everything in DIR (to prove it was left alone).
fingerprint() { (cd "$1" && find . -mindepth 1 | LC_ALL=C sort | while read -r f; do
  if [ -f "$f" ]; then echo "$f $(md5sum <"$f")"; else echo "$f"; fi; done); }

# expect_error NAME CODE PATTERN WHAT: the last run failed with exit CODE and exactly one stderr
# line, starting with "error:" and containing PATTERN (fixed string).
expect_error() {
  local name=$1 code=$2 pattern=$3 what=$4 lines
  lines=$(wc -l <"$name.err")
  if ((rc != code)); then
    fail "$what: exit $rc, expected $code; stderr: $(head -c 300 "$name.err")"
  elif [ "$lines" -ne 1 ]; then
    fail "$what: $lines stderr lines, expected one: $(head -c 600 "$name.err")"
  elif ! grep -q '^error: ' "$name.err"; then
    fail "$what: stderr does not start with 'error: ': $(cat "$name.err")"
  elif ! grep -qF -- "$pattern" "$name.err"; then
    fail "$what: stderr does not name '$pattern': $(cat "$name.err")"
  else
    pass "$what: exit $code, $(cat "$name.err")"
  fi
}

# A folder of earlier results that every failing run must leave exactly as it was.
make_sentinel() {
  mkdir -p sentinel
  printf 'sentinel vecs\n' >sentinel/vecs.tsv
  printf 'sentinel meta\n' >sentinel/meta.tsv
  printf '{"sentinel": true}\n' >sentinel/metrics.json
  fingerprint sentinel >sentinel.fp
}
check_sentinel() {
  if fingerprint sentinel | cmp -s - sentinel.fp; then :; else
    fail "$1: the existing output folder was changed:"
    fingerprint sentinel | diff sentinel.fp - || true
  fi
}

case_train() {
  make_data data 1600 400
  # 1,600 images / 32 = 50 steps per epoch, 6 epochs = 300 Adam steps.
  run train --data data --limit-train 1600 --epochs 6 --batch-size 32 --seed 42 \
    --threads "$threads" --out out
  if ((rc != 0)); then fail "training run: exit $rc: $(cat train.err)"; return; fi
  cat train.out
  [ -s train.err ] && fail "training run wrote to stderr: $(head -c 300 train.err)"
  grep -q '^epoch 6/6 ' train.out || fail "no 'epoch 6/6' progress line on stdout"
  if "$python" "$here/check_outputs.py" out data 6 32 "$threads" 42 1600; then
    pass "outputs well formed, loss falls, retrieval far above chance"
  else
    fail "check_outputs.py"
  fi
}

case_determinism() {
  make_data data 256 200
  local common=(--data data --epochs 1 --threads "$threads" --quiet)
  run a "${common[@]}" --seed 5 --out a
  run b "${common[@]}" --seed 5 --out b
  run c "${common[@]}" --seed 6 --out c
  run d "${common[@]}" --seed 5 --out d --no-fuse
  for r in a b c d; do [ -s $r/vecs.tsv ] || { fail "run $r left no vecs.tsv: $(cat $r.err)"; return; }; done
  if cmp -s a/vecs.tsv b/vecs.tsv; then pass "same seed: byte-identical vecs.tsv"
  else fail "same seed and threads, different vecs.tsv: $(cmp a/vecs.tsv b/vecs.tsv)"; fi
  if cmp -s a/vecs.tsv c/vecs.tsv; then fail "--seed 5 and --seed 6 gave identical vecs.tsv"
  else pass "another seed: different vecs.tsv"; fi
  cmp -s a/meta.tsv c/meta.tsv || fail "meta.tsv depends on the seed"
  # The fused conv blocks compute the unfused layers' own bits (tensor/conv_block.cpp).
  if cmp -s a/vecs.tsv d/vecs.tsv; then pass "--no-fuse: byte-identical vecs.tsv"
  else fail "--no-fuse changed vecs.tsv: $(cmp a/vecs.tsv d/vecs.tsv)"; fi
  grep -q '"fused_blocks": *true' a/metrics.json || fail "metrics.json of a fused run lacks fused_blocks: true"
  grep -q '"fused_blocks": *false' d/metrics.json || fail "metrics.json of a --no-fuse run lacks fused_blocks: false"
}

case_resume() {
  make_data data 256 200
  mkdir ck
  local common=(--data data --limit-train 192 --seed 3 --threads "$threads" --quiet)
  run first "${common[@]}" --epochs 2 --checkpoint ck/state.ckpt --out first
  ((rc == 0)) || { fail "2-epoch run with --checkpoint: exit $rc: $(cat first.err)"; return; }
  [ "$(ls -A ck)" = state.ckpt ] || fail "checkpoint folder holds '$(ls -A ck)', expected state.ckpt only"
  # Not --quiet: its progress lines show which epochs it trained.
  run resumed --data data --limit-train 192 --seed 3 --threads "$threads" \
    --epochs 3 --resume ck/state.ckpt --out resumed
  ((rc == 0)) || { fail "--resume run: exit $rc: $(cat resumed.err)"; return; }
  # Resuming must train epoch 3 only: an ignored --resume would also match the straight run.
  if [ "$(grep -c '^epoch ' resumed.out)" = 1 ] && grep -q '^epoch 3/3 ' resumed.out; then
    pass "the resumed run trained epoch 3 only"
  else fail "the resumed run did not train exactly epoch 3: $(cat resumed.out)"; fi
  run straight "${common[@]}" --epochs 3 --out straight
  ((rc == 0)) || { fail "straight 3-epoch run: exit $rc: $(cat straight.err)"; return; }
  if cmp -s resumed/vecs.tsv straight/vecs.tsv; then pass "2 epochs + resume to 3 == 3 epochs, byte for byte"
  else fail "resumed and straight vecs.tsv differ: $(cmp resumed/vecs.tsv straight/vecs.tsv)"; fi
  # The 2-epoch model must differ from the 3-epoch one, or the comparison above proves nothing.
  cmp -s first/vecs.tsv straight/vecs.tsv && fail "2 and 3 epochs gave identical vecs.tsv"
  # The per-epoch history comes from the checkpoint: the losses equal the straight run's, and
  # the first two epoch times are the checkpointed run's own (a retrained epoch never matches).
  "$python" - first/metrics.json resumed/metrics.json straight/metrics.json <<'EOF' ||
import json, sys
first, resumed, straight = (json.load(open(p)) for p in sys.argv[1:])
print("epoch_loss resumed", resumed["epoch_loss"], "\nepoch_loss straight", straight["epoch_loss"])
ok = resumed["epoch_loss"] == straight["epoch_loss"] and len(straight["epoch_loss"]) == 3
sys.exit(0 if ok and resumed["epoch_seconds"][:2] == first["epoch_seconds"] else 1)
EOF
    fail "metrics.json history (epoch_loss, epoch_seconds) not carried over by --resume"

  make_sentinel
  # Each flag given once: CLI11 refuses repeats with exit 2 too, which would prove nothing here.
  local again=(--data data --limit-train 192 --threads "$threads" --quiet --resume ck/state.ckpt
               --out sentinel)
  run bad_seed "${again[@]}" --epochs 3 --seed 4
  expect_error bad_seed 2 "--seed 4" "resume with another --seed"
  run bad_batch "${again[@]}" --epochs 3 --seed 3 --batch-size 16
  expect_error bad_batch 2 "--batch-size 16" "resume with another --batch-size"
  run bad_epochs "${again[@]}" --epochs 1 --seed 3
  expect_error bad_epochs 2 "--epochs 1" "resume with --epochs below the checkpoint's 2"
  for r in bad_seed bad_batch bad_epochs; do
    grep -q '^epoch ' $r.out && fail "$r: trained before refusing: $(cat $r.out)"
  done
  check_sentinel "refused resumes"
}

case_bad_input() {
  make_data data 256 100
  make_sentinel
  # Every flag at most once per run (CLI11 refuses repeats with exit 2, which would prove nothing).
  local common=(--threads "$threads" --out sentinel)

  # Flags: exit 2, nothing on stdout, before any training. PATTERN is what the message must name.
  local -a flag_cases=(
    "--bogus-flag|--data data --epochs 1 --bogus-flag"
    "--epochs|--data data --epochs 0"
    "--lr|--data data --epochs 1 --lr -1"
    "--batch-size|--data data --epochs 1 --batch-size x"
    "--limit-train 257|--data data --epochs 1 --limit-train 257"  # the set has 256
    "--seed|--data data --epochs 1 --seed -3"                      # no unsigned wrap-around
    "--shuffle-buffer|--data data --epochs 1 --shuffle-buffer -1"
    "--lr|--data data --epochs 1 --lr inf"                          # finite numbers only
    "--margin|--data data --epochs 1 --margin nan")
  local entry args flag
  for entry in "${flag_cases[@]}"; do
    flag=${entry%%|*} args=${entry#*|}
    # shellcheck disable=SC2086  # args are flags and values, split on purpose
    run flag "${common[@]}" $args
    expect_error flag 2 "$flag" "$args"
    [ -s flag.out ] && fail "$args: wrote to stdout: $(head -c 200 flag.out)"
  done

  common+=(--epochs 1 --limit-train 64)
  run nodata "${common[@]}" --data "$tmp/no-such-folder"
  expect_error nodata 1 no-such-folder "missing --data folder"

  # Damaged training images, each in its own copy of the folder.
  local img=train-images-idx3-ubyte.gz kind
  for kind in truncated_gz truncated_idx bad_magic corrupt_gzip not_gzip; do
    cp -r data "$kind"
    "$python" - "$kind/$img" "$kind" <<'EOF'
import gzip, sys
path, kind = sys.argv[1], sys.argv[2]
raw = open(path, "rb").read()
idx = gzip.decompress(raw)
if kind == "truncated_gz":     # a download cut short
    out = raw[: len(raw) // 2]
elif kind == "truncated_idx":  # valid gzip, but fewer images than the header claims
    out = gzip.compress(idx[: len(idx) - 784 * 10 - 100], mtime=0)
elif kind == "bad_magic":
    out = gzip.compress(b"\x01\x02" + idx[2:], mtime=0)
elif kind == "corrupt_gzip":   # flip bits inside the deflate stream, header and size intact
    out = bytearray(raw)
    for i in range(len(raw) // 3, len(raw) // 3 + 64):
        out[i] ^= 0x5A
elif kind == "not_gzip":       # the plain IDX bytes under the .gz name
    out = idx
open(path, "wb").write(bytes(out))
EOF
    run damaged "${common[@]}" --data "$kind"
    expect_error damaged 1 "$kind/$img" "$kind images file"
    [ -s damaged.out ] && fail "$kind: wrote to stdout: $(head -c 200 damaged.out)"
  done

  # --out naming an existing regular file: exit 1 before any training; the file is kept.
  printf 'precious\n' >a-file
  run outfile --data data --epochs 1 --limit-train 64 --threads "$threads" --out a-file
  expect_error outfile 1 a-file "--out on a regular file"
  [ -s outfile.out ] && fail "--out on a file: printed (trained?) before failing: $(cat outfile.out)"
  [ "$(cat a-file)" = precious ] || fail "--out on a file: the file was changed"
  # --checkpoint in a missing folder: exit 1 before training, not after the first epoch.
  run ckdir "${common[@]}" --data data --checkpoint no-such-dir/x.ckpt
  expect_error ckdir 1 no-such-dir "--checkpoint in a missing folder"
  [ -s ckdir.out ] && fail "--checkpoint in a missing folder: trained first: $(cat ckdir.out)"

  # SEMIGRAD_ISA naming an unknown path, or one above this CPU's (tensor/simd.hpp): exit 1.
  rc=0
  SEMIGRAD_ISA=sse9 "$bin" "${common[@]}" --data data >isa.out 2>isa.err || rc=$?
  expect_error isa 1 "SEMIGRAD_ISA" "SEMIGRAD_ISA=sse9"
  grep -q '^epoch ' isa.out && fail "SEMIGRAD_ISA=sse9: trained before failing"

  # Damaged checkpoints: make a real one, then break copies of it.
  mkdir ck
  run make_ck --data data --epochs 1 --limit-train 64 --threads "$threads" --quiet \
    --checkpoint ck/good.ckpt --out ck/out
  if ((rc != 0)); then fail "making a checkpoint: exit $rc: $(cat make_ck.err)"; else
    "$python" - ck/good.ckpt <<'EOF'
import sys
good = open(sys.argv[1], "rb").read()
broken = {
    "truncated_half.ckpt": good[: len(good) // 2],
    "truncated_tail.ckpt": good[:-3],
    "flipped_byte.ckpt": good[: len(good) // 2] + bytes([good[len(good) // 2] ^ 0x40])
                         + good[len(good) // 2 + 1:],
    "garbage.ckpt": b"not a checkpoint\n" * 20,
    "empty.ckpt": b"",
}
for name, data in broken.items():
    open(name, "wb").write(data)
EOF
    for f in truncated_half truncated_tail flipped_byte garbage empty; do
      run badck --data data --epochs 2 --limit-train 64 --threads "$threads" --out sentinel \
        --resume "$f.ckpt"
      expect_error badck 1 "$f.ckpt" "--resume of a $f checkpoint"
      grep -q '^epoch ' badck.out && fail "$f checkpoint: trained before failing"
    done
  fi
  check_sentinel "failed runs"
}

case_cli() {
  run help --help
  if ((rc != 0)); then fail "--help: exit $rc"; else
    local flag missing=""
    for flag in --help --version --data --epochs --batch-size --lr --margin --seed --threads \
                --limit-train --shuffle-buffer --out --checkpoint --resume --summary --quiet --no-fuse; do
      grep -qF -- "$flag" help.out || missing+=" $flag"
    done
    if [ -z "$missing" ]; then pass "--help mentions every flag"
    else fail "--help does not mention:$missing"; fi
  fi
  run version --version
  if ((rc == 0)) && grep -qE '^mnist_triplet .*[0-9]+\.[0-9]+\.[0-9]+' version.out; then
    pass "--version: $(cat version.out)"
  else fail "--version: exit $rc, stdout '$(cat version.out)'"; fi
  run summary --summary --data "$tmp/no-data-here" --out summary-out --threads "$threads"
  [ -e summary-out ] && fail "--summary created its --out folder"
  if ((rc == 0)) && grep -qx 'Total params: 410,208' summary.out; then
    pass "--summary without data: Total params: 410,208"
  else fail "--summary: exit $rc, stdout: $(cat summary.out) stderr: $(cat summary.err)"; fi
}

case "$case_name" in
  train | determinism | resume | bad_input | cli) "case_$case_name" ;;
  *) echo "trainer_test.sh: unknown case '$case_name'"; exit 2 ;;
esac
if ((failures > 0)); then
  echo "$case_name: $failures check(s) failed"
  exit 1
fi
echo "$case_name: all checks passed"
