"""The prompt a model gets is rendered from the grammar the checker enforces, so the two
cannot disagree: every field and call the prompt names is accepted by the real checker
(a candidate that uses all of them, built from the prompt's own lists, passes every stage),
nothing the prompt names is missing from the grammar, and no part of it is said twice."""
import re

import pytest

from policyforge import tasks
from policyforge.search.prompt import new_candidate_messages, system_message

OPTIONS = {"cache": {"trace": "zipf:n_req=20000,n_objs=2000"},
           "cc": {},
           "eplb": {"steps": "40", "window": "20", "layers": "2", "experts": "16", "replicas": "24",
                    "groups": "4", "nodes": "2", "gpus": "4"}}


@pytest.fixture(scope="module", params=sorted(OPTIONS))
def task(request, tmp_path_factory):
    t = tasks.load(request.param, **OPTIONS[request.param])
    t.prepare(tmp_path_factory.mktemp(request.param) / "shared")
    return t


def _listed_calls(prompt: str) -> list[tuple[str, int]]:
    """(name, arity) of every call in the prompt's "Allowed calls" section."""
    section = prompt.split("Allowed calls (no others):", 1)[1].split("\n\n", 1)[0]
    out = []
    for line in section.splitlines():
        line = line.strip()
        if line.startswith("math:"):
            names, rest = line[len("math:"):].split("(as in", 1)
            two = set(re.findall(r"\w+", rest.split("take two arguments")[0]))
            for n in (x.strip() for x in names.split(",")):
                out.append((n, 2 if n in two else 1))
            for n in re.findall(r"(std::\w+) on doubles", line) + re.findall(r"(std::\w+),", line.split("and ", 1)[-1]):
                out.append((n, 2 if n in ("std::min", "std::max") else 1))
            if "std::log etc" in line:
                out += [(f"std::{n}", a) for n, a in list(out) if not n.startswith(("std::", "pf_"))]
        elif m := re.match(r"([\w:]+)\(([^)]*)\)", line):
            out.append((m.group(1), len([a for a in m.group(2).split(",") if a.strip()])))
    return sorted(set(out))


def _listed_fields(prompt: str) -> set[tuple[str, str]]:
    """(struct, field) for every field row of the prompt."""
    out = set()
    for block in re.findall(r"Read-only fields of struct (\w+)[^\n]*:\n((?:    .*\n?)+)", prompt):
        struct, rows = block
        for row in rows.splitlines():
            m = re.match(r"\s+\S*?->(\w+)", row)
            if m:
                out.add((struct, m.group(1)))
    return out


def test_the_prompt_lists_exactly_the_grammar(task):
    prompt = system_message(task)
    g = task.grammar
    assert _listed_fields(prompt) == {(s, f) for s, fs in g.structs.items() for f in fs}
    assert _listed_calls(prompt) == sorted({(c.name, c.arity) for c in g.calls})
    for fn in g.functions:
        assert fn.signature in prompt and fn.doc and fn.doc in prompt
    for s, fs in g.structs.items():
        assert all(g.fields.get(f"{s}.{f}") for f in fs), "every readable field has a meaning in the prompt"
    # every `p->field` the prose mentions exists
    params = {p.name: p.struct for fn in g.functions for p in fn.params if p.struct}
    for name, field in re.findall(r"\b(\w+)->(\w+)", prompt):
        if name in params:
            assert field in g.structs[params[name]], f"the prompt mentions {name}->{field}"


def test_nothing_is_said_twice(task):
    msgs = new_candidate_messages(task, [])
    text = "\n".join(m["content"] for m in msgs)
    sentences = [s.strip() for s in re.split(r"(?<=[.:;])\s+|\n", text) if len(s.strip()) > 50]
    repeated = {s for s in sentences if sentences.count(s) > 1}
    assert not repeated


def _kitchen_sink(task) -> str:
    """One candidate that reads every field and calls every call the prompt lists, written
    only from the prompt's text: the checker must accept it."""
    prompt = system_message(task)
    g = task.grammar
    integer = not g.floating
    one = "1" if integer else "1.0"
    fields = _listed_fields(prompt)
    calls = _listed_calls(prompt)
    body = [f"    {'s64' if integer else 'double'} acc = {one};"]
    params = {p.struct: p.name for fn in g.functions for p in fn.params if p.struct}
    window_fields = []
    for struct, field in sorted(fields):
        if struct in params:
            body.append(f"    acc = acc + {params[struct]}->{field};")
        else:
            window_fields.append(field)
    for name, arity in calls:
        spec = g.call(name)
        if spec.returns:
            continue
        args = ", ".join([one] * arity)     # constants: exp(acc) would overflow, and the probe says so
        body.append(f"    acc = acc + {name}({args});")
    if window_fields:
        call = next(c for c in g.calls if c.returns)
        bound = next(iter(g.constants))
        hist = params[call.pointer_args[0][1]]
        body.append(f"    for (int k = 0; k < {bound} && k < {hist}->n; k++) {{")
        body.append(f"        const struct {call.returns} *w = {call.name}({hist}, k);")
        body += [f"        acc = acc + w->{f};" for f in window_fields]
        body.append("    }")
    body.append("    return acc;")
    out = []
    for i, fn in enumerate(g.functions):
        if i == 0:
            scalars = [p.name for p in fn.params if not p.struct]
            out.append(fn.signature + "\n{\n" + "\n".join(body[:1] + [f"    acc = acc + {n};" for n in scalars]
                                                       + body[1:]) + "\n}\n")
        else:
            first = fn.params[0]        # a scalar, or a struct pointer (cc's optional outputs)
            out.append(fn.signature + "\n{\n" + f"    return {first.name if not first.struct else one};\n}}\n")
    return "\n".join(out)


def test_everything_the_prompt_offers_passes_the_real_checker(task, tmp_path):
    source = _kitchen_sink(task)
    check = task.check(source, tmp_path)
    assert check.ok, f"{check.stage}: {check.feedback}\n{source}"


def test_a_field_the_prompt_does_not_offer_is_rejected_by_name(task, tmp_path):
    g = task.grammar
    fn = g.functions[0]
    ptr = next((p for p in fn.params if p.struct), None)
    if ptr is None:
        pytest.skip("this task's functions take no struct")
    ret = "s64" if not g.floating else "double"
    source = fn.signature + f"\n{{\n    {ret} x = {ptr.name}->no_such_field;\n    return x;\n}}\n"
    source += "".join(f"\n{f.signature}\n{{\n    return {f.params[0].name};\n}}\n" for f in g.functions[1:])
    check = task.check(source, tmp_path)
    assert not check.ok and "no_such_field" in check.feedback
