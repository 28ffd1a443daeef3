#!/usr/bin/env bash
# Set up emolive on a fresh Debian/Ubuntu machine: system packages, a virtual environment in
# .venv with the pinned CPU build of torch, ONNX Runtime headers, and the package itself
# (editable, with the training and test extras). Safe to run again.
#
#   bash scripts/setup.sh            # everything
#   EMOLIVE_NO_APT=1 bash scripts/setup.sh   # skip apt (packages already there)
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"

apt_packages=(
  build-essential pkg-config
  librtmidi-dev          # RtMidi for live MIDI out (optional at build time)
  jackd2 libjack-jackd2-dev  # JACK: MIDI ports on Linux machines without ALSA
  catch2                 # C++ unit tests
  nlohmann-json3-dev     # JSON parsing of the model card in the C++ engine
  fluidsynth fluid-soundfont-gm  # audio renders
  gdb                    # tests: native stacks of a command that fails to exit
)
if [ -z "${EMOLIVE_NO_APT:-}" ] && command -v apt-get >/dev/null; then
  sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
  # jackd2 asks whether to enable real-time limits; answer for a non-interactive install.
  echo "jackd2 jackd/tweak_rt_limits boolean false" | $sudo debconf-set-selections
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${apt_packages[@]}"
fi

python=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$python" -m venv .venv
pip=(.venv/bin/python -m pip install -q)
find_links=(); [ -d /opt/wheels ] && find_links=(--find-links /opt/wheels)
# The CPU build of torch first: anything that pulls torch unpinned would fetch a CUDA build.
"${pip[@]}" "${find_links[@]}" torch==2.13.0
"${pip[@]}" scikit-build-core pybind11 ninja

bash scripts/fetch_onnxruntime_headers.sh
"${pip[@]}" --no-build-isolation -e ".[train,test,plot]"
echo "emolive is set up: .venv/bin/emolive --help"
