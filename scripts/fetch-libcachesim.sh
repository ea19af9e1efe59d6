#!/usr/bin/env bash
# Fetches the pinned libcachesim source distribution from PyPI (it carries libCacheSim's C
# sources and sample traces) into .cache/, checking its hash. CMake builds from it.
set -euo pipefail
cd "$(dirname "$0")/.."
. native/cache/libcachesim.pin                      # the one pin: version and SHA-256
VERSION=$LIBCACHESIM_VERSION SHA256=$LIBCACHESIM_SHA256
dest=.cache/libcachesim-$VERSION.tar.gz
if [ -f "$dest" ] && echo "$SHA256  $dest" | sha256sum -c --quiet 2>/dev/null; then exit 0; fi
mkdir -p .cache
tmp=$(mktemp -d)
PY=.venv/bin/python; [ -x "$PY" ] || PY=python3
"$PY" -m pip download -q --no-deps --no-binary :all: "libcachesim==$VERSION" -d "$tmp"
mv "$tmp/libcachesim-$VERSION.tar.gz" "$dest"; rm -rf "$tmp"
if ! echo "$SHA256  $dest" | sha256sum -c --quiet; then
  echo "fetch-libcachesim: hash mismatch for $dest" >&2; rm -f "$dest"; exit 1
fi
