"""EPLB as a torch custom op (policyforge::rebalance_experts): the same plans as the numpy op,
torch.library.opcheck, the fake kernel's shapes, a clear error for CUDA without a CUDA build.
Skips only where torch is not importable (scripts/install-deps.sh installs it from a local
CPU wheel when there is one)."""
import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch is not installed (scripts/install-deps.sh installs the CPU "
                                            "wheel from /opt/wheels when it is there)")
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from policyforge.tasks.eplb import torch_op  # noqa: E402  (registers the op)
from policyforge.tasks.eplb.op import load_op  # noqa: E402

SHAPES = [(16, 24, 4, 2, 8), (12, 16, 3, 2, 4), (32, 48, 8, 4, 16), (10, 20, 5, 2, 4), (256, 288, 8, 4, 32)]


def _weights(seed, layers, E, ints, zeros):
    rng = np.random.default_rng(seed)
    w = rng.lognormal(0, 1.5, (layers, E))
    if ints:
        w = np.floor(w * 3)
    if zeros:
        w[rng.random(w.shape) < 0.3] = 0
    return w


@settings(max_examples=40, deadline=None)
@given(shape=st.sampled_from(SHAPES), layers=st.integers(1, 4), seed=st.integers(0, 2**31), ints=st.booleans(),
       zeros=st.booleans(), hist=st.booleans())
def test_torch_op_equals_numpy_op(shape, layers, seed, ints, zeros, hist):
    E, R, G, N, M = shape
    w = _weights(seed, layers, E, ints, zeros)
    h = _weights(seed + 1, layers, E, ints, zeros) if hist else None
    ref = load_op().rebalance_experts(w, R, G, N, M, history=h)
    got = torch.ops.policyforge.rebalance_experts(torch.from_numpy(w), R, G, N, M,
                                                  None if h is None else torch.from_numpy(h))
    for a, b in zip(got, ref):
        assert isinstance(a, torch.Tensor) and a.dtype == torch.int64 and a.device.type == "cpu"
        assert tuple(a.shape) == b.shape and (a.numpy() == b).all()


def test_float32_and_integer_inputs_are_converted():
    w = np.floor(_weights(3, 2, 16, True, False))
    ref = load_op().rebalance_experts(w, 24, 4, 2, 8)
    for t in (torch.tensor(w, dtype=torch.float32), torch.tensor(w, dtype=torch.int64), torch.tensor(w).t().t()):
        got = torch.ops.policyforge.rebalance_experts(t, 24, 4, 2, 8)
        assert all((a.numpy() == b).all() for a, b in zip(got, ref))


def test_opcheck():
    if not hasattr(torch.library, "opcheck"):
        pytest.skip("this torch has no torch.library.opcheck")
    for E, R, G, N, M in SHAPES[:3]:
        w = torch.from_numpy(_weights(E, 3, E, True, True))
        torch.library.opcheck(torch.ops.policyforge.rebalance_experts.default, (w, R, G, N, M))
        torch.library.opcheck(torch.ops.policyforge.rebalance_experts.default, (w, R, G, N, M, w * 2))


def test_fake_kernel_shapes():
    from torch._subclasses.fake_tensor import FakeTensorMode
    from torch.fx.experimental.symbolic_shapes import ShapeEnv
    with FakeTensorMode(shape_env=ShapeEnv()):
        p2l, l2p, cnt = torch.ops.policyforge.rebalance_experts(torch.empty(58, 256, dtype=torch.float64),
                                                                288, 8, 4, 32)
    assert tuple(p2l.shape) == (58, 288) and tuple(cnt.shape) == (58, 256)
    assert tuple(l2p.shape[:2]) == (58, 256) and l2p.dtype == p2l.dtype == cnt.dtype == torch.int64


def test_errors_are_clear():
    op = torch.ops.policyforge.rebalance_experts
    with pytest.raises(ValueError, match="num_groups must divide"):
        op(torch.ones(1, 10), 12, 3, 1, 4)
    with pytest.raises(ValueError, match="2-D"):
        op(torch.ones(10), 12, 2, 1, 4)
    with pytest.raises(ValueError, match="finite and non-negative"):
        op(torch.tensor([[1.0, float("nan"), 1.0, 1.0]]), 4, 2, 2, 2)
    if not load_op().has_cuda:
        with pytest.raises(RuntimeError, match="built without CUDA"):
            torch_op._check_device("cuda")
