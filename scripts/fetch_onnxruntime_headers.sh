#!/usr/bin/env bash
# Obtain ONNX Runtime's C/C++ API headers without touching the system.
#
# Debian 12 has no libonnxruntime-dev; Debian 13 ("trixie") has it. We download that one .deb
# with apt-get into a private apt state (own lists, cache and source list, using the mirror the
# system is already configured with) and unpack it with dpkg -x into DEST
# (default: <repo>/third_party/onnxruntime, git-ignored). Only the headers are used: at run time
# the engine dlopen()s the library of the installed `onnxruntime` Python package.
#
# Usage: scripts/fetch_onnxruntime_headers.sh [DEST]
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
dest=${1:-$repo/third_party/onnxruntime}
if [ -f "$dest/include/onnxruntime_cxx_api.h" ]; then
  echo "onnxruntime headers already in $dest/include"
  exit 0
fi

# The mirror this system already uses (first URIs line, or first deb line of sources.list).
mirror=$(grep -hsE '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}' | grep -v security | head -n1 || true)
if [ -z "$mirror" ]; then
  mirror=$(grep -hsE '^deb ' /etc/apt/sources.list | awk '{print $2}' | head -n1 || true)
fi
if [ -z "$mirror" ]; then
  echo "error: no Debian mirror configured in /etc/apt; set ONNXRUNTIME_ROOT to an onnxruntime install instead" >&2
  exit 1
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/lists/partial" "$work/cache/archives/partial" "$work/debs"
echo "deb [trusted=yes] $mirror trixie main" > "$work/sources.list"
apt_opts=(
  -o Dir::Etc::SourceList="$work/sources.list"
  -o Dir::Etc::SourceParts=/dev/null
  -o Dir::State::Lists="$work/lists"
  -o Dir::Cache="$work/cache"
  -o Debug::NoLocking=1
  -o APT::Sandbox::User=root
)
apt-get "${apt_opts[@]}" update -qq
(cd "$work/debs" && apt-get "${apt_opts[@]}" download -qq libonnxruntime-dev)
rm -rf "$dest"
mkdir -p "$dest"
dpkg -x "$work"/debs/libonnxruntime-dev_*.deb "$work/root"
# Headers live in usr/include/onnxruntime (Debian layout).
inc=$(dirname "$(find "$work/root" -name onnxruntime_cxx_api.h | head -n1)")
mkdir -p "$dest/include"
cp -r "$inc"/. "$dest/include/"
ver=$(dpkg-deb -f "$work"/debs/libonnxruntime-dev_*.deb Version)
echo "$ver" > "$dest/VERSION"
echo "onnxruntime headers $ver -> $dest/include"
