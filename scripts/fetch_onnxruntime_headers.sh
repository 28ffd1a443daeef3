#!/usr/bin/env bash
# Obtain ONNX Runtime's C/C++ API headers without touching the system.
#
# Debian 12 has no libonnxruntime-dev; Debian 13 ("trixie") has it. We download that one .deb
# with apt-get into a private apt state (own lists, cache and source list: the Debian mirror the
# system is already configured with, then deb.debian.org; Ubuntu's mirrors have no trixie) and
# unpack it with dpkg -x into DEST (default: <repo>/third_party/onnxruntime, git-ignored),
# whole or not at all (VERSION, written last, marks a complete copy). Only the headers are
# used: at run time the engine dlopen()s the library of the installed `onnxruntime` package.
#
# Usage: scripts/fetch_onnxruntime_headers.sh [DEST]
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
dest=${1:-$repo/third_party/onnxruntime}
dest=${dest%/}  # "DEST/" would stage the copy inside DEST, then remove it with DEST
if [ -f "$dest/VERSION" ] && [ -f "$dest/include/onnxruntime_cxx_api.h" ]; then
  echo "onnxruntime headers already in $dest/include"
  exit 0
fi

# Debian mirrors to try: the one this system uses, if it is Debian (the first URIs line, or the
# first deb line of sources.list, its [options] skipped), then Debian's own.
mirrors=()
if grep -qs '^ID=debian' /etc/os-release; then
  mirror=$(grep -hsE '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}' | grep -v security | head -n1 || true)
  if [ -z "$mirror" ]; then
    mirror=$(grep -hsE '^deb ' /etc/apt/sources.list | sed -E 's/^deb +(\[[^]]*\] +)?//' | awk '{print $1}' | head -n1 || true)
  fi
  [ -n "$mirror" ] && mirrors+=("$mirror")
fi
mirrors+=(http://deb.debian.org/debian)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/debs"
fetched=""
for mirror in "${mirrors[@]}"; do
  rm -rf "$work/lists" "$work/cache"
  mkdir -p "$work/lists/partial" "$work/cache/archives/partial"
  echo "deb [trusted=yes] $mirror trixie main" > "$work/sources.list"
  apt_opts=(
    -o Dir::Etc::SourceList="$work/sources.list"
    -o Dir::Etc::SourceParts=/dev/null
    -o Dir::State::Lists="$work/lists"
    -o Dir::Cache="$work/cache"
    -o Debug::NoLocking=1
    -o APT::Sandbox::User=root
  )
  if apt-get "${apt_opts[@]}" update -qq &&
     (cd "$work/debs" && apt-get "${apt_opts[@]}" download -qq libonnxruntime-dev); then
    fetched=$mirror
    break
  fi
  echo "fetch_onnxruntime_headers.sh: no libonnxruntime-dev from $mirror (trixie)" >&2
done
if [ -z "$fetched" ]; then
  echo "error: could not download Debian trixie's libonnxruntime-dev from ${mirrors[*]}; set" \
       "ONNXRUNTIME_ROOT to a folder holding ONNX Runtime's include/ (or install libonnxruntime-dev)" >&2
  exit 1
fi
dpkg -x "$work"/debs/libonnxruntime-dev_*.deb "$work/root"
# Headers live in usr/include/onnxruntime (Debian layout). Copied complete beside $dest, then
# renamed into place: a copy cut short is never taken for the headers.
inc=$(dirname "$(find "$work/root" -name onnxruntime_cxx_api.h | head -n1)")
staged="$dest.partial"
rm -rf "$staged"
mkdir -p "$staged/include"
cp -r "$inc"/. "$staged/include/"
ver=$(dpkg-deb -f "$work"/debs/libonnxruntime-dev_*.deb Version)
echo "$ver" > "$staged/VERSION"
rm -rf "$dest"
mv "$staged" "$dest"
echo "onnxruntime headers $ver -> $dest/include"
