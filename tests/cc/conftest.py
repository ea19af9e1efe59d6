import pytest


@pytest.fixture(autouse=True, scope="session")
def _linkem():
    """The testbed is told where policyforge's build of linkem is (it never imports policyforge)."""
    from policyforge import testbed
    from policyforge.native import native_path
    testbed.use_linkem(native_path("bin", "linkem"))
