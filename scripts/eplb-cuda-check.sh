#!/usr/bin/env bash
# Builds policyforge._eplb with the CUDA pipeline and checks it against the CPU op on a GPU:
# identical outputs on random inputs, and timings of both at the DeepSeek-V3 prefill shape.
#   scripts/eplb-cuda-check.sh        (needs nvcc and an NVIDIA GPU)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}; [ -x "$PY" ] || PY=python3
NVCC=${NVCC:-$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)}
cmake -S . -B build/eplb-cuda -DPF_PARTS=eplb -DPF_EPLB_CUDA=ON -DCMAKE_CUDA_COMPILER="$NVCC" \
      -DPython_EXECUTABLE="$(command -v "$PY")" -Dpybind11_DIR="$("$PY" -m pybind11 --cmakedir)" >/dev/null
cmake --build build/eplb-cuda -j"$(nproc)" >/dev/null
"$PY" - <<'PYEOF'
import glob, importlib.util, statistics, time
import numpy as np
path = glob.glob("build/eplb-cuda/**/_eplb*.so", recursive=True)[0]
spec = importlib.util.spec_from_file_location("policyforge._eplb", path)
op = importlib.util.module_from_spec(spec); spec.loader.exec_module(op)
assert op.has_cuda
rng = np.random.default_rng(0)
for shape in [(58, 256, 288, 8, 4, 32), (4, 16, 24, 4, 2, 8), (3, 12, 16, 3, 2, 4)]:
    L, E, R, G, N, M = shape
    for _ in range(20):
        w = np.floor(rng.lognormal(0, 1.5, (L, E)) * 3)
        cpu = op.rebalance_experts(w, R, G, N, M)
        gpu = op.rebalance_experts(w, R, G, N, M, device="cuda")
        assert all((a == b).all() for a, b in zip(cpu, gpu)), shape
print("CUDA == CPU on 60 random inputs")
w = rng.lognormal(0, 0.5, (58, 256))
for dev in ("cpu", "cuda"):
    ts = []
    for _ in range(50):
        t = time.perf_counter(); op.rebalance_experts(w, 288, 8, 4, 32, device=dev); ts.append(time.perf_counter() - t)
    print(f"{dev}: median {1000 * statistics.median(ts):.3f} ms (L=58 E=256 R=288 G=8 N=4 M=32)")
PYEOF
