"""The policyforge kernel VM: a cached Debian 12 image (scripts/vm-build.sh), qemu with a KVM
probe and TCG fallback, a guest agent, and congestion-control experiments on Mininet + netem
with the candidate as a real kernel module. See docs/vm.md."""
from .machine import VM, CommandResult, GuestCrash, VmError, image_dir, probe_accel

__all__ = ["VM", "CommandResult", "GuestCrash", "VmError", "image_dir", "probe_accel"]
