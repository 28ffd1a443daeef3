#!/usr/bin/env bash
# Run every test: the C++ unit tests (ctest) and the Python tests (pytest) against .venv.
# Run scripts/setup.sh once before. Extra arguments go to pytest.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
# cmake, ctest and ninja from the system, else the ones setup.sh put into .venv.
PATH="$PATH:$repo/.venv/bin"
generator=(); command -v ninja >/dev/null && generator=(-G Ninja)

cmake -S . -B build/cpp-tests "${generator[@]}" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DEMOLIVE_BUILD_TESTS=ON -DEMOLIVE_BUILD_PYTHON=OFF -DPython_EXECUTABLE="$repo/.venv/bin/python" >/dev/null
cmake --build build/cpp-tests
ctest --test-dir build/cpp-tests --output-on-failure
# The same C++ tests under AddressSanitizer + UBSan (ThreadSanitizer too: scripts/sanitize.sh).
[ -n "${EMOLIVE_NO_SANITIZE:-}" ] || bash scripts/sanitize.sh address
# The editable install compiles emolive._core once; rebuild it so the tests see current C++.
.venv/bin/python -m pip install -q --no-build-isolation -e ".[train,test,plot]"
.venv/bin/python -m pytest "$@"
