#!/bin/bash
# In the policyforge guest (`make vm-shell`, or `vagrant ssh`), as root: build a congestion-control
# winner as a kernel module against the guest's headers, insmod it, run one iperf3 flow with it
# across the Mininet dumbbell (htb + netem), print the harness's JSON result, rmmod it.
#   sudo scripts/vm-cc-winner.sh bench/vm/winners/synth.c            # module pf_synth
#   PF_RATE_MBPS=10 PF_DELAY_MS=40 PF_LOSS=0.005 PF_SECONDS=8 sudo scripts/vm-cc-winner.sh policy.c pf_mine
# POLICY.c holds policy_cong_control() (and optionally policy_ssthresh / policy_pacing_rate), as
# `policyforge run cc` exports it. Exit non-zero with the compiler or insmod output on failure.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
[ $# -ge 1 ] || { echo "usage: $0 POLICY.c [MODULE_NAME]" >&2; exit 2; }
POLICY=$(readlink -f "$1")
[ -f "$POLICY" ] || { echo "vm-cc-winner: $1: no such file" >&2; exit 2; }
NAME=${2:-pf_$(basename "$POLICY" .c)}
[[ "$NAME" =~ ^[a-z][a-z0-9_]{0,14}$ ]] || { echo "vm-cc-winner: module name must be a short C identifier: $NAME" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "vm-cc-winner: needs root (insmod, Mininet)" >&2; exit 2; }

OUT=$(mktemp -d /tmp/pf-winner.XXXXXX)
loaded=0
cleanup() { [ $loaded = 1 ] && rmmod "$NAME" 2>/dev/null; rm -rf "$OUT"; }
trap cleanup EXIT
modprobe -a sch_netem sch_htb
mn -c >/dev/null 2>&1 || true
make -s -C "$REPO/kmod" KDIR="/lib/modules/$(uname -r)/build" POLICY="$POLICY" NAME="$NAME" OUT="$OUT/kmod" >&2
insmod "$OUT/kmod/$NAME.ko"
loaded=1
grep -qw "$NAME" /proc/sys/net/ipv4/tcp_available_congestion_control \
  || { echo "vm-cc-winner: $NAME loaded but not registered as a congestion control" >&2; exit 1; }
echo "vm-cc-winner: $NAME built and loaded on $(uname -r)" >&2
cat > "$OUT/experiment.json" <<EOF
{"name": "$NAME", "link": {"rate_mbps": ${PF_RATE_MBPS:-24}, "delay_ms": ${PF_DELAY_MS:-10}, "loss": ${PF_LOSS:-0},
  "queue_pkts": null, "queue_bytes": null, "trace": null},
 "flows": [{"scheme": "$NAME", "start_s": 0.0, "duration_s": ${PF_SECONDS:-8}}]}
EOF
python3 "$REPO/py/policyforge/testbed/mininet_runner.py" "$OUT/experiment.json"
