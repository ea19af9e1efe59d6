#!/bin/bash
# Make sure libvirtd answers on qemu:///system (vagrant-libvirt's default). Under systemd that
# is its socket units; without systemd (containers, CI runners like this project's) start
# virtlogd and libvirtd as daemons. Quick when it already answers.
set -euo pipefail
answers() { virsh -c qemu:///system version >/dev/null 2>&1; }
answers && exit 0
command -v libvirtd >/dev/null || { echo "libvirt-up: libvirtd not found (scripts/install-deps.sh installs it)" >&2; exit 1; }
if [ -d /run/systemd/system ]; then
  systemctl start virtlogd.socket libvirtd.socket libvirtd
else
  pgrep -x virtlogd >/dev/null || virtlogd -d
  if ! pgrep -x libvirtd >/dev/null; then
    # Where /dev/kvm opens but a guest hangs under it (policyforge's own probe says tcg, as here),
    # libvirt probes KVM again at every capabilities call and waits for it: 8 s a call, and
    # vagrant-libvirt makes enough of them that `vagrant up` spent 110 of its 165 s there. The
    # daemon started here gets a mount namespace of its own with /dev/null over /dev/kvm: it
    # answers at once and runs its domains under TCG, as the Vagrantfile asks.
    ROOT_DIR=$(cd "$(dirname "$0")/.." && pwd)
    PY=${PF_PYTHON:-$ROOT_DIR/.venv/bin/python}
    accel=$([ -e /dev/kvm ] && [ -x "$PY" ] && "$PY" -m policyforge.vm probe 2>/dev/null || true)
    if [ "$accel" = tcg ] && [ -e /dev/kvm ]; then
      unshare -m --propagation private sh -c 'mount --bind /dev/null /dev/kvm && exec libvirtd -d'
    else
      libvirtd -d
    fi
  fi
fi
for _ in $(seq 100); do answers && exit 0; sleep 0.2; done
echo "libvirt-up: libvirtd does not answer on qemu:///system" >&2
exit 1
