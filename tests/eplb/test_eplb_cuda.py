"""EPLB on the GPU: the CUDA pipeline must give the CPU op's plans exactly.

Runs only where the op was built with -DPF_EPLB_CUDA=ON and a GPU is present (for instance
through scripts/eplb-cuda-check.sh on a lent GPU machine); elsewhere it says why it skipped.
"""
import numpy as np
import pytest

from policyforge.tasks.eplb import metrics, workloads
from policyforge.tasks.eplb.op import load_op


@pytest.fixture(scope="module")
def op():
    op = load_op()
    if not op.has_cuda:
        pytest.skip("policyforge._eplb was built without CUDA (-DPF_EPLB_CUDA=ON)")
    try:
        op.rebalance_experts(np.ones((1, 8)), 8, 2, 2, 4, device="cuda")
    except RuntimeError as e:
        pytest.skip(f"no usable GPU: {e}")
    return op


@pytest.mark.parametrize("shape", [(256, 288, 8, 4, 32), (256, 288, 8, 3, 32), (16, 24, 4, 2, 8),
                                   (12, 16, 3, 2, 4), (64, 128, 8, 8, 16)])
def test_cuda_plans_equal_cpu_plans(op, shape):
    E, R, G, N, M = shape
    rng = np.random.default_rng(E * R + N)
    for _ in range(5):
        w = np.floor(rng.lognormal(0, 1.5, (6, E)) * 3)  # token counts: many exact ties
        w[rng.random(w.shape) < 0.2] = 0
        cpu = op.rebalance_experts(w, R, G, N, M, device="cpu")
        gpu = op.rebalance_experts(w, R, G, N, M, device="cuda")
        for a, b in zip(cpu, gpu):
            assert a.shape == b.shape and (a == b).all()
        assert metrics.validate(*gpu, w, R, M) == ""


def test_cuda_at_the_standard_shape(op):
    w = workloads.windows(workloads.synthetic("drifting", 200, 58, 256), 100)[0]
    cpu = op.rebalance_experts(w, 288, 8, 4, 32)
    gpu = op.rebalance_experts(w, 288, 8, 4, 32, device="cuda")
    assert all((a == b).all() for a, b in zip(cpu, gpu))
