"""Find the native parts that CMake installed under policyforge/_native."""
from __future__ import annotations

import functools
import os
import sysconfig
from pathlib import Path

from .task import TaskError


def native_dir() -> Path:
    """Directory with bin/, lib/, include/ from the CMake build."""
    return _native_dir(os.environ.get("POLICYFORGE_NATIVE_DIR", ""))


@functools.lru_cache(maxsize=4)
def _native_dir(override: str) -> Path:
    candidates = []
    if override:
        candidates.append(Path(override))
    candidates += [Path(__file__).parent / "_native",
                   Path(sysconfig.get_paths()["platlib"]) / "policyforge" / "_native",
                   Path(sysconfig.get_paths()["purelib"]) / "policyforge" / "_native"]
    for c in candidates:
        if (c / "bin").is_dir() or (c / "lib").is_dir():
            return c
    raise TaskError("policyforge's native parts are not built: run `make build` "
                    "(pip install -e . in the project's .venv)")


def native_path(*parts: str) -> Path:
    p = native_dir().joinpath(*parts)
    if not p.exists():
        raise TaskError(f"native file {p} is missing: rebuild with `make build`")
    return p
