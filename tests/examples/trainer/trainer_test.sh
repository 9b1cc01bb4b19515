#!/usr/bin/env bash
# End-to-end tests of the trainer examples/mnist_triplet, one concern per CASE:
#   train        ~300 steps on 1,600 real images: the loss falls, retrieval beats chance, every
#                output file is well formed (check_outputs.py)
#   determinism  same seed and threads -> byte-identical vecs.tsv; another seed -> different;
#                --projection tsne / none write their files only
#   resume       2 epochs + checkpoint, resumed to 3 == straight 3 epochs, byte for byte;
#                mismatched --seed/--batch-size/--epochs are refused with exit 2
#   bad_input    bad flags (exit 2), missing/corrupt data and checkpoints, --out on a file
#                (exit 1): one `error:` line naming the culprit, existing outputs untouched
#   cli          --help, --version, --summary (no data needed)
#   robust       divergence (exit 1, nothing written), SIGTERM/SIGINT mid-run (exit 143/130, a
#                mid-epoch checkpoint that resumes byte-identically), a killed run's leftovers
#                cleaned, the output folder swapped whole, paths that must not be overwritten
#                (symlink, FIFO, non-checkpoint), checkpoint metadata checked by key
#   losses       --loss hard|soft-hard and --distance squared-L2|angular train end to end and are
#                recorded in metrics.json; unknown values exit 2; resuming with others is refused
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

# shellcheck source=common.sh
. "$here/common.sh"

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
  if cmp -s a/projection.tsv b/projection.tsv; then pass "same seed: byte-identical projection.tsv (UMAP)"
  else fail "same seed and threads, different projection.tsv: $(cmp a/projection.tsv b/projection.tsv)"; fi
  # The other pictures: t-SNE draws embeddings.png only; none draws nothing. Same embeddings.
  run t "${common[@]}" --seed 5 --out t --projection tsne
  run n "${common[@]}" --seed 5 --out n --projection none
  [ "$(LC_ALL=C ls -A t | tr '\n' ' ')" = "embeddings.png meta.tsv metrics.json vecs.tsv " ] ||
    fail "--projection tsne wrote: $(ls -A t | tr '\n' ' ') $(cat t.err)"
  [ "$(LC_ALL=C ls -A n | tr '\n' ' ')" = "meta.tsv metrics.json vecs.tsv " ] ||
    fail "--projection none wrote: $(ls -A n | tr '\n' ' ') $(cat n.err)"
  grep -q '"projection": *"tsne"' t/metrics.json || fail "metrics.json of --projection tsne does not say so"
  grep -q '"projection": *"none"' n/metrics.json || fail "metrics.json of --projection none does not say so"
  if cmp -s a/vecs.tsv t/vecs.tsv && cmp -s a/vecs.tsv n/vecs.tsv; then pass "--projection tsne / none: their own files, the same vecs.tsv"
  else fail "--projection changed vecs.tsv"; fi
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

case_losses() {
  make_data data 256 100
  local common=(--data data --limit-train 128 --seed 7 --threads "$threads" --quiet)
  local combo loss distance
  for combo in semihard:squared-L2 hard:L2 soft-hard:angular hard:angular semihard:angular; do
    loss=${combo%%:*} distance=${combo##*:}
    run "$loss-$distance" "${common[@]}" --epochs 2 --loss "$loss" --distance "$distance" --out "out-$combo"
    if ((rc != 0)); then fail "--loss $loss --distance $distance: exit $rc: $(cat "$loss-$distance.err")"; continue; fi
    if "$python" - "out-$combo/metrics.json" "$loss" "$distance" <<'EOF'; then
import json, math, sys
m = json.load(open(sys.argv[1]))
ok = m["loss"] == sys.argv[2] and m["distance"] == sys.argv[3]
ok = ok and len(m["epoch_loss"]) == 2 and all(math.isfinite(x) and x >= 0 for x in m["epoch_loss"])
ok = ok and m["test_precision_at_1"] > 0.3
print(sys.argv[2], sys.argv[3], "epoch_loss", m["epoch_loss"], "precision@1", m["test_precision_at_1"])
sys.exit(0 if ok else 1)
EOF
      pass "--loss $loss --distance $distance: trained, recorded in metrics.json"
    else
      fail "--loss $loss --distance $distance: metrics.json wrong: $(cat "out-$combo/metrics.json")"
    fi
  done
  # The flags reach the loss: the hard and soft-hard runs do not train the same model.
  cmp -s out-hard:angular/vecs.tsv out-soft-hard:angular/vecs.tsv &&
    fail "--loss hard and --loss soft-hard gave identical vecs.tsv"
  cmp -s out-hard:angular/vecs.tsv out-hard:L2/vecs.tsv &&
    fail "--distance angular and --distance L2 gave identical vecs.tsv"
  # Unknown names: exit 2 naming the flag.
  make_sentinel
  run bad_loss --data data --threads "$threads" --out sentinel --loss semi-hard
  expect_error bad_loss 2 "--loss" "--loss semi-hard (unknown)"
  run bad_distance --data data --threads "$threads" --out sentinel --distance l2
  expect_error bad_distance 2 "--distance" "--distance l2 (unknown)"
  # A checkpoint remembers its loss and distance: resuming with others is refused.
  mkdir ck
  run ck_hard "${common[@]}" --epochs 1 --loss hard --checkpoint ck/hard.ckpt --out ck-out
  ((rc == 0)) || { fail "checkpoint with --loss hard: exit $rc: $(cat ck_hard.err)"; return; }
  run resume_other --data data --limit-train 128 --seed 7 --threads "$threads" --quiet --epochs 2 \
    --resume ck/hard.ckpt --out sentinel
  expect_error resume_other 2 "--loss semihard" "resume of a --loss hard checkpoint with the default loss"
  grep -qF "loss hard" resume_other.err || fail "the refusal does not name the checkpoint's loss: $(cat resume_other.err)"
  run resume_metric --data data --limit-train 128 --seed 7 --threads "$threads" --quiet --epochs 2 \
    --loss hard --distance angular --resume ck/hard.ckpt --out sentinel
  expect_error resume_metric 2 "--distance angular" "resume of an L2 checkpoint with --distance angular"
  check_sentinel "refused losses"
}

case_bad_input() {
  make_data data 256 100
  make_sentinel
  # Every flag at most once per run (CLI11 refuses repeats with exit 2, which would prove nothing).
  local common=(--out sentinel)

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
    "--projection|--data data --epochs 1 --projection pca"          # umap, tsne or none
    "--margin|--data data --epochs 1 --margin nan"
    "--lr|--data data --epochs 1 --lr 1e39"                         # finite as a double, inf as a float
    "--seed|--data data --epochs 1 --seed 18446744073709551616"     # 2^64 would wrap around
    "--threads 100000|--data data --epochs 1 --threads 100000")     # more than the machine has
  local entry args flag
  for entry in "${flag_cases[@]}"; do
    flag=${entry%%|*} args=${entry#*|}
    # shellcheck disable=SC2086  # args are flags and values, split on purpose
    run flag "${common[@]}" $args
    expect_error flag 2 "$flag" "$args"
    [ -s flag.out ] && fail "$args: wrote to stdout: $(head -c 200 flag.out)"
  done

  common+=(--threads "$threads" --epochs 1 --limit-train 64)
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
elif kind == "truncated_idx":  # valid gzip, but fewer images than the header claims (and
    # than the run's --limit-train 64 uses: only what is used is read)
    out = gzip.compress(idx[: 16 + 784 * 40 + 100], mtime=0)
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

# Everything left of a write that did not finish: temporaries of this scheme or the older one.
leftovers() { find . -path ./data -prune -o \( -name '*semigrad-tmp*' -o -name '*.tmp.[0-9]*' \) -print; }

# Rewrites a checkpoint with Python (edit), then fixes its trailing crc32 so the field checks
# see the edit: fix_ckpt IN OUT PYTHON-EXPRESSION-ON-b
edit_ckpt() {
  "$python" -c '
import struct, sys, zlib
b = bytearray(open(sys.argv[1], "rb").read())
exec(sys.argv[3])
b[-4:] = struct.pack("<I", zlib.crc32(bytes(b[:-4])))
open(sys.argv[2], "wb").write(b)' "$1" "$2" "$3"
}

case_robust() {
  make_data data 256 200
  local common=(--data data --limit-train 192 --seed 3 --threads "$threads")

  # --- finite or stop: a learning rate that blows the weights up ------------------------------
  mkdir ck
  run good "${common[@]}" --epochs 1 --quiet --checkpoint ck/run.ckpt --out out
  ((rc == 0)) || { fail "1-epoch run: exit $rc: $(cat good.err)"; return; }
  printf 'my notes\n' >out/notes.txt   # the user's own file in the output folder
  fingerprint ck >ck.fp
  fingerprint out >out.fp
  run diverge "${common[@]}" --epochs 2 --quiet --lr 1e30 --checkpoint ck/run.ckpt --out out
  expect_error diverge 1 "--lr" "--lr 1e30 diverges"
  grep -qE 'diverged at epoch 1, step [0-9]+' diverge.err || fail "no epoch/step named: $(cat diverge.err)"
  fingerprint ck | cmp -s - ck.fp || fail "the diverged run changed the checkpoint"
  fingerprint out | cmp -s - out.fp || fail "the diverged run changed --out"
  [ -z "$(leftovers)" ] || fail "the diverged run left temporaries: $(leftovers)"

  # --- a checkpoint holding NaN (CRC-valid) is refused on resume -------------------------------
  # conv2d/kernel's first value follows its name, the rank (u32) and four u64 dims.
  edit_ckpt ck/run.ckpt nan.ckpt \
    'at = b.find(b"conv2d/kernel") + 13 + 4 + 32; b[at:at + 4] = struct.pack("<I", 0x7fc00000)'
  run nanck "${common[@]}" --epochs 2 --quiet --resume nan.ckpt --out out
  expect_error nanck 1 "'conv2d/kernel' holds NaN" "--resume of a checkpoint holding NaN"

  # --- metadata checked by key: missing, negative ------------------------------------------------
  edit_ckpt ck/run.ckpt nokey.ckpt 'b = bytearray(bytes(b).replace(b"no_positive_batches", b"no_positive_batchez"))'
  run nokey "${common[@]}" --epochs 2 --quiet --resume nokey.ckpt --out out
  expect_error nokey 1 "metadata 'no_positive_batches' is missing" "checkpoint without a metadata key"
  edit_ckpt ck/run.ckpt negative.ckpt \
    'at = b.find(b"partial_steps") + 13; assert b[at] == 0; b[at + 1:at + 9] = struct.pack("<q", -1)'
  run negative "${common[@]}" --epochs 2 --quiet --resume negative.ckpt --out out
  expect_error negative 1 "metadata 'partial_steps' is -1" "checkpoint with a negative count"

  # --- SIGTERM mid-run: a checkpoint of the steps done, exit 143, nothing torn ---------------
  # Stopped at whatever step the signal finds; resumed, the run must equal a straight one. The
  # run asks for far more epochs than it gets to, so the signal always lands in training however
  # fast the machine (at 3 epochs a quiet host had finished training within the 0.3 s and was
  # embedding); the epoch it names is then the length of the resumed and the straight runs.
  rm ck/run.ckpt
  "$bin" "${common[@]}" --epochs 100000 --checkpoint ck/run.ckpt --out term >term.out 2>term.err &
  local pid=$! waited=0
  while [ ! -e ck/run.ckpt ] && ((waited < 1200)); do sleep 0.1; waited=$((waited + 1)); done
  sleep 0.3
  kill -TERM "$pid" 2>/dev/null || true   # (a run that died early is reported below)
  rc=0
  wait "$pid" || rc=$?
  local stopped_epoch
  stopped_epoch=$(sed -n 's/^interrupted by SIGTERM \(at\|before\) epoch \([0-9]*\).*/\2/p' term.err)
  if ((rc != 143)); then fail "SIGTERM: exit $rc, expected 143: $(cat term.err)"
  elif [ "$(wc -l <term.err)" -ne 1 ] || ! grep -q '^interrupted by SIGTERM .*ck/run.ckpt' term.err ||
       [ -z "$stopped_epoch" ]; then
    fail "SIGTERM: expected one 'interrupted by SIGTERM at/before epoch N' line naming the checkpoint: $(cat term.err)"
  else pass "SIGTERM: exit 143, $(cat term.err)"; fi
  [ -e term ] && fail "SIGTERM: --out was created: $(ls term)"
  [ -z "$(leftovers)" ] || fail "SIGTERM left temporaries: $(leftovers)"
  stopped_epoch=${stopped_epoch:-3}
  run resumed "${common[@]}" --epochs "$stopped_epoch" --quiet --resume ck/run.ckpt --out resumed
  ((rc == 0)) || fail "resuming the interrupted run: exit $rc: $(cat resumed.err)"
  run straight "${common[@]}" --epochs "$stopped_epoch" --quiet --out straight
  if ((rc == 0)) && cmp -s resumed/vecs.tsv straight/vecs.tsv; then
    pass "interrupted at epoch $stopped_epoch + resumed == straight, byte for byte"
  else fail "interrupted + resumed differs from straight: $(cat straight.err)"; fi

  # --- SIGINT without --checkpoint: exit 130, says there is no checkpoint ---------------------
  # A non-interactive shell starts background jobs with SIGINT ignored; the trainer keeps an
  # ignored signal ignored, so give it the default disposition, as a terminal's foreground has.
  env --default-signal=INT "$bin" "${common[@]}" --epochs 100000 --out int >int.out 2>int.err &
  pid=$!
  waited=0
  while ! grep -q '^epoch 1/' int.out && ((waited < 1200)); do sleep 0.1; waited=$((waited + 1)); done
  kill -INT "$pid" 2>/dev/null || true
  rc=0
  wait "$pid" || rc=$?
  # Mid-epoch it says there is no checkpoint; at an epoch's boundary (a loaded machine can
  # finish an epoch before the signal lands), that nothing was written.
  if ((rc == 130)) && grep -Eq '^interrupted by SIGINT .*(no checkpoint|nothing written)' int.err; then
    pass "SIGINT: exit 130, $(cat int.err)"
  else fail "SIGINT: exit $rc: $(cat int.err)"; fi

  # --- a killed run's temporaries are removed by the next run -------------------------------
  local gone
  gone=$(sh -c 'echo $$')   # a pid that has exited
  printf torn >"ck/run.ckpt.semigrad-tmp.$gone"
  mkdir "out.semigrad-tmp.$gone" && printf torn >"out.semigrad-tmp.$gone/vecs.tsv"
  printf torn >"out/vecs.tsv.tmp.$gone"   # an earlier version's naming
  run clean "${common[@]}" --epochs 1 --quiet --checkpoint ck/run.ckpt --out out
  ((rc == 0)) || fail "run after a killed one: exit $rc: $(cat clean.err)"
  [ -z "$(leftovers)" ] || fail "a killed run's temporaries were not removed: $(leftovers)"
  # The output folder was replaced whole, and the user's own file kept.
  [ "$(cat out/notes.txt 2>/dev/null)" = "my notes" ] || fail "the user's out/notes.txt was lost"
  [ "$(ls out | LC_ALL=C sort | tr '\n' ' ')" = "embeddings.html embeddings.png meta.tsv metrics.json notes.txt projection.tsv vecs.tsv " ] ||
    fail "out holds: $(ls out)"

  # --- paths that must not be overwritten or read -----------------------------------------------
  ln -s ck/run.ckpt link.ckpt
  printf 'my thesis\n' >thesis.txt
  mkfifo fifo.ckpt
  mkdir -p nested/sub
  local entry args pattern
  for entry in "--checkpoint link.ckpt|symbolic link" \
               "--checkpoint thesis.txt|not a semigrad checkpoint" \
               "--checkpoint fifo.ckpt|not a regular file" \
               "--resume fifo.ckpt|fifo.ckpt" \
               "--out nested|holds 'sub'"; do
    args=${entry%%|*} pattern=${entry#*|}
    rc=0
    # shellcheck disable=SC2086  # args are a flag and its value, split on purpose
    timeout 60 "$bin" "${common[@]}" --epochs 1 $args >path.out 2>path.err || rc=$?
    expect_error path 1 "$pattern" "$args"
    [ -s path.out ] && fail "$args: started before refusing: $(cat path.out)"
  done
  [ "$(cat thesis.txt)" = "my thesis" ] || fail "--checkpoint thesis.txt changed the file"
  [ -L link.ckpt ] || fail "--checkpoint link.ckpt replaced the link"
  [ -p fifo.ckpt ] || fail "--checkpoint fifo.ckpt replaced the FIFO"
  if [ "$(id -u)" != 0 ]; then
    mkdir ro && chmod 555 ro
    run ro "${common[@]}" --epochs 1 --out ro/out
    expect_error ro 1 "cannot write in" "--out in a read-only folder"
  else
    echo "skip --out in a read-only folder: root may write anywhere"
  fi
}

case_cli() {
  run help --help
  if ((rc != 0)); then fail "--help: exit $rc"; else
    local flag missing=""
    for flag in --help --version --data --epochs --batch-size --lr --margin --seed --threads \
                --limit-train --shuffle-buffer --out --projection --checkpoint --resume --summary \
                --quiet --no-fuse; do
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
  train | determinism | resume | bad_input | cli | robust | losses) "case_$case_name" ;;
  *) echo "trainer_test.sh: unknown case '$case_name'"; exit 2 ;;
esac
if ((failures > 0)); then
  echo "$case_name: $failures check(s) failed"
  exit 1
fi
echo "$case_name: all checks passed"
