"""The EPLB op as a torch custom op: importing this module registers
``torch.ops.policyforge.rebalance_experts`` (needs torch; the numpy op needs none).

    import policyforge.tasks.eplb.torch_op  # noqa: F401  (registers the op)
    phy2log, log2phy, logcnt = torch.ops.policyforge.rebalance_experts(weight, 288, 8, 4, 32)

weight (and history, optional) [L, E]: any real dtype, converted to float64. Outputs are int64
tensors on weight's device: phy2log [L, R], log2phy [L, E, maxcnt] (-1 padded), logcnt [L, E].
CPU tensors run the native CPU op without copying a contiguous float64 input; CUDA tensors
run the op's CUDA pipeline (inputs go through host memory, as the native op takes host
arrays) where policyforge._eplb was built with -DPF_EPLB_CUDA=ON, and raise a clear error
otherwise. rules_lib: a candidate's rules library, as for the numpy op (CPU only).

It is a Python-side torch.library.custom_op wrapping the pybind11 op, so nothing is built
against libtorch: the package builds the same with or without torch. The fake (meta) kernel
gives the shapes for torch.compile; log2phy's last dimension depends on the data and is a
dynamic size there.

Kept apart from op.py because `import torch` costs a second or more, which every evaluation
in the sandbox would pay.
"""
from __future__ import annotations

from typing import Optional

import numpy as np
import torch

from .op import load_op

_op = load_op()


def _check_device(device_type: str) -> None:
    if device_type == "cuda" and not _op.has_cuda:
        raise RuntimeError("policyforge::rebalance_experts got CUDA tensors but policyforge._eplb was built without "
                           "CUDA (configure with -DPF_EPLB_CUDA=ON); pass CPU tensors")
    if device_type not in ("cpu", "cuda"):
        raise ValueError(f"policyforge::rebalance_experts runs on cpu or cuda tensors, not {device_type}")


def _host(t: torch.Tensor, name: str) -> np.ndarray:
    if t.dim() != 2:
        raise ValueError(f"{name} must be 2-D [layers, experts]")
    if t.is_complex() or t.dtype == torch.bool:
        raise ValueError(f"{name} must hold real numbers, not {t.dtype}")
    return t.detach().to(device="cpu", dtype=torch.float64).contiguous().numpy()


@torch.library.custom_op("policyforge::rebalance_experts", mutates_args=())
def rebalance_experts(weight: torch.Tensor, num_replicas: int, num_groups: int, num_nodes: int, num_gpus: int,
                      history: Optional[torch.Tensor] = None,
                      rules_lib: str = "") -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    dev = weight.device
    _check_device(dev.type)
    if history is not None and history.device != dev:
        raise ValueError("history must be on weight's device")
    if dev.type == "cuda" and rules_lib:
        raise ValueError("CUDA tensors run the reference rules only (rules_lib must be empty)")
    outs = _op.rebalance_experts(_host(weight, "weight"), num_replicas, num_groups, num_nodes, num_gpus,
                                 history=None if history is None else _host(history, "history"),
                                 rules_lib=rules_lib, device=dev.type)
    return tuple(torch.from_numpy(a).to(dev) for a in outs)


@rebalance_experts.register_fake
def _(weight, num_replicas, num_groups, num_nodes, num_gpus, history=None, rules_lib=""):
    L, E = weight.shape
    R = num_replicas
    # at most R replicas of one expert (bounds must be plain ints: E may be symbolic here)
    maxcnt = torch.library.get_ctx().new_dynamic_size(min=1, max=max(2, R))
    new = dict(dtype=torch.int64, device=weight.device)
    return weight.new_empty((L, R), **new), weight.new_empty((L, E, maxcnt), **new), weight.new_empty((L, E), **new)
