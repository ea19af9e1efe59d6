#!/bin/bash
# Build the policyforge kernel VM: a Debian 12 root filesystem from Debian's packages only
# (debootstrap + scripts/vm-provision.sh in a chroot), packed into an ext4 disk image, plus
# a static initramfs (scripts/vm-initramfs-init.c + the root disk's modules) and the guest's vmlinuz next to it,
# so qemu boots with -kernel/-initrd.
# The result lives in a cache outside the clone (PF_VM_CACHE, default
# /var/cache/policyforge/vm) under a key = hash of the provisioning inputs; a second run with
# unchanged inputs only prints the path.
set -euo pipefail
ROOT_DIR=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${PF_VM_CACHE:-/var/cache/policyforge/vm}
SUITE=bookworm
# The mirror apt already uses on this machine (deb822 or one-line sources), else Debian's.
MIRROR=${PF_VM_MIRROR:-$(grep -hoE '(URIs:|deb) +https?://[^ ]+/debian/?( |$)' /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null \
         | head -1 | awk '{print $2}' || true)}
MIRROR=${MIRROR:-http://deb.debian.org/debian}

# the provisioning script holds the package list; the agent is copied into the image; this
# script and the initramfs' /init make the boot files
INPUTS=("$ROOT_DIR/scripts/vm-provision.sh" "$ROOT_DIR/py/policyforge/vm/agent.py"
        "$ROOT_DIR/scripts/vm-build.sh" "$ROOT_DIR/scripts/vm-initramfs-init.c")
KEY=$( (cat "${INPUTS[@]}"; echo "$SUITE") | sha256sum | cut -c1-16)
OUT="$CACHE/$KEY"
if [ -f "$OUT/ready" ]; then
  ln -sfn "$KEY" "$CACHE/current"
  echo "vm image up to date: $OUT"
  exit 0
fi
for tool in debootstrap mkfs.ext4 chroot cpio gcc; do
  command -v "$tool" >/dev/null || { echo "vm-build: $tool not found (scripts/install-deps.sh installs it)" >&2; exit 1; }
done
[ "$(id -u)" = 0 ] || { echo "vm-build: debootstrap needs root" >&2; exit 1; }

mkdir -p "$CACHE"
exec 9>"$CACHE/.lock"; flock 9            # two builds at once share one result
[ -f "$OUT/ready" ] && { ln -sfn "$KEY" "$CACHE/current"; echo "vm image up to date: $OUT"; exit 0; }
START=$(date +%s)
WORK=$(mktemp -d "$CACHE/build.XXXXXX")
ROOTFS="$WORK/rootfs"
cleanup() {
  for m in proc sys dev/pts dev mnt/repo; do umount -l "$ROOTFS/$m" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

echo "vm-build: debootstrap $SUITE from $MIRROR"
debootstrap --variant=minbase --include=systemd-sysv,apt "$SUITE" "$ROOTFS" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 \
  || { tail -20 "$WORK/debootstrap.log" >&2; echo "vm-build: debootstrap failed" >&2; exit 1; }
echo "deb $MIRROR $SUITE main" > "$ROOTFS/etc/apt/sources.list"
printf '#!/bin/sh\nexit 101\n' > "$ROOTFS/usr/sbin/policy-rc.d"; chmod +x "$ROOTFS/usr/sbin/policy-rc.d"   # no daemons in the chroot
mount -t proc proc "$ROOTFS/proc"; mount -t sysfs sys "$ROOTFS/sys"
mount --bind /dev "$ROOTFS/dev"; mount --bind /dev/pts "$ROOTFS/dev/pts"
mkdir -p "$ROOTFS/mnt/repo"; mount --bind "$ROOT_DIR" "$ROOTFS/mnt/repo"
echo "vm-build: provisioning (scripts/vm-provision.sh in the chroot)"
PF_VM_IMAGE_BUILD=1 chroot "$ROOTFS" /bin/bash /mnt/repo/scripts/vm-provision.sh /mnt/repo >"$WORK/provision.log" 2>&1 \
  || { tail -30 "$WORK/provision.log" >&2; echo "vm-build: provisioning failed" >&2; exit 1; }
for m in mnt/repo dev/pts dev sys proc; do umount "$ROOTFS/$m"; done
rm -f "$ROOTFS/usr/sbin/policy-rc.d"

mkdir -p "$WORK/out"
cp "$(ls "$ROOTFS"/boot/vmlinuz-* | sort -V | tail -1)" "$WORK/out/vmlinuz"
basename "$(ls -d "$ROOTFS"/lib/modules/* | sort -V | tail -1)" > "$WORK/out/kernel-release"
# The initramfs: not Debian's (udev and scripts cost ~7 s under TCG) but a static /init
# (scripts/vm-initramfs-init.c) and the modules the root disk needs, in load order.
echo "vm-build: initramfs (virtio disk + ext4 modules, static /init)"
KREL=$(cat "$WORK/out/kernel-release")
INITRAMFS="$WORK/initramfs"
mkdir -p "$INITRAMFS"
gcc -static -Os -Wall -Werror -o "$INITRAMFS/init" "$ROOT_DIR/scripts/vm-initramfs-init.c"
for m in virtio_pci virtio_blk crc32c_generic ext4; do
  chroot "$ROOTFS" modprobe --show-depends -S "$KREL" "$m"
done | awk '$1 == "insmod" && !seen[$2]++ {print $2}' > "$INITRAMFS/modules"
while read -r ko; do
  mkdir -p "$INITRAMFS$(dirname "$ko")"; cp "$ROOTFS$ko" "$INITRAMFS$ko"
done < "$INITRAMFS/modules"
(cd "$INITRAMFS" && find . | cpio -o -H newc --quiet) > "$WORK/out/initrd.img"
echo "vm-build: packing the root filesystem (ext4, mkfs -d)"
mkfs.ext4 -q -L pfroot -d "$ROOTFS" "$WORK/out/rootfs.ext4" 6G
cp "$WORK/provision.log" "$WORK/out/"
echo "built $(date -u +%FT%TZ) in $(( $(date +%s) - START )) s from $MIRROR" > "$WORK/out/ready"
rm -rf "$OUT"; mv "$WORK/out" "$OUT"
ln -sfn "$KEY" "$CACHE/current"
# older images (other keys) are dead weight: 6 GB sparse each
# ("current" is the link to this one: skip links, or the loop would drop it)
for old in "$CACHE"/*/ready; do
  d=$(dirname "$old"); [ -L "$d" ] || [ "$(basename "$d")" = "$KEY" ] || rm -rf "$d"
done
echo "vm image built in $(( $(date +%s) - START )) s: $OUT"
