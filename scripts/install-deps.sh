#!/usr/bin/env bash
# Installs everything policyforge needs on Debian 12 (run as root). Idempotent: packages
# already present are skipped quickly, so `make demo` and `make test` can both call it.
#   scripts/install-deps.sh            system packages + .venv + editable build
#   PF_SKIP_APT=1 scripts/install-deps.sh   only the Python side
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  build-essential cmake pkg-config git
  bubblewrap libseccomp-dev                  # the sandbox for candidate code
  libglib2.0-dev libzstd-dev zstd           # libCacheSim
  clang llvm libbpf-dev bpftool libelf-dev   # BPF congestion control
  iperf3 iproute2 ethtool iputils-ping       # host testbed
  linux-headers-amd64                        # kmod build (Debian's headers)
  qemu-system-x86 qemu-utils debootstrap linux-image-amd64 busybox-static cpio  # VM
  mininet bridge-utils
  vagrant vagrant-libvirt libvirt-daemon-system libvirt-clients dnsmasq-base  # vagrant up (tests/vagrant)
  grub-pc-bin fdisk rsync                    # make vagrant-box
)

missing=()
if [ -z "${PF_SKIP_APT:-}" ]; then
  for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "install-deps: apt-get install ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "install-deps: creating .venv"
  "$PY" -m venv .venv
fi
# pyproject.toml holds the one list: the dependencies, the test and ray extras, the build requirements
mapfile -t PIP_REQS < <("$PY" -c '
import tomllib
d = tomllib.load(open("pyproject.toml", "rb"))
extra = d["project"]["optional-dependencies"]
print("\n".join(d["project"]["dependencies"] + extra["test"] + extra["ray"]
                + d["build-system"]["requires"]))')
. native/cache/libcachesim.pin                # the tests' reference simulator: the version we build
PIP_REQS+=("libcachesim==$LIBCACHESIM_VERSION")
stamp=.venv/.pf-reqs
want=$(printf '%s\n' "${PIP_REQS[@]}" | sha256sum | cut -c1-16)
if [ "$(cat $stamp 2>/dev/null)" != "$want" ]; then
  echo "install-deps: pip install ${PIP_REQS[*]}"
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q "${PIP_REQS[@]}"
  echo "$want" > $stamp
fi

scripts/fetch-libcachesim.sh

# --- torch (eplb: the torch custom op policyforge::rebalance_experts) ---------------------
# Only from a local CPU wheel: without one, pip would download a multi-GB CUDA build.
# Skipped quickly when torch is already importable or no such wheel exists.
torch_whl=$(ls /opt/wheels/torch-2.13.0+cpu-*.whl 2>/dev/null | head -1 || true)
if [ -n "$torch_whl" ] && ! .venv/bin/python -c "import torch" 2>/dev/null; then
  echo "install-deps: pip install $torch_whl"
  t0=$(date +%s)
  .venv/bin/python -m pip install -q "$torch_whl"
  echo "install-deps: torch installed in $(( $(date +%s) - t0 )) s"
fi
# --- end torch -----------------------------------------------------------------------------

# Rebuild the native parts only when a native input changed since the last build.
native_hash=$( (git ls-files -s CMakeLists.txt pyproject.toml native 2>/dev/null; \
                git diff HEAD -- CMakeLists.txt pyproject.toml native 2>/dev/null; \
                git ls-files -o --exclude-standard native 2>/dev/null | xargs -r cat) | sha256sum | cut -c1-16)
if [ "$(cat .venv/.pf-native 2>/dev/null)" != "$native_hash" ] || ! .venv/bin/python -c "import policyforge" 2>/dev/null; then
  echo "install-deps: building native parts (pip install -e .)"
  .venv/bin/python -m pip install -q --no-build-isolation -e . 
  echo "$native_hash" > .venv/.pf-native
fi
echo "install-deps: ok"
