#!/usr/bin/env bash
# The runtime's Python tests against an AddressSanitizer (+ UBSan) build of emolive._core: the
# engine with ONNX Runtime, RtMidi and JACK as users' processes run it (ports, reconnection,
# port loss, signals, the storm, malformed models), which the C++ tests of scripts/sanitize.sh
# do not reach. Needs the set-up of scripts/setup.sh (.venv with the editable install).
#
#   bash scripts/sanitize_python.sh                    # tests/ without tests/training
#   bash scripts/sanitize_python.sh tests/reliability  # other pytest arguments
#
# The editable install loads _core from .venv, so the sanitized build takes its place for the
# run and the release build is put back on exit (if the script is killed first, put it back
# with `.venv/bin/python -m pip install --no-build-isolation -e .`). Python is not built with
# ASan: the runtime is preloaded, with libstdc++ (loaded before ASan starts, or its
# __cxa_throw interceptor finds no real function and aborts at the first C++ exception).
# Reports go to files, since pytest captures stderr; any report fails the run.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
python=.venv/bin/python
build=build/sanitize-python
logs=$build/reports
flags="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer -g"
generator=(); command -v ninja >/dev/null && generator=(-G Ninja)

echo "== configuring $build"
cmake -S . -B "$build" "${generator[@]}" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DEMOLIVE_BUILD_PYTHON=ON -DEMOLIVE_BUILD_TESTS=OFF -DPython_EXECUTABLE="$repo/$python" \
  -Dpybind11_DIR="$($python -m pybind11 --cmakedir)" \
  -DCMAKE_CXX_FLAGS="$flags" -DCMAKE_SHARED_LINKER_FLAGS="-fsanitize=address,undefined" >/dev/null
echo "== building"
cmake --build "$build" -j "${EMOLIVE_SANITIZE_JOBS:-2}"

# Found, not imported: an import without the preloaded runtime fails if a sanitized build was
# left in place by a killed run.
installed=$($python -c "import importlib.util as u; print(u.find_spec('emolive._core').origin)")
release=$(mktemp)
cp "$installed" "$release"
trap 'cp "$release" "$installed"; rm -f "$release"' EXIT
cp "$build"/cpp/_core.*.so "$installed"

rm -rf "$logs" && mkdir -p "$logs"
[ $# -eq 0 ] && set -- tests --ignore=tests/training \
  --deselect tests/reliability/test_benchmarks_smoke.py
echo "== pytest $*"
status=0
LD_PRELOAD="$(gcc -print-file-name=libasan.so) $(gcc -print-file-name=libubsan.so) $(gcc -print-file-name=libstdc++.so)" \
ASAN_OPTIONS="detect_leaks=0:halt_on_error=1:log_path=$repo/$logs/asan" \
UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:log_path=$repo/$logs/ubsan" \
  $python -m pytest -q -p no:cacheprovider "$@" || status=$?
if compgen -G "$logs/*" >/dev/null; then
  echo "sanitize_python.sh: sanitizer reports:" >&2
  head -n 60 "$logs"/* >&2
  exit 1
fi
[ $status -eq 0 ] && echo "sanitize_python.sh: passed with no sanitizer report"
exit $status
