# Helpers shared by trainer_test.sh and mpi_test.sh (sourced; they set $here, $fashion, $python).

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
