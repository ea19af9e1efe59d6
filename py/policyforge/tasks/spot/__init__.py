"""Deadline-aware spot-instance scheduling ("Can't Be Late"), in Python: the example task of
docs/adding-a-task.md. It touches no engine file."""
from .task import SpotTask as TASK_CLASS

__all__ = ["TASK_CLASS"]
