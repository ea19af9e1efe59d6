"""Task registry. Each subpackage exposes ``TASK_CLASS``; its module name is the task name."""
from __future__ import annotations

import importlib
import pkgutil

from ..task import Task, TaskError


def available() -> list[str]:
    return sorted(m.name for m in pkgutil.iter_modules(__path__) if m.ispkg)


def load(name: str, **options) -> Task:
    """A built-in task by name, or any Task subclass as ``package.module:ClassName``."""
    if ":" in name:
        mod, _, cls = name.partition(":")
        try:
            return getattr(importlib.import_module(mod), cls)(**options)
        except (ImportError, AttributeError) as e:
            raise TaskError(f"cannot load task {name}: {e}") from None
    if name not in available():
        raise TaskError(f"unknown task '{name}'; available: {', '.join(available())}")
    module = importlib.import_module(f"{__name__}.{name}")
    return module.TASK_CLASS(**options)
