import pytest

from policyforge.tasks.cache import TASK_CLASS


@pytest.fixture(scope="session")
def cloudphysics(tmp_path_factory):
    """The cache task prepared on libCacheSim's cloudPhysicsIO sample at 1 %, 10 %, 30 %."""
    task = TASK_CLASS(trace="cloudPhysicsIO", cache_size="0.01,0.1,0.3")
    task.prepare(tmp_path_factory.mktemp("cp"))
    return task
