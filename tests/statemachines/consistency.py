#!/usr/bin/env python3
"""Static checks of the state machine definitions against the rest of the repository.

statelint checks that a definition is valid Amazon States Language; this checks what statelint
cannot know, for every statemachines/*.asl.json:

- it parses as JSON, and every ${name} placeholder sits inside a JSON string, is spelled as
  Terraform's templatefile() expects and is bound by the variables of the templatefile() call
  in terraform/modules/orchestrator/main.tf that renders the file; no bound variable is unused;
- every Lambda a Task names (${build_function_arn} -> handler "build" -> binary
  "pairscale-build") is a [[bin]] of crates/lambdas/Cargo.toml and a function of the Terraform
  module (local.functions), and the placeholder is bound to that very function;
- every ErrorEquals name is in the error catalogue (the "Pairscale.X" names of
  crates/core/src/error.rs), a States.* name or a Lambda service error; a Fail state's static
  Error is one of those too;
- every StartAt/Next/Default target exists in its scope, every state is reachable, and every
  path of the top-level machine ends in a Succeed or a Fail state (no End: true elsewhere, no
  loop without a way out);
- every Task has TimeoutSeconds, a Retry on Pairscale.Retryable with a backoff
  (IntervalSeconds, MaxAttempts, BackoffRate), and a Catch on States.ALL: a failure must reach a
  Fail state that says what happened, never end the run with a bare Lambda error. That includes
  the lock release of a failure path: its Catch leads to a Fail state naming the held lock;
- $.request (the start input) and $.lock (the fencing token) are written once, by the first
  state and by the lock acquisition, and no Catch or ResultPath replaces the whole state except
  the first state and a report that goes straight to Succeed;
- every state is drawn, by name, in the Mermaid diagrams of docs/architecture.md;
- where ADR 3 counts the states of scale.asl.json ("(120 states"), the count is the file's.

Usage: consistency.py [REPO_ROOT]   (stdlib only; exit status 1 on any finding)
"""
import json
import re
import sys
from pathlib import Path

MODULE = "terraform/modules/orchestrator"
DOCS = "docs/architecture.md"
COUNTED_IN = {"scale.asl.json": "docs/adr/0003-one-state-machine.md"}  # documents that count its states
LAMBDA_SERVICE_ERRORS = {
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
}
STATES_ERRORS = {
    "States.ALL", "States.DataLimitExceeded", "States.HeartbeatTimeout", "States.Timeout",
    "States.TaskFailed", "States.Permissions", "States.ResultPathMatchFailure",
    "States.ParameterPathFailure", "States.BranchFailed", "States.NoChoiceMatched",
    "States.IntrinsicFailure", "States.ExceedToleratedFailureThreshold", "States.ItemReaderFailed",
    "States.ResultWriterFailed", "States.QueryEvaluationError", "States.Runtime",
}
TERMINAL = {"Succeed", "Fail"}
PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
# templatefile() interpolates "${" and runs "%{" directives; "$${" and "%%{" are literal.
TEMPLATE_START = re.compile(r"(?<![$%])[$%]\{")


# --- What the rest of the repository says ----------------------------------------------------

def catalogue(root):
    text = (root / "crates/core/src/error.rs").read_text()
    return set(re.findall(r'"(Pairscale\.[A-Za-z]+)"', text))


def cargo_bins(root):
    text = (root / "crates/lambdas/Cargo.toml").read_text()
    bins = set()
    for block in re.split(r"(?m)^\s*\[", text):
        if block.startswith("[bin]]"):
            m = re.search(r'(?m)^\s*name\s*=\s*"([^"]+)"', block)
            if m:
                bins.add(m.group(1))
    return bins


def strip_hcl_comments(text):
    """Comments out, strings kept (a "#" or "//" inside a string is not a comment)."""
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append(text[i:j + 1])
            i = j + 1
        elif c == "#" or text.startswith("//", i):
            while i < n and text[i] != "\n":
                i += 1
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            i = n if end < 0 else end + 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def balanced(text, start):
    """The index just past the bracket that closes the one at text[start]."""
    pairs = {"(": ")", "{": "}", "[": "]"}
    stack, i = [pairs[text[start]]], start + 1
    while i < len(text):
        c = text[i]
        if c == '"':
            i += 1
            while i < len(text) and text[i] != '"':
                i += 2 if text[i] == "\\" else 1
        elif c in pairs:
            stack.append(pairs[c])
        elif c == stack[-1]:
            stack.pop()
            if not stack:
                return i + 1
        i += 1
    raise ValueError("unbalanced brackets")


def split_top(text, seps):
    """Split at separators that are outside strings and brackets."""
    parts, depth, cur, i = [], 0, [], 0
    while i < len(text):
        c = text[i]
        if c == '"':
            j = i + 1
            while j < len(text) and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            cur.append(text[i:j + 1])
            i = j + 1
            continue
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        if depth == 0 and c in seps:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(c)
        i += 1
    parts.append("".join(cur))
    return [p.strip() for p in parts if p.strip()]


def templatefile_calls(root):
    """[(path expression, {variable: value expression})] of every templatefile() in the module."""
    calls = []
    for tf in sorted((root / MODULE).glob("*.tf")):
        text = strip_hcl_comments(tf.read_text())
        for m in re.finditer(r"\btemplatefile\s*\(", text):
            end = balanced(text, m.end() - 1)
            args = split_top(text[m.end():end - 1], ",")
            if len(args) != 2 or not args[1].startswith("{"):
                calls.append((args[0] if args else "", None))
                continue
            body = args[1][1:-1]
            variables = {}
            for item in split_top(body, ",\n"):
                kv = re.match(r'^"?([A-Za-z_][A-Za-z0-9_-]*)"?\s*[=:]\s*(.+)$', item, re.S)
                if kv:
                    variables[kv.group(1)] = kv.group(2).strip()
            calls.append((args[0], variables))
    return calls


def module_locals(root):
    text = "\n".join(strip_hcl_comments(p.read_text()) for p in sorted((root / MODULE).glob("*.tf")))
    return text


def module_functions(root):
    """local.functions of the module: {key: binary}."""
    text = module_locals(root)
    m = re.search(r"(?m)^\s*functions\s*=\s*\{", text)
    if not m:
        return {}
    end = balanced(text, m.end() - 1)
    return dict(re.findall(r'([A-Za-z_][A-Za-z0-9_]*)\s*=\s*"([^"]+)"', text[m.end():end - 1]))


def rendering_call(root, calls, filename):
    """The templatefile() variables that render FILENAME, or None."""
    text = module_locals(root)
    for path_expr, variables in calls:
        if filename in path_expr:
            return variables
        # "${var.dir}/${local.state_machine_file}": follow one local.
        for ref in re.findall(r"local\.([A-Za-z_][A-Za-z0-9_]*)", path_expr):
            m = re.search(r"(?m)^\s*%s\s*=\s*(.+)$" % re.escape(ref), text)
            if m and filename in m.group(1):
                return variables
    return None


# --- The definition itself --------------------------------------------------------------------

def strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield k
            yield from strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from strings(v)


def scopes(states, prefix=""):
    """(label, States, StartAt-owner) for the machine and every Map/Parallel inside it."""
    yield prefix, states
    for name, st in states.items():
        subs = []
        if st.get("Type") == "Map":
            proc = st.get("ItemProcessor") or st.get("Iterator") or {}
            subs.append(proc)
        for b in st.get("Branches", []) if st.get("Type") == "Parallel" else []:
            subs.append(b)
        for i, sub in enumerate(subs):
            yield from scopes(sub.get("States", {}), f"{prefix}{name} > ")


def sub_machines(states):
    for st in states.values():
        if st.get("Type") == "Map":
            yield st.get("ItemProcessor") or st.get("Iterator") or {}
        if st.get("Type") == "Parallel":
            yield from st.get("Branches", [])


def successors(st):
    out = []
    if "Next" in st:
        out.append(st["Next"])
    if st.get("Type") == "Choice":
        out += [c.get("Next") for c in st.get("Choices", [])]
        if "Default" in st:
            out.append(st["Default"])
    out += [c.get("Next") for c in st.get("Catch", [])]
    return [t for t in out if t is not None]


def check_graph(rel, machine, top, problems):
    states = machine.get("States", {})
    start = machine.get("StartAt")
    where = "the machine" if top else "an inner machine"
    if start not in states:
        problems.append(f"{rel}: StartAt {start!r} of {where} is not a state")
        return
    for name, st in states.items():
        for t in successors(st):
            if t not in states:
                problems.append(f'{rel}: state "{name}": Next/Default/Catch target {t!r} does not exist')
        if st.get("Type") not in TERMINAL and st.get("Type") != "Choice" and "Next" not in st and not st.get("End"):
            problems.append(f'{rel}: state "{name}": has neither Next nor End')
        if top and st.get("End") and st.get("Type") not in TERMINAL:
            problems.append(f'{rel}: state "{name}": ends the run with End: true; every path must end '
                            "in a Succeed or Fail state")
    # Reachability from StartAt, and a way out from everywhere reachable.
    seen, todo = set(), [start]
    while todo:
        n = todo.pop()
        if n in seen or n not in states:
            continue
        seen.add(n)
        todo += successors(states[n])
    for name in states:
        if name not in seen:
            problems.append(f'{rel}: state "{name}": unreachable from StartAt')
    ends = {n for n, st in states.items()
            if st.get("Type") in TERMINAL or (not top and st.get("End"))}
    can_end, changed = set(ends), True
    while changed:
        changed = False
        for n, st in states.items():
            if n not in can_end and any(t in can_end for t in successors(st)):
                can_end.add(n)
                changed = True
    for name in sorted(seen - can_end):
        problems.append(f'{rel}: state "{name}": no path from it reaches a Succeed or Fail state (a loop without a way out?)')
    for sub in sub_machines(states):
        check_graph(rel, sub, False, problems)


def check_errors(rel, name, names, known, problems, what):
    for e in names:
        if e in known or e in STATES_ERRORS or e in LAMBDA_SERVICE_ERRORS:
            continue
        hint = " (not in crates/core/src/error.rs)" if e.startswith("Pairscale.") else ""
        problems.append(f'{rel}: state "{name}": {what} names unknown error {e!r}{hint}')


def check_state(rel, name, st, is_start, top, known, problems, lock_writers):
    kind = st.get("Type")
    for c in st.get("Retry", []):
        check_errors(rel, name, c.get("ErrorEquals", []), known, problems, "Retry")
    for c in st.get("Catch", []):
        check_errors(rel, name, c.get("ErrorEquals", []), known, problems, "Catch")
        if c.get("ResultPath") in ("$", "$.request", "$.lock"):
            problems.append(f'{rel}: state "{name}": Catch ResultPath {c.get("ResultPath")!r} would overwrite '
                            "the run's state; catch into a field such as $.error")
    if kind == "Fail" and "Error" in st:
        check_errors(rel, name, [st["Error"]], known, problems, "Fail")
    if kind == "Fail" and "Error" not in st and "ErrorPath" not in st:
        problems.append(f'{rel}: state "{name}": a Fail state needs an Error or ErrorPath')
    if kind == "Fail" and "Cause" not in st and "CausePath" not in st:
        problems.append(f'{rel}: state "{name}": a Fail state needs a Cause or CausePath a person can act on')

    rp = st.get("ResultPath", "$") if kind in ("Task", "Pass", "Map", "Parallel") else None
    if top and rp == "$" and kind in ("Task", "Map", "Parallel") and not is_start:
        problems.append(f'{rel}: state "{name}": ResultPath "$" replaces the whole state (and $.request, $.lock); '
                        "put the result in a field")
    if top and rp == "$.request" and not is_start:
        problems.append(f'{rel}: state "{name}": only the first state writes $.request')
    if top and rp == "$.lock":
        lock_writers.append(name)

    if kind != "Task":
        return
    if "TimeoutSeconds" not in st and "TimeoutSecondsPath" not in st:
        problems.append(f'{rel}: state "{name}": Task without TimeoutSeconds')
    retries = st.get("Retry", [])
    if not any("Pairscale.Retryable" in r.get("ErrorEquals", []) for r in retries):
        problems.append(f'{rel}: state "{name}": Task without a Retry on Pairscale.Retryable')
    for r in retries:
        missing = [f for f in ("IntervalSeconds", "MaxAttempts", "BackoffRate") if f not in r]
        if missing:
            problems.append(f'{rel}: state "{name}": Retry on {r.get("ErrorEquals")} has no {", ".join(missing)} (no backoff)')
    if not any("States.ALL" in c.get("ErrorEquals", []) for c in st.get("Catch", [])):
        problems.append(f'{rel}: state "{name}": Task without a Catch on States.ALL; a failure here would end '
                        "the run with no compensation and no lock release")


def check_definition(root, path, calls, known, bins, functions):
    rel = path.relative_to(root).as_posix()
    problems = []
    raw = path.read_text()
    try:
        machine = json.loads(raw)
    except json.JSONDecodeError as e:
        return [f"{rel}: not valid JSON (line {e.lineno}, column {e.colno}: {e.msg}); "
                "placeholders belong inside JSON strings"]

    # Placeholders: every template sequence in the raw text must be one inside a string.
    in_strings = [m for s in strings(machine) for m in TEMPLATE_START.finditer(s)]
    raw_count = len(TEMPLATE_START.findall(raw))
    if raw_count != len(in_strings):
        problems.append(f"{rel}: {raw_count - len(in_strings)} template sequence(s) outside JSON strings")
    used = set()
    for s in strings(machine):
        for m in TEMPLATE_START.finditer(s):
            ph = PLACEHOLDER.match(s, m.start())
            if not ph:
                problems.append(f"{rel}: {s[m.start():m.start() + 30]!r} is a templatefile() sequence but not a "
                                "${name} placeholder (use $$ or %% to write it literally)")
            else:
                used.add(ph.group(1))

    variables = rendering_call(root, calls, path.name)
    if variables is None:
        problems.append(f"{rel}: no templatefile() call in {MODULE} renders {path.name}")
        variables = {}
    else:
        for v in sorted(used - set(variables)):
            problems.append(f"{rel}: placeholder ${{{v}}} is not bound by the templatefile() call in {MODULE}")
        for v in sorted(set(variables) - used):
            problems.append(f"{rel}: templatefile() binds {v}, which the definition never uses")

    # Lambdas named by Tasks: one finding per handler, naming the states that invoke it.
    invokers = {}
    for scope, states in scopes(machine.get("States", {})):
        for name, st in states.items():
            if st.get("Type") != "Task":
                continue
            fn = str(st.get("Parameters", {}).get("FunctionName", ""))
            m = re.fullmatch(r"\$\{([a-z]+)_function_arn\}", fn)
            if not m:
                problems.append(f'{rel}: state "{scope}{name}": FunctionName {fn!r} is not a ${{<handler>_function_arn}} placeholder')
                continue
            invokers.setdefault(m.group(1), []).append(f'"{scope}{name}"')
    for key, names in sorted(invokers.items()):
        binary = f"pairscale-{key}"
        who = f"state {names[0]}" if len(names) == 1 else f"states {', '.join(names[:3])}" + (
            f" and {len(names) - 3} more" if len(names) > 3 else "")
        if binary not in bins:
            problems.append(f"{rel}: {who} invoke {binary}, which is not a [[bin]] of crates/lambdas/Cargo.toml")
        if functions.get(key) != binary:
            problems.append(f"{rel}: {who} invoke {binary}, which is not in local.functions of {MODULE}")
        bound = variables.get(f"{key}_function_arn", "")
        if bound and f'["{key}"]' not in bound:
            problems.append(f"{rel}: {key}_function_arn is bound to {bound}, not to the {key} function")

    check_graph(rel, machine, True, problems)
    lock_writers = []
    for scope, states in scopes(machine.get("States", {})):
        for name, st in states.items():
            is_start = scope == "" and name == machine.get("StartAt")
            check_state(rel, f"{scope}{name}", st, is_start, scope == "", known, problems, lock_writers)
            # Inside a Map or Parallel, "$" is the iteration's own state: replacing it is normal.
            if scope == "" and st.get("Type") == "Pass" and st.get("ResultPath", "$") == "$" and not is_start \
                    and ("Parameters" in st or "Result" in st):
                nxt = states.get(st.get("Next"), {})
                if nxt.get("Type") != "Succeed":
                    problems.append(f'{rel}: state "{scope}{name}": replaces the whole state but is not the '
                                    "report just before Succeed")
    if len(lock_writers) > 1:
        problems.append(f"{rel}: $.lock is written by {', '.join(lock_writers)}; only the acquisition may")

    # The drawings in docs/architecture.md must be the machine as it is (draw.py makes them).
    import draw  # noqa: E402 (beside this file)
    if all(s in machine.get("States", {}) for s in draw.SECTION_STARTS):
        if draw.documented(docs_text(root)) != draw.diagrams(path):
            problems.append(f"{rel}: the Mermaid diagrams in {DOCS} are not the definition's drawing: "
                            "run python3 tests/statemachines/draw.py --write")
    drawn = "\n".join(re.findall(r"```mermaid\n(.*?)```", docs_text(root), re.S))
    missing = [n for n in machine.get("States", {}) if f'"{n}"' not in drawn]
    if missing:
        problems.append(f"{rel}: {len(missing)} state(s) not drawn in the Mermaid diagrams of {DOCS}: "
                        + ", ".join(f'"{n}"' for n in missing[:5]) + (" ..." if len(missing) > 5 else ""))
    doc = COUNTED_IN.get(path.name)
    if doc and (root / doc).exists():
        count = len(machine.get("States", {}))
        for said in sorted(set(re.findall(r"\((\d+) states\b", (root / doc).read_text()))):
            if int(said) != count:
                problems.append(f"{doc} says {rel} has {said} states; it has {count}")
    return problems


def docs_text(root):
    path = root / DOCS
    return path.read_text() if path.exists() else ""


def check(root):
    root = Path(root)
    problems = []
    try:
        known = catalogue(root)
        bins = cargo_bins(root)
        functions = module_functions(root)
        calls = templatefile_calls(root)
    except (OSError, ValueError) as e:
        return [f"cannot read what the definitions are checked against: {e}"]
    if not known:
        problems.append("crates/core/src/error.rs: no \"Pairscale.X\" names found")
    defs = sorted((root / "statemachines").glob("*.asl.json"))
    if not defs:
        problems.append("statemachines/: no *.asl.json definitions")
    for path in defs:
        problems += check_definition(root, path, calls, known, bins, functions)
    return problems


def main(argv):
    root = Path(argv[1] if len(argv) > 1 else Path(__file__).resolve().parents[2])
    problems = check(root)
    for p in problems:
        print(f"FAIL {p}")
    n = len(list((root / "statemachines").glob("*.asl.json")))
    print(f"{n} definition(s) checked, {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
