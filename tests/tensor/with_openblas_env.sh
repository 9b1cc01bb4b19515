#!/usr/bin/env bash
# Runs a test binary with the OpenBLAS kernel choice of scripts/openblas-env; exit 77 (skipped)
# when that script chooses nothing on this CPU.
set -euo pipefail
unset OPENBLAS_CORETYPE
. "$(dirname "$0")/../../scripts/openblas-env"
if [ -z "${OPENBLAS_CORETYPE:-}" ]; then
  echo "scripts/openblas-env selects no OpenBLAS core on this CPU: nothing to check"
  exit 77
fi
echo "OPENBLAS_CORETYPE=$OPENBLAS_CORETYPE"
exec "$@"
