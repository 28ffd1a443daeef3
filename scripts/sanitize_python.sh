#!/usr/bin/env bash
# The runtime's Python tests against a sanitized build of emolive._core: the engine with ONNX
# Runtime, RtMidi and JACK as users' processes run it (ports, reconnection, port loss, signals,
# the storm, malformed models), which the C++ tests of scripts/sanitize.sh do not reach.
# Needs the set-up of scripts/setup.sh (.venv with the editable install).
#
#   bash scripts/sanitize_python.sh                    # ASan+UBSan, tests/ without training
#   bash scripts/sanitize_python.sh thread             # ThreadSanitizer, the same tests
#   bash scripts/sanitize_python.sh address tests/reliability   # other pytest arguments
#
# The editable install loads _core from .venv, so the sanitized build takes its place for the
# run and the release build is put back on exit (if the script is killed first, put it back
# with `.venv/bin/python -m pip install --no-build-isolation -e .`). Python is not built with
# a sanitizer: the runtime is preloaded, with libstdc++ (loaded before ASan starts, or its
# __cxa_throw interceptor finds no real function and aborts at the first C++ exception).
# Subprocesses inherit the preload, so the `emolive` commands the tests start are sanitized
# too; jackd is not (a wrapper first on PATH drops the preload), since a TSan-slowed server
# stalls. Reports go to files, since pytest captures stderr; any report fails the run.
# ThreadSanitizer skips what scripts/tsan_python.supp lists: libraries not built with it.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
kind=address
case "${1:-}" in
  address|thread) kind=$1; shift ;;
  ""|-*) ;;
  *)  # a misspelled sanitizer went to pytest as a path, after the whole sanitized build
    if [ ! -e "${1%%::*}" ]; then
      echo "sanitize_python.sh: '$1' is neither a sanitizer (address, thread) nor a test path" >&2
      exit 2
    fi ;;
esac
python=.venv/bin/python
build=build/sanitize-python-$kind
logs=$build/reports
if [ "$kind" = address ]; then
  sanitizers=address,undefined
  flags="-fsanitize=$sanitizers -fno-sanitize-recover=undefined"
  preload="$(gcc -print-file-name=libasan.so) $(gcc -print-file-name=libubsan.so)"
else
  sanitizers=thread
  flags="-fsanitize=$sanitizers"
  preload="$(gcc -print-file-name=libtsan.so)"
fi
flags="$flags -fno-omit-frame-pointer -g"
preload="$preload $(gcc -print-file-name=libstdc++.so)"
generator=(); command -v ninja >/dev/null && generator=(-G Ninja)

echo "== configuring $build"
cmake -S . -B "$build" "${generator[@]}" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DEMOLIVE_BUILD_PYTHON=ON -DEMOLIVE_BUILD_TESTS=OFF -DPython_EXECUTABLE="$repo/$python" \
  -Dpybind11_DIR="$($python -m pybind11 --cmakedir)" \
  -DCMAKE_CXX_FLAGS="$flags" -DCMAKE_SHARED_LINKER_FLAGS="-fsanitize=$sanitizers" >/dev/null
echo "== building"
cmake --build "$build" -j "${EMOLIVE_SANITIZE_JOBS:-2}"

# Found, not imported: an import without the preloaded runtime fails if a sanitized build was
# left in place by a killed run.
installed=$($python -c "import importlib.util as u; print(u.find_spec('emolive._core').origin)")
release=$(mktemp)
wrappers=$(mktemp -d)
cp "$installed" "$release"
trap 'cp "$release" "$installed"; rm -rf "$release" "$wrappers"' EXIT
cp "$build"/cpp/_core.*.so "$installed"
if jackd=$(command -v jackd); then
  printf '#!/bin/sh\nunset LD_PRELOAD\nexec %s "$@"\n' "$jackd" > "$wrappers/jackd"
  chmod +x "$wrappers/jackd"
fi

rm -rf "$logs" && mkdir -p "$logs"
# Without the training tests (torch, not the runtime; under TSan its README run alone takes
# far longer than the rest) and the benchmarks' smoke test (timings).
[ $# -eq 0 ] && set -- tests --ignore=tests/training --ignore=tests/test_readme_training.py \
  --deselect tests/reliability/test_benchmarks_smoke.py
echo "== pytest $*"
status=0
PATH="$wrappers:$PATH" LD_PRELOAD="$preload" \
ASAN_OPTIONS="detect_leaks=0:halt_on_error=1:log_path=$repo/$logs/asan" \
UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:log_path=$repo/$logs/ubsan" \
TSAN_OPTIONS="halt_on_error=0:exitcode=0:log_path=$repo/$logs/tsan:suppressions=$repo/scripts/tsan_python.supp" \
  $python -m pytest -q -p no:cacheprovider "$@" || status=$?
if compgen -G "$logs/*" >/dev/null; then
  echo "sanitize_python.sh: sanitizer reports:" >&2
  head -n 60 "$logs"/* >&2
  exit 1
fi
[ $status -eq 0 ] && echo "sanitize_python.sh: $kind: passed with no sanitizer report"
exit $status
