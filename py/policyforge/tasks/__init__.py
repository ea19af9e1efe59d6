"""Task registry. Each subpackage exposes ``TASK_CLASS``; its module name is the task name."""
from __future__ import annotations

import importlib
import pkgutil

from ..task import Task, TaskError


def available() -> list[str]:
    return sorted(m.name for m in pkgutil.iter_modules(__path__) if m.ispkg)


def load(name: str, **options) -> Task:
    if name not in available():
        raise TaskError(f"unknown task '{name}'; available: {', '.join(available())}")
    module = importlib.import_module(f"{__name__}.{name}")
    return module.TASK_CLASS(**options)
