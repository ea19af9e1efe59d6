#!/bin/bash
# make vagrant-box: package the VM image that `make vm` builds as a vagrant-libvirt box and add
# it to vagrant as policyforge/bookworm (PF_VAGRANT_BOX), offline: nothing is downloaded but
# Debian packages.
#
# The qemu image is a bare ext4 file booted with -kernel/-initrd and a fast init. A box has to
# boot by itself under libvirt and take `vagrant ssh`, so this script
#   1. copies the ext4 into a disk with an MBR partition table (partition 1 at 1 MiB),
#   2. adds what vagrant needs in a chroot: openssh-server, sudo, rsync (the synced folder), a
#      `vagrant` user with vagrant's public insecure key (vagrant swaps in a fresh key at the
#      first `vagrant up`), DHCP by systemd-networkd, root=/dev/vda1,
#   3. writes GRUB's boot sector and core image by hand (grub-mkimage + dd: this kernel has no
#      partition scanning for loop devices, so grub-install cannot find the partition) with a
#      grub.cfg that boots Debian's kernel and initramfs through systemd,
#   4. converts it to qcow2 and packs box.img, metadata.json and a Vagrantfile with the
#      provider defaults (TCG: driver "qemu"; no KVM here) into a .box file, and adds it.
# The box is cached next to the image under a key = the image's build stamp + this script.
set -euo pipefail
ROOT_DIR=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${PF_VM_CACHE:-/var/cache/policyforge/vm}
BOX_NAME=${PF_VAGRANT_BOX:-policyforge/bookworm}
IMAGE="$CACHE/current"
die() { echo "vagrant-box: $*" >&2; exit 1; }

[ -f "$IMAGE/ready" ] || die "no VM image in $IMAGE (run \`make vm\` first)"
for tool in vagrant sfdisk grub-mkimage qemu-img chroot; do
  command -v "$tool" >/dev/null || die "$tool not found (scripts/install-deps.sh installs it)"
done
[ "$(id -u)" = 0 ] || die "needs root (loop mount, chroot)"
PUBKEY=$(ls /usr/share/rubygems-integration/all/gems/vagrant-*/keys/vagrant.pub 2>/dev/null | head -1 || true)
[ -n "$PUBKEY" ] || die "vagrant's insecure public key (keys/vagrant.pub of the vagrant package) not found"
GRUB_DIR=/usr/lib/grub/i386-pc
[ -f "$GRUB_DIR/boot.img" ] || die "$GRUB_DIR/boot.img not found (package grub-pc-bin)"

KEY=$( (cat "$IMAGE/ready" "$IMAGE/kernel-release" "$0") | sha256sum | cut -c1-16)
OUT="$CACHE/vagrant/$KEY"
BOX="$OUT/policyforge-bookworm.box"
add_box() {
  vagrant box add --force --name "$BOX_NAME" "$BOX" >/dev/null
  echo "vagrant box $BOX_NAME added from $BOX"
}
if [ -f "$BOX" ]; then
  vagrant box list 2>/dev/null | grep -q "^$BOX_NAME " && [ "$(cat "$OUT/added-as" 2>/dev/null)" = "$BOX_NAME" ] \
    && { echo "vagrant box $BOX_NAME up to date ($BOX)"; exit 0; }
  add_box; echo "$BOX_NAME" > "$OUT/added-as"; exit 0
fi

mkdir -p "$CACHE/vagrant"
exec 9>"$CACHE/vagrant/.lock"; flock 9
START=$(date +%s)
WORK=$(mktemp -d "$CACHE/vagrant/build.XXXXXX")
MNT="$WORK/mnt"
cleanup() {
  for m in proc sys dev/pts dev; do umount -l "$MNT/$m" 2>/dev/null || true; done
  umount -l "$MNT" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

echo "vagrant-box: disk with a partition table from $(readlink -f "$IMAGE")/rootfs.ext4"
SIZE=$(stat -c %s "$IMAGE/rootfs.ext4")
OFFSET=$((1024 * 1024))
truncate -s $((SIZE + OFFSET)) "$WORK/disk.raw"
printf 'label: dos\nstart=%d, type=83, bootable\n' $((OFFSET / 512)) | sfdisk -q "$WORK/disk.raw"
dd if="$IMAGE/rootfs.ext4" of="$WORK/disk.raw" bs=4M seek=$OFFSET oflag=seek_bytes conv=sparse,notrunc status=none

mkdir -p "$MNT"
mount -o loop,offset=$OFFSET "$WORK/disk.raw" "$MNT"
KREL=$(cat "$IMAGE/kernel-release")
[ -f "$MNT/boot/vmlinuz-$KREL" ] && [ -f "$MNT/boot/initrd.img-$KREL" ] || die "the image has no /boot/vmlinuz-$KREL + initrd"
mount -t proc proc "$MNT/proc"; mount -t sysfs sys "$MNT/sys"
mount --bind /dev "$MNT/dev"; mount --bind /dev/pts "$MNT/dev/pts"
printf '#!/bin/sh\nexit 101\n' > "$MNT/usr/sbin/policy-rc.d"; chmod +x "$MNT/usr/sbin/policy-rc.d"
install -m 0644 "$PUBKEY" "$MNT/tmp/vagrant.pub"
echo "vagrant-box: vagrant user, sshd, rsync, DHCP (chroot)"
chroot "$MNT" /bin/bash -euo pipefail -c '
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  apt-get install -y -q --no-install-recommends openssh-server sudo rsync >/dev/null
  apt-get clean
  id vagrant >/dev/null 2>&1 || useradd -m -s /bin/bash vagrant
  install -d -m 0700 -o vagrant -g vagrant /home/vagrant/.ssh
  install -m 0600 -o vagrant -g vagrant /tmp/vagrant.pub /home/vagrant/.ssh/authorized_keys
  rm /tmp/vagrant.pub
  echo "vagrant ALL=(ALL) NOPASSWD: ALL" > /etc/sudoers.d/vagrant; chmod 0440 /etc/sudoers.d/vagrant
  passwd -l root >/dev/null                       # the qemu image logs root in on its console
  printf "UseDNS no\n" > /etc/ssh/sshd_config.d/vagrant.conf
  printf "[Match]\nName=en* eth*\n\n[Network]\nDHCP=yes\n" > /etc/systemd/network/10-dhcp.network
  systemctl enable systemd-networkd ssh >/dev/null 2>&1
  printf "/dev/vda1 / ext4 defaults 0 1\n" > /etc/fstab
'
rm -f "$MNT/usr/sbin/policy-rc.d"
mkdir -p "$MNT/boot/grub"
cat > "$MNT/boot/grub/grub.cfg" <<CFG
# written by policyforge scripts/vagrant-box.sh: Debian's kernel through systemd
set root=(hd0,msdos1)
set timeout=0
linux /boot/vmlinuz-$KREL root=/dev/vda1 ro console=ttyS0 net.ifnames=0 quiet
initrd /boot/initrd.img-$KREL
boot
CFG
for m in dev/pts dev sys proc; do umount "$MNT/$m"; done
umount "$MNT"

echo "vagrant-box: GRUB boot sector and core image"
grub-mkimage -O i386-pc -p '(hd0,msdos1)/boot/grub' -o "$WORK/core.img" \
  biosdisk part_msdos ext2 linux normal configfile
[ "$(stat -c %s "$WORK/core.img")" -lt $((OFFSET - 512)) ] || die "GRUB's core image does not fit before the partition"
# boot.img's first 440 bytes (the code; the partition table after them stays), then core.img
# from sector 1, where boot.img looks for it and core.img's first sector lists the rest.
dd if="$GRUB_DIR/boot.img" of="$WORK/disk.raw" bs=440 count=1 conv=notrunc status=none
dd if="$WORK/core.img" of="$WORK/disk.raw" bs=512 seek=1 conv=notrunc status=none

echo "vagrant-box: qcow2 and the .box"
mkdir -p "$WORK/box"
qemu-img convert -O qcow2 "$WORK/disk.raw" "$WORK/box/box.img"
GB=$(( (SIZE + OFFSET + 1024 * 1024 * 1024 - 1) / (1024 * 1024 * 1024) ))
printf '{"provider": "libvirt", "format": "qcow2", "virtual_size": %d}\n' "$GB" > "$WORK/box/metadata.json"
cat > "$WORK/box/Vagrantfile" <<'VF'
# Defaults of the policyforge/bookworm box (scripts/vagrant-box.sh): Debian 12 with the packages
# of scripts/vm-provision.sh, sshd and a vagrant user. No KVM is assumed: the qemu driver (TCG).
Vagrant.configure("2") do |config|
  config.vm.provider :libvirt do |lv|
    lv.driver = "qemu"
    lv.cpu_mode = "custom"
    lv.cpu_model = "qemu64"
    lv.memory = 2048
    lv.cpus = 2
    lv.graphics_type = "none"
  end
end
VF
tar -C "$WORK/box" -cf "$WORK/box.box" metadata.json Vagrantfile box.img
mkdir -p "$OUT"
mv "$WORK/box.box" "$BOX"
add_box; echo "$BOX_NAME" > "$OUT/added-as"
# boxes built from older images (other keys) are dead weight, ~1.5 GB each
for old in "$CACHE"/vagrant/*/policyforge-bookworm.box; do
  d=$(dirname "$old"); [ "$d" = "$OUT" ] || rm -rf "$d"
done
echo "vagrant box built in $(( $(date +%s) - START )) s: $BOX"
