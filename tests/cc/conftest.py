import pytest


@pytest.fixture(autouse=True, scope="session")
def _linkem():
    """The testbed is told where policyforge's builds of linkem and the per-ACK tracer are (it never
    imports policyforge)."""
    from policyforge import testbed
    from policyforge.native import native_path
    testbed.use_linkem(native_path("bin", "linkem"))
    testbed.use_tcptrace(native_path("bin", "pf-tcptrace"), native_path("share", "pf_tcptrace.bpf.c"))
