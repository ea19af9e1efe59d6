"""Shared by the test folders (tests/ is on pytest's pythonpath)."""
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def cli_env() -> dict:
    """Environment for running the policyforge CLI as a child process from a checkout."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "py"), str(ROOT / "tests" / "engine"),
                                         env.get("PYTHONPATH", "")])
    env.pop("OPENAI_API_KEY", None)
    return env
