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
  pgrep -x libvirtd >/dev/null || libvirtd -d
fi
for _ in $(seq 100); do answers && exit 0; sleep 0.2; done
echo "libvirt-up: libvirtd does not answer on qemu:///system" >&2
exit 1
