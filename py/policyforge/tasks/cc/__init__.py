"""TCP congestion control: an integer policy in eBPF struct_ops and kernel-module templates."""
from .task import CCTask as TASK_CLASS

__all__ = ["TASK_CLASS"]
