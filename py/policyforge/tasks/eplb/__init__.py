"""MoE expert placement (EPLB): generated rules inside a fixed C++ pipeline."""
from .task import EplbTask as TASK_CLASS

__all__ = ["TASK_CLASS"]
