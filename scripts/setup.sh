#!/usr/bin/env bash
# Set up emolive on a fresh Debian/Ubuntu machine: system packages, a virtual environment in
# .venv with the pinned CPU build of torch, ONNX Runtime headers, and the package itself
# (editable, with the training and test extras). Safe to run again, also after a run that
# failed part-way.
#
#   bash scripts/setup.sh            # everything
#   EMOLIVE_NO_APT=1 bash scripts/setup.sh   # skip apt (packages already there, or no root)
#   ONNXRUNTIME_ROOT=/opt/onnxruntime bash scripts/setup.sh  # headers from there, none fetched
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"

step() { echo "== setup: $*"; }
trap 'echo "setup.sh: failed while: $current (exit $?); fix that and run it again" >&2' ERR
current="starting"

apt_packages=(
  build-essential pkg-config cmake ninja-build  # the C++ build (pkg-config finds RtMidi, JACK)
  python3-venv python3-dev  # .venv, and the headers the Python module compiles against
  librtmidi-dev          # RtMidi for live MIDI out (optional at build time)
  jackd2 libjack-jackd2-dev  # JACK: MIDI ports on Linux machines without ALSA
  catch2                 # C++ unit tests
  nlohmann-json3-dev     # JSON parsing of the model card in the C++ engine
  fluidsynth fluid-soundfont-gm  # audio renders
  gdb procps             # tests: native stacks of a command that fails to exit; ps, pgrep
)
if [ -z "${EMOLIVE_NO_APT:-}" ] && command -v apt-get >/dev/null; then
  current="installing system packages with apt-get"; step "$current"
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    if ! command -v sudo >/dev/null; then
      echo "setup.sh: installing system packages needs root, and there is no sudo: run it as root," \
           "or install these yourself and run it with EMOLIVE_NO_APT=1: ${apt_packages[*]}" >&2
      exit 1
    fi
    sudo="sudo"
  fi
  # jackd2 asks whether to enable real-time limits; answer for a non-interactive install.
  echo "jackd2 jackd/tweak_rt_limits boolean false" | $sudo debconf-set-selections
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${apt_packages[@]}"
fi

current="making the virtual environment .venv"; step "$current"
python=${PYTHON:-python3}
# A .venv left by a run that failed while making it (no pip in it) is made again.
if [ -e .venv ] && ! .venv/bin/python -m pip --version >/dev/null 2>&1; then
  echo "setup.sh: .venv is incomplete (a run that failed while making it?): making it again"
  rm -rf .venv
fi
[ -x .venv/bin/python ] || "$python" -m venv .venv
pip=(.venv/bin/python -m pip install -q)

# The CPU build of torch first: anything that pulls torch unpinned would fetch a CUDA build
# (PyPI's torch is the CUDA one). A local wheel (/opt/wheels) is used where there is one.
current="installing the CPU build of torch 2.13.0"; step "$current"
torch_source=(--extra-index-url https://download.pytorch.org/whl/cpu)
compgen -G "/opt/wheels/torch-2.13.0+cpu-*.whl" >/dev/null && torch_source=(--find-links /opt/wheels)
"${pip[@]}" "${torch_source[@]}" "torch==2.13.0+cpu"
current="installing the build tools into .venv"; step "$current"
"${pip[@]}" scikit-build-core pybind11 ninja "cmake>=3.20"

if [ -n "${ONNXRUNTIME_ROOT:-}" ] || [ -f /usr/include/onnxruntime/onnxruntime_cxx_api.h ]; then
  step "ONNX Runtime headers: ${ONNXRUNTIME_ROOT:-/usr/include/onnxruntime} (none fetched)"
else
  current="fetching ONNX Runtime's headers (scripts/fetch_onnxruntime_headers.sh)"; step "$current"
  bash scripts/fetch_onnxruntime_headers.sh
fi
current="building and installing emolive into .venv"; step "$current"
"${pip[@]}" --no-build-isolation -e ".[train,test,plot]"
echo "emolive is set up: .venv/bin/emolive --help"
