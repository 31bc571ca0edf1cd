#!/usr/bin/env bash
# The whole test suite: installs what is missing, then builds twice — normal, and with
# AddressSanitizer + UndefinedBehaviorSanitizer — and runs every ctest test on both.
# Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
# Test-only packages of the interop tests (h5py, LaTeX): a failure only makes them skip.
bash scripts/install-deps.sh --with h5py,tex ||
  echo "test.sh: python3-h5py or LaTeX could not be installed: the interop tests will say skipped" >&2
jobs=$(nproc)
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}

echo "== build (RelWithDebInfo, -Wall -Wextra -Werror)"
bash scripts/build.sh build
echo "== tests"
ctest --test-dir build --output-on-failure -j"$jobs"

echo "== build (AddressSanitizer + UndefinedBehaviorSanitizer)"
bash scripts/build.sh build-asan -DPB_SANITIZE=ON
echo "== tests under ASan + UBSan"
# OpenMP's runtime keeps thread pools alive at exit: not leaks of ours.
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:allocator_may_return_null=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  LSAN_OPTIONS=suppressions=$PWD/tests/lsan.supp \
  ctest --test-dir build-asan --output-on-failure -j"$jobs"
echo "all tests passed (normal and sanitized builds)"
