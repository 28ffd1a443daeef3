#!/usr/bin/env bash
# Build the C++ core and its Catch2 tests under sanitizers, then run them with ctest.
# Each sanitizer gets its own build directory (build/sanitize-<name>), so the normal builds are
# untouched. Any report from a sanitizer makes the run fail (halt_on_error / exitcode).
#
#   bash scripts/sanitize.sh              # address (+ undefined behaviour), then thread
#   bash scripts/sanitize.sh address      # only AddressSanitizer + UBSan
#   bash scripts/sanitize.sh thread       # only ThreadSanitizer
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"

kinds=("$@")
[ ${#kinds[@]} -eq 0 ] && kinds=(address thread)
generator=(); command -v ninja >/dev/null && generator=(-G Ninja)
jobs=${EMOLIVE_SANITIZE_JOBS:-2}

for kind in "${kinds[@]}"; do
  case "$kind" in
    address) flags="-fsanitize=address,undefined -fno-sanitize-recover=undefined" ;;
    thread) flags="-fsanitize=thread" ;;
    *) echo "sanitize.sh: unknown sanitizer '$kind' (use address or thread)" >&2; exit 2 ;;
  esac
  dir="build/sanitize-$kind"
  echo "== $kind: configuring $dir"
  cmake -S . -B "$dir" "${generator[@]}" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DEMOLIVE_BUILD_TESTS=ON -DEMOLIVE_BUILD_PYTHON=OFF \
    -DCMAKE_CXX_FLAGS="$flags -fno-omit-frame-pointer -g" \
    -DCMAKE_EXE_LINKER_FLAGS="$flags" -DCMAKE_SHARED_LINKER_FLAGS="$flags" >/dev/null
  echo "== $kind: building"
  cmake --build "$dir" -j "$jobs"
  echo "== $kind: running ctest"
  ASAN_OPTIONS="detect_leaks=1:halt_on_error=1:abort_on_error=0" \
  UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1" \
  TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1" \
    ctest --test-dir "$dir" --output-on-failure
done
echo "sanitize.sh: ${kinds[*]}: all C++ tests passed"
