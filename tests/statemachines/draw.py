"""Draw statemachines/scale.asl.json as the Mermaid diagrams of docs/architecture.md.

    python3 tests/statemachines/draw.py            print the four diagrams
    python3 tests/statemachines/draw.py --write    replace them in docs/architecture.md

Each section is a breadth-first walk from its first state, numbering states as they are found
(Next and Choice targets, then the Default, then Catch targets); states of other sections are
drawn where they are reached but not followed. consistency.py checks that the document holds
exactly what this prints, so the drawings cannot drift from the definition.
"""
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEFINITION = ROOT / "statemachines" / "scale.asl.json"
DOCS = ROOT / "docs" / "architecture.md"

# The shared endings; the first three are where the other sections enter them.
SHARED = ["Failed before any change", "Release after compensation failure", "Lock left held: scaled",
          "Release after failure", "Fail: compensation incomplete",
          "Lock left held after compensation failure", "Fail", "Lock left held after failure"]


# Where each drawing starts (the shared endings start from the first three of SHARED).
SECTION_STARTS = ["Init", "Out: commit new pairs", "In: call quality"]


def section_of(name):
    if name in SHARED:
        return "shared"
    if name.startswith("Out: "):
        return "out"
    if name.startswith("In: "):
        return "in"
    return "start"


def shape(name, st):
    t = st["Type"]
    q = json.dumps(name)
    if t == "Task":
        return f"[{q}]"
    if t == "Choice":
        return f"{{{q}}}"
    if t == "Wait":
        return f"[/{q}/]"
    if t == "Map":
        return f"[/{q}\\]"
    if t == "Succeed":
        return f"([{q}])"
    if t == "Fail":
        return f"[[{q}]]"
    return f"({q})"


def rule_label(rule):
    if "And" in rule:
        return rule_label(rule["And"][-1])
    var = rule.get("Variable", "").split(".")[-1]
    for op, sym in (("BooleanEquals", "="), ("StringEquals", "="), ("NumericEquals", "="),
                    ("NumericGreaterThan", ">"), ("NumericLessThan", "<"),
                    ("NumericGreaterThanEquals", ">="), ("NumericLessThanEquals", "<=")):
        if op in rule:
            v = rule[op]
            v = json.dumps(v) if isinstance(v, bool) else v
            return f"{var} {sym} {v}"
    return None


def edges(st):
    out = []
    if st["Type"] == "Choice":
        out += [(c["Next"], rule_label(c), False) for c in st.get("Choices", [])]
        if "Default" in st:
            out.append((st["Default"], "otherwise", False))
    elif "Next" in st:
        out.append((st["Next"], None, False))
    out += [(c["Next"], "error", True) for c in st.get("Catch", [])]
    return out


def draw(states, starts, section):
    ids, order, queue = {}, [], []
    for start in starts:
        ids[start] = len(ids) + 1
        order.append(start)
        queue.append(start)
    out_edges = []
    while queue:
        name = queue.pop(0)
        if section_of(name) != section:
            continue
        for target, label, dashed in edges(states[name]):
            if target not in ids:
                ids[target] = len(ids) + 1
                order.append(target)
                queue.append(target)
            out_edges.append((ids[name], ids[target], label, dashed))
    lines = ["flowchart TD"]
    lines += [f"  s{ids[n]}{shape(n, states[n])}" for n in order]
    for a, b, label, dashed in sorted(out_edges, key=lambda e: e[0]):
        arrow = "-.->" if dashed else "-->"
        lines.append(f"  s{a} {arrow}|{json.dumps(label)}| s{b}" if label else f"  s{a} {arrow} s{b}")
    return "\n".join(lines) + "\n"


def diagrams(definition=DEFINITION):
    states = json.loads(Path(definition).read_text())["States"]
    return [draw(states, ["Init"], "start"), draw(states, ["Out: commit new pairs"], "out"),
            draw(states, ["In: call quality"], "in"), draw(states, SHARED[:3], "shared")]


def documented(text):
    return re.findall(r"```mermaid\n(.*?)```", text, re.S)


def write(text, new):
    parts = re.split(r"(```mermaid\n.*?```)", text, flags=re.S)
    i = 0
    for k, p in enumerate(parts):
        if p.startswith("```mermaid\n"):
            parts[k] = "```mermaid\n" + new[i] + "```"
            i += 1
    return "".join(parts)


def main(argv):
    new = diagrams()
    if "--write" in argv:
        text = DOCS.read_text()
        if len(documented(text)) != len(new):
            print(f"{DOCS} has {len(documented(text))} diagrams, expected {len(new)}", file=sys.stderr)
            return 1
        DOCS.write_text(write(text, new))
        return 0
    print("\n".join(new))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
