"""Import the native op, policyforge._eplb, from the package build or a dev build."""
from __future__ import annotations

import importlib.util

from ...native import native_dir
from ...task import TaskError


def load_op():
    try:
        from ... import _eplb  # type: ignore[attr-defined]
        return _eplb
    except ImportError:
        pass
    try:
        found = sorted(native_dir().parent.glob("_eplb*.so"))
    except TaskError:
        found = []
    if not found:
        raise TaskError("the EPLB op policyforge._eplb is not built: run `make build`")
    spec = importlib.util.spec_from_file_location("policyforge._eplb", found[0])
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod
