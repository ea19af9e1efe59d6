"""Cache eviction: a priority() inside libCacheSim's priority-queue template."""
from .task import CacheTask as TASK_CLASS

__all__ = ["TASK_CLASS"]
