#!/bin/bash
# Provision a Debian 12 guest for policyforge's kernel experiments. The ONE provisioning
# script: scripts/vm-build.sh runs it inside the debootstrap chroot, vagrant/Vagrantfile runs
# it inside the box. It installs the packages, the guest agent (a virtio-serial command
# server) with its systemd unit, and a fast init for qemu boots that skips systemd.
# Usage (as root in the guest): vm-provision.sh [REPO_DIR]   (REPO_DIR holds py/policyforge/vm)
set -euo pipefail
REPO=${1:-$(cd "$(dirname "$0")/.." && pwd)}

# Everything the guest needs, from Debian only. vm-build.sh hashes this file: edit the list
# and the next `make vm` rebuilds the image.
PACKAGES="linux-image-amd64 linux-headers-amd64 iperf3 mininet openvswitch-switch bpftool
  clang python3 make gcc libc6-dev iproute2 bridge-utils net-tools ethtool procps psmisc
  kmod iputils-ping ca-certificates libbpf-dev"

export DEBIAN_FRONTEND=noninteractive
apt-get update -q
# shellcheck disable=SC2086
apt-get install -y -q --no-install-recommends $PACKAGES
apt-get clean

# The agent: the host sends JSON command lines on a virtio-serial port and gets the exit
# code, stdout and stderr back (py/policyforge/vm/agent.py is the one source).
install -D -m 0755 "$REPO/py/policyforge/vm/agent.py" /usr/local/sbin/pf-agent
cat > /etc/systemd/system/pf-agent.service <<'UNIT'
[Unit]
Description=policyforge guest agent on virtio-serial port pf.agent
After=local-fs.target
ConditionPathExists=/dev/virtio-ports/pf.agent

[Service]
ExecStart=/usr/bin/python3 /usr/local/sbin/pf-agent /dev/virtio-ports/pf.agent
Restart=always

[Install]
WantedBy=multi-user.target
UNIT
if [ -d /run/systemd/system ]; then systemctl daemon-reload; fi
systemctl enable pf-agent.service >/dev/null 2>&1 || \
  ln -sf /etc/systemd/system/pf-agent.service /etc/systemd/system/multi-user.target.wants/pf-agent.service

# Fast init for qemu boots (init=/usr/local/sbin/pf-init): systemd under TCG costs many
# seconds; the experiments need only filesystems, loopback, the 9p repo and the agent.
cat > /usr/local/sbin/pf-init <<'INIT'
#!/bin/bash
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root
# the initramfs may have mounted some of these already
mountpoint -q /proc || mount -t proc proc /proc; mountpoint -q /sys || mount -t sysfs sys /sys
mountpoint -q /dev || mount -t devtmpfs dev /dev
# no udev here: load what the agent port and the 9p shares need by hand
modprobe -a virtio_console 9pnet_virtio 9p 2>/dev/null
mkdir -p /dev/pts /dev/shm /run /tmp; mount -t devpts devpts /dev/pts; mount -t tmpfs tmpfs /dev/shm
mount -t tmpfs tmpfs /run; mount -t tmpfs tmpfs /tmp
mount -o remount,rw /
mount -t bpf bpf /sys/fs/bpf 2>/dev/null; mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
mount -t cgroup2 cgroup2 /sys/fs/cgroup 2>/dev/null
mkdir -p /work/repo; mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 pfrepo /work/repo 2>/dev/null
hostname pf-vm; ip link set lo up
# the virtio-serial port name lives in sysfs; make the /dev/virtio-ports link udev would make
mkdir -p /dev/virtio-ports
for p in /sys/class/virtio-ports/*; do [ -e "$p/name" ] && ln -sf "/dev/$(basename "$p")" "/dev/virtio-ports/$(cat "$p/name")"; done
if [ -e /dev/virtio-ports/pf.agent ]; then python3 /usr/local/sbin/pf-agent /dev/virtio-ports/pf.agent & fi
[ -e /dev/virtio-ports/pf.agent ] || echo "pf-init: no pf.agent port" > /dev/ttyS0
if grep -qw pf.shell /proc/cmdline; then
  (cd /work/repo 2>/dev/null; setsid -c bash -l <>/dev/ttyS0 >&0 2>&1; echo o > /proc/sysrq-trigger) &
fi
echo "pf-init: ready" > /dev/ttyS0
while true; do wait; sleep 1; done    # PID 1 reaps orphans (iperf3 -D, mininet helpers)
INIT
chmod 0755 /usr/local/sbin/pf-init

echo pf-vm > /etc/hostname
if [ "${PF_VM_IMAGE_BUILD:-}" = 1 ]; then     # only the qemu image: root on /dev/vda, console login
  printf '/dev/vda / ext4 defaults 0 1\n' > /etc/fstab
  passwd -d root >/dev/null
fi
echo "vm-provision: done"
