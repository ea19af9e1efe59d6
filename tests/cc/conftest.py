import pytest


@pytest.fixture(autouse=True, scope="session")
def _linkem():
    """The testbed is told where policyforge's build of linkem is (it never imports policyforge)."""
    import harness
    from policyforge.native import native_path
    harness.use_linkem(native_path("bin", "linkem"))
