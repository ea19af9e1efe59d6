"""Runs a candidate decide() over availability traces, inside policyforge's sandbox, and
prints its decisions as one JSON line. Nothing here is trusted: policyforge replays the
decisions with its own simulator (sim.replay) to score them.

    python3 -I -S runner.py POLICY.py CASES.json

The candidate's code was checked first (only arithmetic on decide()'s arguments and a few
named helpers), and runs with no builtins but those helpers: it cannot reach the traces.
"""
import json
import math
import sys

sys.path.insert(0, sys.argv[0].rsplit("/", 1)[0])
import sim  # noqa: E402

HELPERS = {"pf_div": lambda a, b: a / b if b else 0.0, "pf_min": min, "pf_max": max,
           "pf_log": lambda x: math.log1p(abs(x)), "min": min, "max": max, "abs": abs}


def main() -> int:
    source = open(sys.argv[1]).read()
    cases = json.load(open(sys.argv[2]))
    namespace = {"__builtins__": {}, **HELPERS}
    exec(compile(source, "policy.py", "exec"), namespace)
    decide = namespace["decide"]
    out = []
    for c in cases["traces"]:
        try:
            out.append(sim.run(decide, c, cases["work"], cases["deadline"], cases["overhead"]))
        except (ArithmeticError, ValueError, TypeError, NameError) as e:   # the policy's own error: name it
            print(json.dumps({"error": f"decide() raised {type(e).__name__}: {e}"}))
            return 0
    print(json.dumps({"decisions": out}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
