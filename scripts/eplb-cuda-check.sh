#!/usr/bin/env bash
# Build the EPLB op with its CUDA pipeline and check it against the CPU op on a GPU machine:
# exact equality of phy2log / log2phy / logcnt on random shapes (hierarchical and global
# policy) and skewed loads, then the median runtime of both at the DeepSeek-V3 prefill shape.
#
#   scripts/eplb-cuda-check.sh [BUILD_DIR]       (default build/eplb-cuda)
#   PYTHON=python3 CUDA_ARCH=90 scripts/eplb-cuda-check.sh
#
# Needs cmake, nvcc, a GPU, and a Python with numpy and pybind11. Writes eplb-cuda-check.json
# into $OUT when set (the device tool's output folder), else into the build dir.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build/eplb-cuda}
if [[ -z "${PYTHON:-}" ]]; then
  if [[ -x .venv/bin/python ]]; then PYTHON=$PWD/.venv/bin/python; else PYTHON=$(command -v python3); fi
fi
ARCH=${CUDA_ARCH:-90}
command -v nvcc >/dev/null || { echo "eplb-cuda-check: nvcc is not on PATH" >&2; exit 2; }
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version --format=csv,noheader || true
PYBIND11_DIR=$("$PYTHON" -m pybind11 --cmakedir 2>/dev/null) || {
  echo "eplb-cuda-check: $PYTHON has no pybind11 (pip install pybind11 numpy)" >&2; exit 2; }

cmake -S . -B "$BUILD" -DPF_PARTS=eplb -DPF_EPLB_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES="$ARCH" \
  -DPython_EXECUTABLE="$PYTHON" -Dpybind11_DIR="$PYBIND11_DIR" >"$BUILD.cmake.log" 2>&1 \
  || { tail -30 "$BUILD.cmake.log"; exit 1; }
cmake --build "$BUILD" -j"$(nproc)" >>"$BUILD.cmake.log" 2>&1 || { tail -30 "$BUILD.cmake.log"; exit 1; }
OP=$(find "$BUILD" -name '_eplb*.so' | head -1)
[[ -n "$OP" ]] || { echo "eplb-cuda-check: the build made no _eplb module" >&2; exit 1; }

"$PYTHON" - "$OP" "${OUT:-$BUILD}" <<'PY'
import importlib.util, json, statistics, sys, time
from pathlib import Path
import numpy as np

spec = importlib.util.spec_from_file_location("policyforge._eplb", sys.argv[1])
op = importlib.util.module_from_spec(spec)
spec.loader.exec_module(op)
assert op.has_cuda, "the module was built without CUDA"
rng = np.random.default_rng(0)

def loads(L, E):
    """Token counts with per-layer skew: Zipf-like and lognormal popularity, some ties (zeros)."""
    w = np.empty((L, E))
    for l in range(L):
        if l % 2:
            w[l] = np.round(rng.lognormal(0, rng.uniform(0.5, 1.5), E) * 100)
        else:
            w[l] = rng.permutation(np.round(8192 * np.arange(1, E + 1) ** -rng.uniform(0.5, 1.2)))
    w[rng.random(w.shape) < 0.02] = 0
    return w

def same(w, R, G, N, M):
    a = op.rebalance_experts(w, R, G, N, M, device="cpu")
    b = op.rebalance_experts(w, R, G, N, M, device="cuda")
    return all(np.array_equal(x, y) for x, y in zip(a, b))

cases, mismatches = 0, []
shapes = [(58, 256, 288, 8, 4, 32), (58, 256, 288, 8, 3, 32), (4, 64, 96, 8, 2, 16), (7, 32, 48, 4, 4, 8),
          (3, 16, 16, 4, 2, 4), (5, 128, 160, 16, 8, 32), (2, 256, 512, 1, 1, 64)]
for _ in range(40):  # random shapes that satisfy the op's divisibility rules
    N = int(rng.choice([1, 2, 4, 8])); G = N * int(rng.integers(1, 5)) if rng.random() < .8 else 3
    E = G * int(rng.integers(1, 9)) * N; M = N * int(rng.integers(1, 5))
    R = M * int(np.ceil(E / M)) + M * int(rng.integers(0, 3))
    if G % N or E % N:
        N = 1; M = M
    shapes.append((int(rng.integers(1, 9)), E, R, G, N, M))
for L, E, R, G, N, M in shapes:
    w = loads(L, E)
    try:
        ok = same(w, R, G, N, M)
    except ValueError:  # a random shape the op rejects on both devices alike
        continue
    cases += 1
    if not ok:
        mismatches.append([L, E, R, G, N, M])
print(f"CUDA == CPU on {cases - len(mismatches)}/{cases} shapes" + (f"; mismatches: {mismatches}" if mismatches else ""))

def median_ms(device, w, repeat=51):
    op.rebalance_experts(w, 288, 8, 4, 32, device=device)  # warm-up (CUDA context, buffers)
    t = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        op.rebalance_experts(w, 288, 8, 4, 32, device=device)
        t.append(time.perf_counter() - t0)
    return 1000 * statistics.median(t)

w = loads(58, 256)
timing = {"cpu_ms": median_ms("cpu", w), "cuda_ms": median_ms("cuda", w)}
print(f"L=58 E=256 R=288 G=8 N=4 M=32, median of 51 calls incl. host<->GPU copies: "
      f"CPU {timing['cpu_ms']:.3f} ms, CUDA {timing['cuda_ms']:.3f} ms")
out = Path(sys.argv[2]) / "eplb-cuda-check.json"
out.write_text(json.dumps({"cases": cases, "mismatches": mismatches, **timing}, indent=1))
print(f"wrote {out}")
sys.exit(1 if mismatches else 0)
PY
