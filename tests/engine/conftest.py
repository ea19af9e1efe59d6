import os
import sys
from pathlib import Path

HERE = Path(__file__).parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(HERE))


def cli_env() -> dict:
    """Environment for running the policyforge CLI as a child process from a checkout."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "py"), str(HERE), env.get("PYTHONPATH", "")])
    env.pop("OPENAI_API_KEY", None)
    return env
