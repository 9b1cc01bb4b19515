#!/usr/bin/env bash
# End-to-end tests of the trainer under `mpirun -np 2` (data-parallel training), one concern per
# CASE:
#   train    2 processes: rank 0 alone prints and writes, metrics.json says "processes": 2, the
#            epoch losses equal one process's to 1e-4 relative, the same run twice is
#            byte-identical
#   errors   a global batch that does not divide by 2, or processes given different flags, is
#            exit 2; bad data on one rank only, or
#            a failure on one rank in mid-training, ends the whole job with one error line and
#            a non-zero exit, no hang
#   resume   a checkpoint written under 2 processes resumes under 2 (byte-identical to a straight
#            run) and under 1 (the checkpoint holds nothing rank-specific)
#   losses   --loss hard --distance angular and --loss soft-hard --distance squared-L2 under 2
#            processes: recorded in metrics.json, epoch losses equal one process's to 1e-4
#            relative and differ from the default loss's
# Data as in trainer_test.sh (the first images of Debian's Fashion-MNIST); exit 77 (skipped)
# when that package is missing.
#
# Usage: mpi_test.sh CASE PATH/TO/mnist_triplet PATH/TO/mpirun
set -euo pipefail

case_name=${1:?usage: mpi_test.sh CASE PATH/TO/mnist_triplet PATH/TO/mpirun}
bin=${2:?usage: mpi_test.sh CASE PATH/TO/mnist_triplet PATH/TO/mpirun}
mpirun=${3:?usage: mpi_test.sh CASE PATH/TO/mnist_triplet PATH/TO/mpirun}
here=$(cd "$(dirname "$0")" && pwd)
fashion=${FASHION_MNIST_DIR:-/usr/share/datasets/fashion-mnist}
python=${PYTHON3:-python3}
# Root in a container (CI): no network beyond loopback, so shared memory only.
export OMPI_MCA_btl=self,vader OMPI_MCA_btl_vader_single_copy_mechanism=none
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1
np2=("$mpirun" --oversubscribe --allow-run-as-root --bind-to none -np 2)

tmp=$(mktemp -d "${TMPDIR:-/tmp}/trainer-mpi.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"

# shellcheck source=common.sh
. "$here/common.sh"

# run NAME CMD...: NAME.out, NAME.err, exit code in $rc; a job still alive after 150 s is a hang.
rc=0
run() {
  local name=$1
  shift
  rc=0
  timeout 150 "$@" >"$name.out" 2>"$name.err" || rc=$?
  if ((rc == 124)); then fail "$name: still running after 150 s (a rank hangs)"; fi
}

# json FILE EXPR: prints the Python expression EXPR of metrics.json as m.
json() { "$python" -c "import json, sys; m = json.load(open(sys.argv[1])); print($2)" "$1"; }

# close A B TOL: the two JSON lists of numbers agree to TOL relative.
close() { "$python" -c "
import json, sys
a, b, tol = json.loads(sys.argv[1]), json.loads(sys.argv[2]), float(sys.argv[3])
sys.exit(0 if len(a) == len(b) and all(abs(x - y) <= tol * abs(y) for x, y in zip(a, b)) else 1)" "$1" "$2" "$3"; }

case_train() {
  make_data data 640 200
  local common=(--data data --limit-train 640 --epochs 2 --seed 42)
  run two "${np2[@]}" "$bin" "${common[@]}" --out two
  ((rc == 0)) || { fail "2-process run: exit $rc: $(head -c 600 two.err)"; return; }
  cat two.out
  [ "$(grep -c '^semigrad mnist_triplet' two.out)" = 1 ] || fail "the header was printed $(grep -c '^semigrad mnist_triplet' two.out) times (rank 0 alone speaks)"
  [ "$(grep -c '^epoch 2/2 ' two.out)" = 1 ] || fail "'epoch 2/2' not printed exactly once"
  grep -q '2 processes (global mining)' two.out || fail "the header does not name 2 processes"
  [ "$(json two/metrics.json 'm["processes"]')" = 2 ] || fail "metrics.json processes is not 2"
  [ -s two/vecs.tsv ] && [ -s two/embeddings.png ] || fail "outputs missing"

  run one "$bin" "${common[@]}" --threads 1 --out one
  ((rc == 0)) || { fail "1-process run: exit $rc: $(cat one.err)"; return; }
  local l1 l2
  l1=$(json one/metrics.json 'json.dumps(m["epoch_loss"])')
  l2=$(json two/metrics.json 'json.dumps(m["epoch_loss"])')
  if close "$l2" "$l1" 1e-4; then pass "epoch losses 2 processes $l2 = 1 process $l1 (1e-4)"
  else fail "epoch losses 2 processes $l2, 1 process $l1"; fi

  run again "${np2[@]}" "$bin" "${common[@]}" --out again
  if cmp -s two/vecs.tsv again/vecs.tsv; then pass "the same 2-process run twice: byte-identical vecs.tsv"
  else fail "two 2-process runs differ: $(cmp two/vecs.tsv again/vecs.tsv)"; fi
}

case_losses() {
  make_data data 320 100
  local common=(--data data --limit-train 320 --epochs 2 --seed 42 --quiet)
  run default "$bin" "${common[@]}" --threads 1 --out default
  ((rc == 0)) || { fail "1-process run with the default loss: exit $rc: $(cat default.err)"; return; }
  local combo loss distance l1 l2 l0
  l0=$(json default/metrics.json 'json.dumps(m["epoch_loss"])')
  for combo in hard:angular soft-hard:squared-L2; do
    loss=${combo%%:*} distance=${combo##*:}
    run "two-$loss" "${np2[@]}" "$bin" "${common[@]}" --loss "$loss" --distance "$distance" --out "two-$loss"
    ((rc == 0)) || { fail "--loss $loss on 2 processes: exit $rc: $(head -c 600 "two-$loss.err")"; continue; }
    run "one-$loss" "$bin" "${common[@]}" --threads 1 --loss "$loss" --distance "$distance" --out "one-$loss"
    ((rc == 0)) || { fail "--loss $loss on 1 process: exit $rc: $(cat "one-$loss.err")"; continue; }
    [ "$(json "two-$loss/metrics.json" 'm["loss"] + " " + m["distance"] + " " + str(m["processes"])')" = "$loss $distance 2" ] ||
      fail "metrics.json does not record --loss $loss --distance $distance on 2 processes"
    l1=$(json "one-$loss/metrics.json" 'json.dumps(m["epoch_loss"])')
    l2=$(json "two-$loss/metrics.json" 'json.dumps(m["epoch_loss"])')
    if close "$l2" "$l1" 1e-4; then pass "--loss $loss --distance $distance: 2 processes $l2 = 1 process $l1 (1e-4)"
    else fail "--loss $loss --distance $distance: epoch losses 2 processes $l2, 1 process $l1"; fi
    if close "$l2" "$l0" 1e-3; then fail "--loss $loss --distance $distance gave the default loss's epoch losses $l0"; fi
  done
}

case_errors() {
  make_data data 256 100
  run odd "${np2[@]}" "$bin" --data data --epochs 1 --batch-size 33 --out odd
  local errors
  errors=$(grep -c '^error: ' odd.err || true)
  if ((rc == 2)) && [ "$errors" = 1 ] && grep -q -- '--batch-size 33' odd.err; then
    pass "--batch-size 33 on 2 processes: exit 2, $(grep '^error: ' odd.err)"
  else fail "--batch-size 33 on 2 processes: exit $rc, $errors error lines: $(head -c 600 odd.err)"; fi
  if [ -e odd ]; then fail "a refused run created its --out folder"; fi

  # Rank 1 reads a folder whose training images are cut short; rank 0's are fine.
  cp -r data bad
  "$python" - bad/train-images-idx3-ubyte.gz <<'PY'
import gzip, sys
raw = gzip.open(sys.argv[1]).read()
gzip.open(sys.argv[1], "wb").write(raw[: len(raw) // 2])
PY
  run onebad "$mpirun" --oversubscribe --allow-run-as-root --bind-to none \
    -np 1 "$bin" --data data --epochs 1 --out onebad : -np 1 "$bin" --data bad --epochs 1 --out onebad
  errors=$(grep -c '^error: ' onebad.err || true)
  if ((rc == 1)) && [ "$errors" = 1 ] && grep -q 'bad/train-images' onebad.err; then
    pass "bad data on rank 1 only: exit 1, $(grep '^error: ' onebad.err)"
  else fail "bad data on rank 1 only: exit $rc, $errors error lines: $(head -c 800 onebad.err)"; fi
  if grep -q '^epoch ' onebad.out; then fail "rank 0 trained although rank 1 failed"; fi

  # Processes given different flags would train a mix of two runs: refused before training.
  run mixed "$mpirun" --oversubscribe --allow-run-as-root --bind-to none \
    -np 1 "$bin" --data data --epochs 1 --seed 1 --out mixed : -np 1 "$bin" --data data --epochs 1 --seed 2 --out mixed
  errors=$(grep -c '^error: ' mixed.err || true)
  if ((rc == 2)) && [ "$errors" = 1 ] && grep -q 'process 1 has other flags' mixed.err; then
    pass "different --seed on the two processes: exit 2, $(grep '^error: ' mixed.err)"
  else fail "different --seed on the two processes: exit $rc, $errors error lines: $(head -c 800 mixed.err)"; fi

  # A failure on rank 0 alone in the middle of training (its checkpoint cannot be written, after
  # epoch 1) while rank 1 waits for it in a collective: the job ends (MPI_Abort), one error line.
  run midway "${np2[@]}" "$bin" --data data --limit-train 64 --epochs 2 --checkpoint /proc/ck --out midway
  errors=$(grep -c '^error: ' midway.err || true)
  if ((rc != 0 && rc != 124)) && [ "$errors" = 1 ] && grep -q '/proc/ck' midway.err; then
    pass "rank 0 fails after epoch 1: exit $rc, $(grep '^error: ' midway.err)"
  else fail "rank 0 fails after epoch 1: exit $rc, $errors error lines: $(head -c 800 midway.err)"; fi
}

case_resume() {
  make_data data 256 100
  mkdir ck
  local common=(--data data --limit-train 192 --seed 3 --quiet)
  run first "${np2[@]}" "$bin" "${common[@]}" --epochs 2 --checkpoint ck/state.ckpt --out first
  ((rc == 0)) || { fail "2 epochs on 2 processes with --checkpoint: exit $rc: $(head -c 600 first.err)"; return; }
  run straight "${np2[@]}" "$bin" "${common[@]}" --epochs 3 --out straight
  run resumed2 "${np2[@]}" "$bin" "${common[@]}" --epochs 3 --resume ck/state.ckpt --out resumed2
  ((rc == 0)) || { fail "resume under 2 processes: exit $rc: $(head -c 600 resumed2.err)"; return; }
  if cmp -s resumed2/vecs.tsv straight/vecs.tsv; then pass "2 processes: 2 epochs + resume to 3 == 3 epochs, byte for byte"
  else fail "2 processes: resumed and straight vecs.tsv differ"; fi
  if cmp -s first/vecs.tsv straight/vecs.tsv; then fail "2 and 3 epochs gave identical vecs.tsv"; fi

  run resumed1 "$bin" --data data --limit-train 192 --seed 3 --threads 1 --epochs 3 \
    --resume ck/state.ckpt --out resumed1
  ((rc == 0)) || { fail "resume under 1 process: exit $rc: $(cat resumed1.err)"; return; }
  if [ "$(grep -c '^epoch ' resumed1.out)" = 1 ] && grep -q '^epoch 3/3 ' resumed1.out; then
    pass "1 process resumed a 2-process checkpoint and trained epoch 3 only"
  else fail "the 1-process resume did not train exactly epoch 3: $(cat resumed1.out)"; fi
  local l1 l2
  l1=$(json resumed1/metrics.json 'json.dumps(m["epoch_loss"])')
  l2=$(json straight/metrics.json 'json.dumps(m["epoch_loss"])')
  if close "$l1" "$l2" 1e-4; then pass "its epoch losses $l1 = the 2-process run's $l2 (1e-4)"
  else fail "1-process resume epoch losses $l1, 2-process straight $l2"; fi
}

case "$case_name" in
  train | errors | resume | losses) "case_$case_name" ;;
  *) echo "mpi_test.sh: unknown case '$case_name'"; exit 2 ;;
esac
if ((failures)); then
  echo "$case_name: $failures check(s) failed"
  exit 1
fi
echo "$case_name: all checks passed"
