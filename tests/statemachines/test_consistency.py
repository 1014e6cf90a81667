#!/usr/bin/env python3
"""consistency.py must fail on what it claims to catch: each test breaks a small, valid
repository in one way and expects exactly that finding. Run: python3 test_consistency.py"""
import copy
import json
import sys
import tempfile
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import consistency  # noqa: E402

ERROR_RS = '''
pub const fn as_str(self) -> &'static str {
    match self {
        ErrorName::LockHeld => "Pairscale.LockHeld",
        ErrorName::Retryable => "Pairscale.Retryable",
        ErrorName::Internal => "Pairscale.Internal",
    }
}
'''

CARGO = '''
[package]
name = "pairscale-lambdas"

[[bin]]
name = "pairscale-lock"
path = "src/bin/lock.rs"

[[bin]]
name = "pairscale-state"
path = "src/bin/state.rs"

[[example]]
name = "pairscale-drain"
'''

LOCALS = '''
locals {
  state_machine_file = "scale.asl.json" # the definition
  functions = {
    lock  = "pairscale-lock"
    state = "pairscale-state"
  }
}
'''

MAIN = '''
resource "aws_sfn_state_machine" "this" {
  # templatefile("${var.dir}/other.asl.json", {}) in a comment is not a call
  definition = templatefile("${var.dir}/${local.state_machine_file}", {
    lock_function_arn = aws_lambda_function.this["lock"].arn,
    "state_function_arn" = aws_lambda_function.this["state"].arn
  })
}
'''


def task(fn, nxt, **extra):
    st = {
        "Type": "Task",
        "Resource": "arn:aws:states:::lambda:invoke",
        "Parameters": {"FunctionName": "${%s_function_arn}" % fn, "Payload": {"action": "x"}},
        "TimeoutSeconds": 30,
        "ResultPath": "$.out",
        "Retry": [{"ErrorEquals": ["Pairscale.Retryable", "Lambda.ServiceException"],
                   "IntervalSeconds": 2, "MaxAttempts": 3, "BackoffRate": 2.0}],
        "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Failed"}],
        "Next": nxt,
    }
    st.update(extra)
    return st


GOOD = {
    "StartAt": "Init",
    "States": {
        "Init": {"Type": "Pass", "Parameters": {"request.$": "$"}, "Next": "Lock"},
        "Lock": task("lock", "Loop?", ResultPath="$.lock"),
        "Loop?": {"Type": "Choice", "Choices": [{"Variable": "$.out.again", "BooleanEquals": True, "Next": "Map"}],
                  "Default": "Work"},
        "Map": {"Type": "Map", "ItemsPath": "$.request.items", "ResultPath": "$.items",
                "ItemProcessor": {"StartAt": "One", "States": {"One": {"Type": "Pass", "End": True}}},
                "Next": "Lock"},
        "Work": task("state", "Report"),
        "Report": {"Type": "Pass", "Parameters": {"done": True}, "Next": "Done"},
        "Done": {"Type": "Succeed"},
        "Failed": {"Type": "Fail", "Error": "Pairscale.Internal", "Cause": "it broke"},
    },
}


class ConsistencyFails(unittest.TestCase):
    def repo(self, definition, main=MAIN, raw=None, drawn=None, adr=None):
        root = Path(tempfile.mkdtemp(prefix="ps-consistency-"))
        self.addCleanup(lambda: __import__("shutil").rmtree(root, ignore_errors=True))
        for rel, text in {
            "crates/core/src/error.rs": ERROR_RS,
            "crates/lambdas/Cargo.toml": CARGO,
            "terraform/modules/orchestrator/locals.tf": LOCALS,
            "terraform/modules/orchestrator/main.tf": main,
            "statemachines/scale.asl.json": raw if raw is not None else json.dumps(definition, indent=2),
            "docs/architecture.md": "```mermaid\nflowchart TD\n" + "\n".join(
                f'  s{i}["{n}"]' for i, n in enumerate(drawn if drawn is not None else GOOD["States"])) + "\n```\n",
            **({"docs/adr/0003-one-state-machine.md": adr} if adr is not None else {}),
        }.items():
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_text(text)
        return consistency.check(root)

    def broken(self, change):
        d = copy.deepcopy(GOOD)
        change(d["States"])
        return self.repo(d)

    def assertFinding(self, problems, *needles):
        self.assertTrue(any(all(n in p for n in needles) for p in problems),
                        f"no finding with {needles} in:\n" + "\n".join(problems))

    def test_the_valid_definition_passes(self):
        self.assertEqual(self.repo(GOOD), [])

    def test_a_dangling_next_is_found(self):
        p = self.broken(lambda s: s["Work"].update(Next="Reportt"))
        self.assertFinding(p, '"Work"', "'Reportt' does not exist")

    def test_a_dangling_choice_default_is_found(self):
        p = self.broken(lambda s: s["Loop?"].update(Default="Nowhere"))
        self.assertFinding(p, '"Loop?"', "'Nowhere' does not exist")

    def test_an_unknown_error_name_is_found(self):
        p = self.broken(lambda s: s["Work"]["Retry"][0]["ErrorEquals"].append("Pairscale.Throttled"))
        self.assertFinding(p, '"Work"', "unknown error 'Pairscale.Throttled'", "error.rs")

    def test_an_unknown_error_in_a_catch_and_a_fail_is_found(self):
        def change(s):
            s["Work"]["Catch"].insert(0, {"ErrorEquals": ["Lambda.Unknown"], "Next": "Failed", "ResultPath": "$.e"})
            s["Failed"]["Error"] = "Pairscale.Oops"
        p = self.broken(change)
        self.assertFinding(p, '"Work"', "Catch names unknown error 'Lambda.Unknown'")
        self.assertFinding(p, '"Failed"', "Fail names unknown error 'Pairscale.Oops'")

    def test_an_unbound_placeholder_is_found(self):
        p = self.broken(lambda s: s["Work"]["Parameters"].update(Comment="${drain_function_arn}"))
        self.assertFinding(p, "${drain_function_arn} is not bound")

    def test_an_unused_bound_variable_is_found(self):
        p = self.broken(lambda s: s["Work"]["Parameters"].update(FunctionName="${lock_function_arn}"))
        self.assertFinding(p, "binds state_function_arn, which the definition never uses")

    def test_a_placeholder_outside_a_string_is_found(self):
        raw = json.dumps(GOOD).replace('"TimeoutSeconds": 30', '"TimeoutSeconds": ${timeout}', 1)
        self.assertFinding(self.repo(None, raw=raw), "not valid JSON")

    def test_a_malformed_template_sequence_is_found(self):
        p = self.broken(lambda s: s["Failed"].update(Cause="costs %{ if x }"))
        self.assertFinding(p, "not a ${name} placeholder")

    def test_a_lambda_without_a_binary_is_found(self):
        p = self.repo(None, raw=json.dumps(dict(GOOD, States=dict(GOOD["States"], Work=task("drain", "Report")))),
                      main=MAIN.replace('"state_function_arn" = aws_lambda_function.this["state"].arn',
                                        'drain_function_arn = aws_lambda_function.this["drain"].arn'))
        self.assertFinding(p, '"Work"', "pairscale-drain, which is not a [[bin]]")
        self.assertFinding(p, '"Work"', "pairscale-drain, which is not in local.functions")

    def test_a_placeholder_bound_to_another_function_is_found(self):
        p = self.repo(GOOD, main=MAIN.replace('this["state"]', 'this["lock"]'))
        self.assertFinding(p, 'state_function_arn is bound to aws_lambda_function.this["lock"].arn')

    def test_a_definition_nothing_renders_is_found(self):
        p = self.repo(GOOD, main=MAIN.replace("${local.state_machine_file}", "other.asl.json"))
        self.assertFinding(p, "no templatefile() call", "renders scale.asl.json")

    def test_a_task_without_timeout_retry_or_catch_is_found(self):
        def change(s):
            del s["Work"]["TimeoutSeconds"]
            s["Work"]["Retry"] = [{"ErrorEquals": ["Lambda.ServiceException"], "MaxAttempts": 2}]
            s["Work"]["Catch"] = []
        p = self.broken(change)
        self.assertFinding(p, '"Work"', "without TimeoutSeconds")
        self.assertFinding(p, '"Work"', "without a Retry on Pairscale.Retryable")
        self.assertFinding(p, '"Work"', "no IntervalSeconds, BackoffRate")
        self.assertFinding(p, '"Work"', "without a Catch on States.ALL")

    def test_a_run_ending_outside_succeed_or_fail_is_found(self):
        def change(s):
            del s["Work"]["Next"]
            s["Work"]["End"] = True
        p = self.broken(change)
        self.assertFinding(p, '"Work"', "End: true")
        self.assertFinding(p, '"Report"', "unreachable")

    def test_a_loop_without_a_way_out_is_found(self):
        def change(s):
            s["Spin"] = {"Type": "Wait", "Seconds": 5, "Next": "Spin"}
            s["Loop?"]["Default"] = "Spin"
        p = self.broken(change)
        self.assertFinding(p, '"Spin"', "no path from it reaches a Succeed or Fail")

    def test_overwriting_the_request_or_the_lock_is_found(self):
        def change(s):
            s["Work"]["ResultPath"] = "$.request"
            s["Work"]["Catch"][0]["ResultPath"] = "$.lock"
            s["Map"]["ResultPath"] = "$"
        p = self.broken(change)
        self.assertFinding(p, '"Work"', "only the first state writes $.request")
        self.assertFinding(p, '"Work"', "Catch ResultPath '$.lock'")
        self.assertFinding(p, '"Map"', 'ResultPath "$" replaces the whole state')

    def test_a_state_missing_from_the_drawings_is_found(self):
        p = self.repo(GOOD, drawn=[n for n in GOOD["States"] if n != "Work"])
        self.assertFinding(p, "1 state(s) not drawn", '"Work"', "docs/architecture.md")

    def test_a_state_count_the_adr_gets_wrong_is_found(self):
        n = len(GOOD["States"])
        self.assertEqual(self.repo(GOOD, adr=f"The definition is larger ({n} states)."), [])
        p = self.repo(GOOD, adr=f"The definition is larger ({n + 4} states).")
        self.assertFinding(p, "docs/adr/0003-one-state-machine.md", f"has {n + 4} states; it has {n}")


if __name__ == "__main__":
    unittest.main(verbosity=1)
