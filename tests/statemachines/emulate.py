#!/usr/bin/env python3
"""Runs statemachines/scale.asl.json in the local emulator's Step Functions interpreter (moto's
port of LocalStack's), with the four Lambdas replaced by fakes that follow docs/handlers.md, and
checks the path each scenario takes: the calls made, in order, and how the run ends.

What this proves: every JSONPath, intrinsic function, ResultSelector, Map and Choice in the
definition evaluates against payloads of the documented shapes, and every failure reaches the
compensation and the Fail state it is meant to, and every build the run starts keeps its own
record in $.builds to the end. What it does not: the handlers themselves
(their own tests do that) or the IAM and Terraform wiring (tests/checks/60-terraform.sh).

Usage: emulate.py DEFINITION [SCENARIO...]   (needs the moto venv: tests/requirements/moto.txt)
"""
import copy
import json
import os
import sys
import time

os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.pop("AWS_ENDPOINT_URL", None)  # in-process emulator, not the server

import logging  # noqa: E402

import boto3  # noqa: E402
from moto import mock_aws  # noqa: E402
from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl  # noqa: E402
from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils  # noqa: E402
from moto.stepfunctions.parser.asl.component.state.wait.wait_function import wait_function  # noqa: E402

ACCOUNT = "123456789012"
FUNCTIONS = ("lock", "state", "drain", "build")


class _NoSleep:
    """Retry back-off and Wait states cost no time here: the decisions they lead to are tested."""

    @staticmethod
    def sleep(_seconds):
        return None

    def __getattr__(self, name):
        return getattr(time, name)


retrier_decl.time = _NoSleep()
# The interpreter logs every failed run as an exception; the scenarios judge the result instead.
logging.getLogger("moto").setLevel(logging.CRITICAL)
wait_function.WaitFunction._wait_interval = lambda self, env, wait_seconds: None


# The fleet's Kamailio HA pair: quiesce and resume must carry the list the run read.
KAMAILIOS = ["http://10.0.32.10:5071/RPC", "http://10.0.33.10:5071/RPC"]


def node(pid):
    n = int(pid.split("-")[1])
    return {"pair_id": pid, "esl_endpoint": f"10.0.1.{n}:8021", "sip_uri": f"sip:10.0.1.{n}:5060",
            "set_id": 1, "protected": False, "created_at": 1794000000000 + n}


CANARY = {"enabled": True, "destination": "pairscale-canary", "sip_profile": "pairscale", "seconds": 3,
          "min_mos": 3.5, "quality_sample": 3}


class HandlerError(Exception):
    def __init__(self, name, message):
        super().__init__(message)
        self.name, self.message = name, message


class World:
    """The fleet as the fakes see it, and every call made, in order."""

    def __init__(self, pairs=2, plan=None, faults=None, drain_decisions=("done",), builds=None,
                 valid=True, enough=True, race_spares=1, unreachable_force=False, quality_mos=4.4,
                 open_run=False, open_scale_out=False, open_removal=False, refill=0):
        self.pairs = [f"pair-{i:04d}" for i in range(1, pairs + 1)]
        self.plan = plan
        self.refill = refill  # warm pairs a scale-out's plan adds to the pool
        self.faults = dict(faults or {})      # "fn.action" or "fn.action#n" -> error name
        self.decisions = list(drain_decisions)
        self.builds = dict(builds or {})      # "terraform#1", "ansible:scale_in#1"... -> status sequence
        self.build_nth = {}
        self.valid = valid
        self.enough = enough
        self.race_spares = race_spares
        self.calls = []
        self.unreachable_force = unreachable_force
        self.quality_mos = quality_mos
        self.open_run = open_run  # an earlier run left its journal unfinished
        self.open_removal = open_removal  # an earlier scale-in stopped while removing pair-0003
        # ... a scale-out that ran its Terraform build: its builds to stop, its pairs to undo
        self.open_scale_out = open_scale_out
        self.counts = {}
        self.next_seq = pairs
        self.build_seq = 0
        self.build_kind = {}  # build id -> "terraform#1", "ansible:scale_in#1"...
        self.build_polls = {}
        self.build_step = {}  # build id -> the step that started it

    def fault(self, key):
        n = self.counts[key] = self.counts.get(key, 0) + 1
        return self.faults.get(f"{key}#{n}") or self.faults.get(key)

    def handle(self, fn, p):
        act = p.get("action")
        label = f"{fn}.{act}"
        if fn == "build" and act == "start":
            label += ":" + p["kind"] + (":" + p["playbook"] if "playbook" in p else "")
        self.calls.append(label)
        err = self.fault(f"{fn}.{act}")
        if label != f"{fn}.{act}":
            err = self.fault(label) or err
        if err:
            raise HandlerError(err, f"fake {label} failed with {err}")
        return getattr(self, f"{fn}_{act}")(p)

    # lock
    def lock_acquire(self, p):
        assert p["owner"].startswith("arn:aws:states:"), p
        assert "request" in p and p["fleet"] == p["request"]["fleet"], p
        return {"fleet": p["fleet"], "owner": p["owner"], "token": 7, "acquired_at": 1795000000000,
                "expires_at": 1795000900000, "reacquired": False}

    def lock_break_stale(self, p):
        assert p["breaker"].startswith("arn:aws:states:"), p
        self.open_run = True  # the run whose lock was broken never finished
        return {"broken": {"broken_by": p["breaker"], "broken_at": 1795000100000,
                           "previous_holder": "arn:aws:states:us-east-1:123456789012:execution:m:stopped",
                           "previous_token": 6, "reason": p["reason"]},
                "stale_because": "holder execution is ABORTED"}

    def lock_heartbeat(self, p):
        return {"fleet": p["fleet"], "owner": p["owner"], "token": 7, "acquired_at": 1795000000000,
                "expires_at": 1795000990000, "reacquired": True}

    def lock_release(self, p):
        assert p.get("finished", True) in (True, False), p
        self.calls[-1] += "" if p.get("finished", True) else " (unfinished)"
        return {"fleet": p["fleet"], "owner": p["owner"], "outcome": "released"}

    # state
    def state_recover_open(self, p):
        self._fenced(p)
        pace = {"build_poll_seconds": 15, "build_timeout_seconds": 3600, "build_retries": 2,
                "build_retry_seconds": 30}
        nothing = {"stop_builds": [], "compensate_pairs": [], "hangup_nodes": [], "finish_after": [], **pace}
        stale = "arn:aws:states:us-east-1:123456789012:execution:m:stopped"
        if self.open_scale_out:
            return {"fleet": p["fleet"], "runs": [{"stale_run": stale, "action": "rolled_back",
                                                  "pairs_restored": [], "pairs_deleted": ["pair-0003"],
                                                  "pair_count_restored": None, "resume_nodes": [],
                                                  "kamailio_rpc_urls": KAMAILIOS, "builds": ["tf-old:1"],
                                                  "compensate": ["pair-0003"]}],
                    "resume_nodes": [], "kamailio_rpc_urls": KAMAILIOS, "stop_builds": ["tf-old:1"],
                    "compensate_pairs": ["pair-0003"], "hangup_nodes": [], "finish_after": [stale], **pace}
        if self.open_removal:
            return {"fleet": p["fleet"], "runs": [{"stale_run": stale, "action": "finish_removal",
                                                  "pairs_restored": ["pair-0002"], "pairs_deleted": [],
                                                  "pair_count_restored": None, "resume_nodes": [node("pair-0002")],
                                                  "kamailio_rpc_urls": KAMAILIOS, "builds": [],
                                                  "compensate": ["pair-0003"], "hangup_nodes": [node("pair-0003")]}],
                    "resume_nodes": [node("pair-0002")], "kamailio_rpc_urls": KAMAILIOS, "stop_builds": [],
                    "compensate_pairs": ["pair-0003"], "hangup_nodes": [node("pair-0003")],
                    "finish_after": [stale], **pace}
        if not self.open_run:
            return {"fleet": p["fleet"], "runs": [], "resume_nodes": [], "kamailio_rpc_urls": KAMAILIOS, **nothing}
        return {"fleet": p["fleet"], "runs": [{"stale_run": stale, "action": "rolled_back",
                                              "pairs_restored": ["pair-0001"], "pairs_deleted": [],
                                              "pair_count_restored": None,
                                              "resume_nodes": [node("pair-0001")], "kamailio_rpc_urls": KAMAILIOS,
                                              "builds": [], "compensate": []}],
                "resume_nodes": [node("pair-0001")], "kamailio_rpc_urls": KAMAILIOS, **nothing}

    def state_finish_runs(self, p):
        self._fenced(p)
        assert p["runs"] and all(r.startswith("arn:aws:states:") for r in p["runs"]), p
        return {"fleet": p["fleet"], "runs": p["runs"]}

    def state_validate(self, p):
        return {"fleet": p["fleet"], "valid": self.valid, "summary": "ok" if self.valid else "pair-0002: freeswitch_missing"}

    def state_plan(self, p):
        req = p["request"]
        n = len(self.pairs)
        dry = bool(req.get("dry_run"))
        if self.plan is not None:
            plan = self.plan
        elif "target_pair_count" in req:
            t = req["target_pair_count"]
            plan = ({"action": "scale_out", "from": n, "to": t, "add": t - n, "from_pool": 0,
                     "refill": self.refill} if t > n else
                    {"action": "scale_in", "from": n, "to": t, "remove": n - t, "race_spares": self.race_spares,
                     "eligible": self.pairs} if t < n else {"action": "no_op", "reason": "at_target", "detail": "already there"})
        else:
            d = req["delta"]
            plan = ({"action": "scale_out", "from": n, "to": n + d, "add": d, "from_pool": 0,
                     "refill": self.refill} if d > 0 else
                    {"action": "scale_in", "from": n, "to": n + d, "remove": -d, "race_spares": self.race_spares,
                     "eligible": self.pairs})
        config = {"min_pairs": 0, "max_pairs": 20, "build_poll_seconds": 15, "build_timeout_seconds": 3600,
                  "build_retries": 2, "build_retry_seconds": 30,
                  "drain": {"deadline_seconds": 1800, "policy": "wait", "hard_max_seconds": 7200,
                            "hupall_cause": "MANAGER_REQUEST", "check_interval_seconds": 15},
                  "kamailio_rpc_urls": KAMAILIOS, "canary": CANARY, "pair_capacity_channels": 120}
        return {"fleet": req["fleet"], "request": req,
                "outcome": {"plan": plan, "dry_run": dry, "desired": n, "active": n, "clamps": []},
                "config": config, "nodes": [node(x) for x in self.pairs]}

    def _fenced(self, p):
        assert p["owner"].startswith("arn:aws:states:") and p["token"] == 7, p

    def state_commit(self, p):
        self._fenced(p)
        ch = p["changes"]
        self.calls[-1] += ":" + ",".join(sorted(ch))
        new, warm = [], []
        for field, ids in (("new_pairs", new), ("warm_pairs", warm)):
            for _ in range(ch.get(field, 0)):
                self.next_seq += 1
                ids.append(f"pair-{self.next_seq:04d}")
        for u in ch.get("updates", []):
            assert set(u) == {"pair_id", "status"}, u
            self.calls[-1] += f" {u['pair_id']}={u['status']}"
        for r in ch.get("removes", []):
            self.calls[-1] += f" -{r}"
        return {"run": p["owner"], "pair_count_before": None, "pair_count": ch.get("pair_count"),
                "new_pairs": new, "warm_pairs": warm, "pairs": [], "removed": ch.get("removes", [])}

    def state_rollback(self, p):
        self._fenced(p)
        return {"run": p["owner"], "rolled_back": True, "pair_count_restored": len(self.pairs),
                "pairs_restored": [], "pairs_deleted": []}

    def state_rollback_keeping_removal(self, p):
        self._fenced(p)
        return {"run": p["owner"], "rolled_back": False, "pair_count_restored": None,
                "pairs_restored": ["pair-0002"], "pairs_deleted": [], "removing": ["pair-0003"]}

    def state_record_quality(self, p):
        self._fenced(p)
        assert p["reading"]["mos"] == self.quality_mos, p
        return {"recorded": True}

    def state_discover(self, p):
        self._fenced(p)
        return {"fleet": p["fleet"], "nodes": [node(x) for x in p["pair_ids"]],
                "pairs": [{"id": x, "status": "provisioning"} for x in p["pair_ids"]]}

    # build
    def build_start(self, p):
        self._fenced(p)
        assert p["step"] and p["step"].replace("_", "").isalnum() and p["step"].islower(), p
        key = p["idempotency_key"]
        assert isinstance(key, str) and 0 < len(key) <= 64, key
        if p["kind"] == "ansible":
            assert p["pair_ids"], p
        self.build_seq += 1
        bid = f"{p['kind']}:{self.build_seq}"
        kind = p["kind"] + (":" + p["playbook"] if "playbook" in p else "")
        nth = self.build_nth[kind] = self.build_nth.get(kind, 0) + 1
        self.build_kind[bid] = f"{kind}#{nth}"
        self.build_step[bid] = p["step"]
        # A retry names its attempt and the first attempt's start, and only a retry does.
        attempt = p.get("attempt", 0)
        assert p["kind"] == "terraform" or attempt == 0, p
        assert (attempt == 0) == ("since" not in p), p
        assert "since" not in p or p["since"] == 1795000100000, p
        return {"build_id": bid, "project": f"ps-{p['kind']}", "kind": p["kind"], "started_at": 1795000100000,
                "attempt": attempt, "since": p.get("since", 1795000100000)}

    def build_status(self, p):
        assert isinstance(p["started_at"], int) and p["timeout_seconds"] == 3600, p
        kind = self.build_kind[p["build_id"]]
        # Only Terraform builds are retried; their status call carries the policy.
        retry = p.get("retry")
        assert (retry is not None) == kind.startswith("terraform#"), p
        assert retry is None or (retry["retries"], retry["retry_seconds"], retry["poll_seconds"]) == (2, 30, 15), p
        seq = self.builds.get(kind, ["IN_PROGRESS", "SUCCEEDED"])
        i = self.build_polls[p["build_id"]] = self.build_polls.get(p["build_id"], -1) + 1
        status = seq[min(i, len(seq) - 1)]
        transient = status == "TRANSIENT"
        status = "FAILED" if transient else status
        done = status != "IN_PROGRESS" and status != "OVERDUE"
        retry_in = backoff = None
        if transient and retry and retry["attempt"] < retry["retries"]:
            retry_in = retry["retry_seconds"] * 2 ** retry["attempt"]
            rounds = -(-retry_in // retry["poll_seconds"])
            backoff = {"rounds": rounds, "seconds": -(-retry_in // rounds)}
        cause = ("" if status != "FAILED" else
                 "Error: creating EC2 Instance: InsufficientInstanceCapacity" if transient else
                 "Error: creating EC2 Instance: UnauthorizedOperation")
        return {"build_id": p["build_id"], "status": "IN_PROGRESS" if status == "OVERDUE" else status,
                "done": done, "succeeded": status == "SUCCEEDED", "overdue": status == "OVERDUE",
                "cause": cause, "retry_in_seconds": retry_in, "backoff": backoff}

    def build_stop(self, p):
        if "build_ids" in p:
            assert p["build_ids"] and set(p) == {"action", "build_ids"}, p
            self.calls[-1] += " " + ",".join(p["build_ids"])
            return {"builds": [{"build_id": b, "status": "STOPPED", "stopped": True} for b in p["build_ids"]]}
        assert set(p) == {"action", "fleet", "run", "step"} and p["run"].startswith("arn:aws:states:"), p
        self.calls[-1] += " " + p["step"]
        ids = [b for b, k in self.build_kind.items() if self.build_step.get(b) == p["step"]]
        return {"builds": [{"build_id": b, "status": "STOPPED", "stopped": True} for b in ids]}

    # drain
    def _nodes(self, p):
        assert p["nodes"] and all(set(n) == set(node("pair-0001")) for n in p["nodes"]), p
        self.calls[-1] += " " + ",".join(n["pair_id"] for n in p["nodes"])
        return p["nodes"]

    def drain_select(self, p):
        assert p["pair_capacity_channels"] == 120, p
        nodes = p["nodes"]
        k = p["remove"] + p["race_spares"]
        chosen = list(reversed(nodes))[:k]
        return {"remove": p["remove"], "race_spares": p["race_spares"], "enough": self.enough,
                "nodes": chosen if self.enough else chosen[:0], "candidates": [], "passed_over": [],
                "protected": [], "unreachable": []}

    def drain_quiesce(self, p):
        assert p["kamailio_rpc_urls"] == KAMAILIOS, p
        return {"nodes": [{"pair_id": n["pair_id"], "disabled": True, "paused": True, "already_paused": False}
                          for n in self._nodes(p)], "started_at": 1795000200000}

    def drain_check(self, p):
        nodes = self._nodes(p)
        assert p["drain"]["policy"] and p["started_at"] == 1795000200000 and p["remove"] >= 1, p
        assert isinstance(p["chosen"], list) and len(p["chosen"]) <= p["remove"], p
        if p["chosen"]:
            self.calls[-1] += " chosen=" + ",".join(p["chosen"])
        decision = self.decisions.pop(0) if len(self.decisions) > 1 else self.decisions[0]
        self.calls[-1] += f" -> {decision}"
        winners = nodes[: p["remove"]] if decision == "done" else []
        losers = nodes[p["remove"]:] if decision == "done" else []
        return {"nodes": [], "total_channels": 0 if decision == "done" else 3, "all_drained": False,
                "drained": [], "unreachable": [], "repaused": [], "remove": p["remove"],
                "first_k_drained": decision == "done", "race_won": decision == "done",
                "winners": [n["pair_id"] for n in winners], "winner_nodes": winners, "loser_nodes": losers,
                "force_nodes": [] if decision != "force" or self.unreachable_force else nodes[: p["remove"]],
                "force_chosen": ([] if self.unreachable_force else
                                 p["chosen"] or [n["pair_id"] for n in nodes[: p["remove"]]])
                                if decision == "force" else [],
                "spare_nodes": ([] if decision != "force" else
                                nodes if self.unreachable_force else nodes[p["remove"]:]),
                "decision": decision}

    def drain_force(self, p):
        assert p.get("hupall_cause", "MANAGER_REQUEST") == "MANAGER_REQUEST", p
        self._nodes(p)
        return {"cause": "MANAGER_REQUEST", "cut": 3, "complete": True, "unreachable": [], "nodes": []}

    def drain_resume(self, p):
        assert p["kamailio_rpc_urls"] == KAMAILIOS, p
        return {"nodes": [{"pair_id": n["pair_id"], "enabled": True, "was_paused": True} for n in self._nodes(p)]}

    def drain_health(self, p):
        return {"ready": True, "nodes": self._nodes(p)}

    def drain_canary(self, p):
        assert p["canary"] == CANARY, p
        return {"skipped": False, "nodes": [{"pair_id": n["pair_id"], "answered": True, "mos": 4.5,
                                             "hangup_cause": "NORMAL_CLEARING", "jitter_max_variance": 0.0,
                                             "loss_percent": 0.0, "media_packets": 150, "duration_ms": 3000}
                                            for n in self._nodes(p)]}

    def drain_quality(self, p):
        assert p["canary"] == CANARY and p["fleet"] == "f", p
        self._nodes(p)
        hold = self.quality_mos < CANARY["min_mos"]
        return {"hold_scale_in": hold,
                "reading": {"mos": self.quality_mos, "threshold": CANARY["min_mos"], "hold_scale_in": hold,
                            "measured_at": 1795000150000, "nodes": []}}


def run(definition_text, world, request):
    arns = {f"{f}_function_arn": f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:ps-{f}" for f in FUNCTIONS}
    text = definition_text
    for k, v in arns.items():
        text = text.replace("${" + k + "}", v)

    def fake_invoke(parameters, region, state_credentials):
        fn = parameters["FunctionName"].rsplit(":ps-", 1)[1]
        payload = json.loads(parameters["Payload"])
        try:
            out = world.handle(fn, copy.deepcopy(payload))
        except HandlerError as e:
            return {"StatusCode": 200, "FunctionError": "Unhandled",
                    "Payload": {"errorType": e.name, "errorMessage": e.message}}
        except AssertionError as e:
            world.calls.append(f"CONTRACT VIOLATION {fn}: {e}")
            return {"StatusCode": 200, "FunctionError": "Unhandled",
                    "Payload": {"errorType": "Pairscale.Internal", "errorMessage": f"contract: {e}"}}
        return {"StatusCode": 200, "ExecutedVersion": "$LATEST", "Payload": json.loads(json.dumps(out))}

    lambda_eval_utils._invoke_lambda_function = fake_invoke
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        sfn = boto3.client("stepfunctions", region_name="us-east-1")
        sm = sfn.create_state_machine(name="ps-scale", definition=text,
                                      roleArn=f"arn:aws:iam::{ACCOUNT}:role/ps-state-machine")
        ex = sfn.start_execution(stateMachineArn=sm["stateMachineArn"], name="t1", input=json.dumps(request))
        for _ in range(600):
            d = sfn.describe_execution(executionArn=ex["executionArn"])
            if d["status"] != "RUNNING":
                break
            time.sleep(0.05)
        hist = sfn.get_execution_history(executionArn=ex["executionArn"], maxResults=1000)["events"]
    last_state, builds = None, None
    for e in hist:
        det = e.get("stateEnteredEventDetails")
        if det:
            last_state = det["name"]
            state = json.loads(det.get("input") or "null")
            if isinstance(state, dict) and "builds" in state:
                builds = state["builds"]
    return d, last_state, builds


OUT_OK = ["lock.acquire", "state.recover_open", "state.validate", "state.plan", "state.commit:new_pairs",
          "build.start:terraform", "lock.heartbeat", "build.status", "lock.heartbeat", "build.status",
          "state.discover", "build.start:ansible:scale_out", "lock.heartbeat", "build.status",
          "lock.heartbeat", "build.status", "drain.health pair-0003,pair-0004",
          "drain.canary pair-0003,pair-0004", "state.commit:pair_count,scaled,updates pair-0003=active pair-0004=active",
          "drain.resume pair-0003,pair-0004", "lock.release"]
OUT_UNDO = ["state.rollback", "build.start:ansible:scale_in", "lock.heartbeat", "build.status", "lock.heartbeat",
            "build.status", "build.start:terraform", "lock.heartbeat", "build.status", "lock.heartbeat",
            "build.status", "lock.release"]
QUALITY = ["drain.quality pair-0001,pair-0002,pair-0003", "state.record_quality"]
IN_HEAD = ["lock.acquire", "state.recover_open", "state.validate", "state.plan", *QUALITY, "drain.select",
           "state.commit:updates pair-0003=draining pair-0002=draining", "drain.quiesce pair-0003,pair-0002",
           "lock.heartbeat"]
IN_TAIL = ["drain.resume pair-0002",
           "state.commit:updates pair-0003=drained pair-0002=active",
           "build.start:ansible:scale_in", "lock.heartbeat", "build.status", "lock.heartbeat", "build.status",
           "drain.check pair-0003 chosen=pair-0003 -> done",
           "build.start:terraform", "lock.heartbeat", "build.status", "lock.heartbeat", "build.status",
           "state.commit:pair_count,removes,scaled -pair-0003", "lock.release"]
CHECK = "drain.check pair-0003,pair-0002 -> "
CONFIRM = "drain.check pair-0003 chosen=pair-0003 -> "
# The scale-in up to its last look at the winner, after its deregistration.
IN_TO_CONFIRM = IN_HEAD + [CHECK + "done"] + IN_TAIL[:7]
IN_DESTROY = IN_TAIL[8:]

# name: (world kwargs, request, expected status, expected error, last state, expected calls or None,
#        substrings of the cause or output)
SCENARIOS = {
    "scale-out": (dict(), {"fleet": "f", "target_pair_count": 4}, "SUCCEEDED", None, "Done", OUT_OK,
                  ['"direction": "out"', '"pairs_added": ["pair-0003", "pair-0004"]', '"from": 2', '"to": 4',
                   '"in_rotation_at": "20']),
    "scale-in": (dict(pairs=3, drain_decisions=["wait", "done"]), {"fleet": "f", "delta": -1}, "SUCCEEDED", None, "Done",
                 IN_HEAD + [CHECK + "wait", "lock.heartbeat", CHECK + "done"] + IN_TAIL,
                 ['"direction": "in"', '"pairs_removed": ["pair-0003"]', '"pair_id": "pair-0002"']),
    "scale-in, calls on the winner after its drain are waited on before the destroy": (
        dict(pairs=3, drain_decisions=["done", "wait", "done"]), {"fleet": "f", "delta": -1}, "SUCCEEDED", None,
        "Done", IN_TO_CONFIRM + [CONFIRM + "wait", "lock.heartbeat", CONFIRM + "done"] + IN_DESTROY,
        ['"pairs_removed": ["pair-0003"]']),
    "scale-in, calls on the winner after its drain are cut under force before the destroy": (
        dict(pairs=3, drain_decisions=["done", "force", "done"]), {"fleet": "f", "delta": -1}, "SUCCEEDED", None,
        "Done", IN_TO_CONFIRM + [CONFIRM + "force", "drain.force pair-0003", "lock.heartbeat", CONFIRM + "done"]
        + IN_DESTROY, ['"pairs_removed": ["pair-0003"]']),
    "scale-in, calls on the winner past the limit: not destroyed, left to the next run": (
        dict(pairs=3, drain_decisions=["done", "abort"]), {"fleet": "f", "delta": -1}, "FAILED",
        "Pairscale.DrainDeadline", "Fail: compensation incomplete",
        IN_TO_CONFIRM + [CONFIRM + "abort", "lock.release (unfinished)"],
        ["came up on them afterwards", "so they were not destroyed", "hangs up any call still on them"]),
    "scale-in, calls on the winner cut five times: not destroyed, left to the next run": (
        dict(pairs=3, drain_decisions=["done", "force"]), {"fleet": "f", "delta": -1}, "FAILED",
        "Pairscale.DrainDeadline", "Fail: compensation incomplete",
        IN_TO_CONFIRM + [CONFIRM + "force", "drain.force pair-0003", "lock.heartbeat"] * 5
        + [CONFIRM + "force", "lock.release (unfinished)"],
        ["came up on them afterwards"]),
    "scale-in, no spares": (dict(pairs=3, race_spares=0), {"fleet": "f", "delta": -1}, "SUCCEEDED", None, "Done",
                            None, ['"pairs_removed": ["pair-0003"]', '"spares_resumed": []']),
    "scale-in, force then done": (dict(pairs=3, drain_decisions=["force", "done"]), {"fleet": "f", "delta": -1},
                                  "SUCCEEDED", None, "Done",
                                  IN_HEAD + [CHECK + "force", "state.commit:updates pair-0003=drained",
                                             "drain.force pair-0003", "lock.heartbeat",
                                             CHECK.replace(" -> ", " chosen=pair-0003 -> ") + "done"] + IN_TAIL,
                                  []),
    "scale-in, force then a spare unreachable: the chosen pair goes forward, not back": (
        dict(pairs=3, drain_decisions=["force", "done"], faults={"drain.resume#1": "Pairscale.Internal"}),
        {"fleet": "f", "delta": -1}, "FAILED", "Pairscale.Internal", "Fail: compensation incomplete",
        IN_HEAD + [CHECK + "force", "state.commit:updates pair-0003=drained", "drain.force pair-0003",
                   "lock.heartbeat", CHECK.replace(" -> ", " chosen=pair-0003 -> ") + "done",
                   "drain.resume", "drain.resume pair-0002", "state.rollback_keeping_removal",
                   "lock.release (unfinished)"],
        ["go forward, not back", '["pair-0003"]']),
    "scale-in, force with the nodes to remove unreachable": (
        dict(pairs=3, drain_decisions=["force"], unreachable_force=True), {"fleet": "f", "delta": -1},
        "FAILED", "Pairscale.DrainDeadline", "Fail",
        IN_HEAD + [CHECK + "force", "lock.heartbeat"] * 5 + [CHECK + "force",
                   "drain.resume pair-0003,pair-0002", "state.rollback", "lock.release"],
        ["after 5 rounds of hupall"]),
    "scale-in, force forever": (dict(pairs=3, drain_decisions=["force"]), {"fleet": "f", "delta": -1},
                                "FAILED", "Pairscale.DrainDeadline", "Fail: compensation incomplete",
                                IN_HEAD + [CHECK + "force", "state.commit:updates pair-0003=drained",
                                           "drain.force pair-0003", "lock.heartbeat"]
                                + [CHECK.replace(" -> ", " chosen=pair-0003 -> ") + "force",
                                   "state.commit:updates pair-0003=drained", "drain.force pair-0003",
                                   "lock.heartbeat"] * 4
                                + [CHECK.replace(" -> ", " chosen=pair-0003 -> ") + "force",
                                   "drain.resume pair-0002", "state.rollback_keeping_removal",
                                   "lock.release (unfinished)"],
                                ["after 5 rounds of hupall", "go forward, not back", '["pair-0003"]']),
    "scale-in, abort": (dict(pairs=3, drain_decisions=["wait", "abort"]), {"fleet": "f", "delta": -1},
                        "FAILED", "Pairscale.DrainDeadline", "Fail",
                        IN_HEAD + [CHECK + "wait", "lock.heartbeat", CHECK + "abort",
                                   "drain.resume pair-0003,pair-0002", "state.rollback", "lock.release"],
                        ["passed its deadline with 3 channel(s)", "records were rolled back"]),
    "scale-in, not enough": (dict(pairs=3, enough=False), {"fleet": "f", "delta": -1}, "FAILED",
                             "Pairscale.InvalidRequest", "Fail",
                             ["lock.acquire", "state.recover_open", "state.validate", "state.plan", *QUALITY, "drain.select",
                              "lock.release"],
                             ["cannot remove 1 pair(s): only 0", "nothing was changed"]),
    "scale-in, ansible deregistration fails": (
        dict(pairs=3, builds={"ansible:scale_in#1": ["IN_PROGRESS", "FAILED"]}), {"fleet": "f", "delta": -1},
        "FAILED", "Pairscale.BuildFailed", "Fail: compensation incomplete",
        IN_HEAD + [CHECK + "done"] + IN_TAIL[:7] + ["lock.release (unfinished)"],
        ["finished, not rolled back", '["pair-0003"]', "ended FAILED", "the next run"]),
    "scale-in, terraform fails after deregistering": (
        dict(pairs=3, builds={"terraform#1": ["IN_PROGRESS", "FAILED"]}), {"fleet": "f", "delta": -1},
        "FAILED", "Pairscale.BuildFailed", "Fail: compensation incomplete",
        IN_HEAD + [CHECK + "done"] + IN_TAIL[:-2] + ["lock.release (unfinished)"],
        ["finished, not rolled back", '["pair-0003"]', "terraform build", "ended FAILED"]),
    "scale-in, quiesce fails": (dict(pairs=3, faults={"drain.quiesce": "Pairscale.Dispatcher"}),
                                {"fleet": "f", "delta": -1}, "FAILED", "Pairscale.Dispatcher", "Fail",
                                IN_HEAD[:8] + ["drain.quiesce"] * 5
                                + ["drain.resume pair-0003,pair-0002", "state.rollback", "lock.release"],
                                ["was undone"]),
    "scale-in, lock lost while draining": (
        dict(pairs=3, drain_decisions=["wait"], faults={"lock.heartbeat#3": "Pairscale.LockNotOwned",
                                                        "state.rollback": "Pairscale.Fenced"}),
        {"fleet": "f", "delta": -1}, "FAILED", "Pairscale.Internal", "Fail: compensation incomplete",
        IN_HEAD + [CHECK + "wait", "lock.heartbeat", CHECK + "wait", "lock.heartbeat",
                   "drain.resume pair-0003,pair-0002", "state.rollback", "lock.release (unfinished)"],
        ["LockNotOwned", "rollback failed", "Left to do"]),
    "scale-in, undo cannot resume, lock stays": (
        dict(pairs=3, faults={"drain.quiesce": "Pairscale.Aws", "drain.resume": "Pairscale.Aws",
                              "lock.release": "Pairscale.Aws"}),
        {"fleet": "f", "delta": -1}, "FAILED", "Pairscale.Internal", "Fail: compensation incomplete",
        IN_HEAD[:8] + ["drain.quiesce", "drain.resume", "lock.release"],
        ['resume for pairs ["pair-0003","pair-0002"]', "could not be released either"]),
    "no-op": (dict(), {"fleet": "f", "target_pair_count": 2}, "SUCCEEDED", None, "Done",
              ["lock.acquire", "state.recover_open", "state.validate", "state.plan", "lock.release"], ['"outcome": "no_op"', '"at_target"']),
    "dry run": (dict(), {"fleet": "f", "target_pair_count": 5, "dry_run": True}, "SUCCEEDED", None, "Done",
                ["lock.acquire", "state.recover_open", "state.validate", "state.plan", "lock.release"],
                ['"outcome": "dry_run"', '"action": "scale_out"']),
    "alarm event": (dict(plan={"action": "no_op", "reason": "alarm_not_firing", "detail": "OK"}),
                    {"fleet": "f", "version": "0", "source": "aws.cloudwatch",
                     "detail-type": "CloudWatch Alarm State Change", "detail": {"alarmName": "a", "state": {"value": "OK"}}},
                    "SUCCEEDED", None, "Done", ["lock.acquire", "state.recover_open", "state.validate", "state.plan", "lock.release"], []),
    "no fleet": (dict(), {"target_pair_count": 3}, "FAILED", "Pairscale.InvalidRequest",
                 "Fail: no fleet in the input", [], ["no \"fleet\""]),
    "input not an object": (dict(), [1, 2], "FAILED", "Pairscale.InvalidRequest", "Fail: no fleet in the input", [], []),
    "lock held by a live run": (dict(faults={"lock.acquire": "Pairscale.LockHeld", "lock.break_stale": "Pairscale.LockNotStale"}),
                                {"fleet": "f", "delta": 1}, "FAILED", "Pairscale.LockHeld", "Fail: lock not acquired",
                                ["lock.acquire", "lock.break_stale"], ["lock was not acquired"]),
    "lock held by a stopped run: broken, repaired, then scaled": (
        dict(faults={"lock.acquire#1": "Pairscale.LockHeld"}), {"fleet": "f", "target_pair_count": 4},
        "SUCCEEDED", None, "Done",
        ["lock.acquire", "lock.break_stale", "lock.acquire", "state.recover_open", "drain.resume pair-0001"] + OUT_OK[2:],
        ['"direction": "out"', '"to": 4']),
    "a removal left unfinished is finished by the next run": (
        dict(open_removal=True, pairs=3), {"fleet": "f", "target_pair_count": 2, "dry_run": True}, "SUCCEEDED", None,
        "Done",
        ["lock.acquire", "state.recover_open", "drain.force pair-0003", "build.start:ansible:scale_in",
         "lock.heartbeat", "build.status", "lock.heartbeat", "build.status", "build.start:terraform",
         "lock.heartbeat", "build.status", "lock.heartbeat", "build.status", "state.finish_runs",
         "drain.resume pair-0002", "state.validate", "state.plan", "lock.release"],
        ['"outcome": "dry_run"']),
    "stale run cannot be repaired": (
        dict(faults={"lock.acquire#1": "Pairscale.LockHeld", "state.recover_open": "Pairscale.Drift"}),
        {"fleet": "f", "delta": 1}, "FAILED", "Pairscale.Drift", "Fail",
        ["lock.acquire", "lock.break_stale", "lock.acquire", "state.recover_open", "lock.release"],
        ["could not be repaired", "earlier, unfinished run"]),
    "an unfinished run is recovered after a fresh acquisition (its lock had expired)": (
        dict(open_run=True), {"fleet": "f", "target_pair_count": 4}, "SUCCEEDED", None, "Done",
        ["lock.acquire", "state.recover_open", "drain.resume pair-0001"] + OUT_OK[2:],
        ['"direction": "out"', '"to": 4']),
    "invalid request": (dict(faults={"state.plan": "Pairscale.InvalidRequest"}), {"fleet": "f", "delta": 0},
                        "FAILED", "Pairscale.InvalidRequest", "Fail",
                        ["lock.acquire", "state.recover_open", "state.validate", "state.plan", "lock.release"], ["nothing was changed"]),
    "drift": (dict(valid=False), {"fleet": "f", "delta": 1}, "FAILED", "Pairscale.Drift", "Fail",
              ["lock.acquire", "state.recover_open", "state.validate", "lock.release"], ["freeswitch_missing", "reconcile"]),
    "drift, reconcile": (dict(valid=False), {"fleet": "f", "target_pair_count": 2, "reconcile": True},
                         "SUCCEEDED", None, "Done", ["lock.acquire", "state.recover_open", "state.validate", "state.plan", "lock.release"], []),
    "scale-out, first commit fails": (dict(faults={"state.commit": "Pairscale.Fenced"}), {"fleet": "f", "delta": 2},
                                      "FAILED", "Pairscale.Fenced", "Fail",
                                      ["lock.acquire", "state.recover_open", "state.validate", "state.plan", "state.commit",
                                       "state.rollback", "lock.release"], ["before anything was built"]),
    "scale-out, terraform fails": (dict(builds={"terraform#1": ["IN_PROGRESS", "FAILED"]}),
                                   {"fleet": "f", "delta": 2}, "FAILED", "Pairscale.BuildFailed", "Fail",
                                   OUT_OK[:10] + OUT_UNDO, ["ended FAILED", "was undone"]),
    "scale-out, terraform fails for a passing reason: waited on, started again, built": (
        dict(builds={"terraform#1": ["IN_PROGRESS", "TRANSIENT"]}), {"fleet": "f", "delta": 2}, "SUCCEEDED", None,
        "Done",
        OUT_OK[:10] + ["lock.heartbeat"] * 2 + OUT_OK[5:10] + OUT_OK[10:], ['"to": 4']),
    "scale-out, terraform fails for a passing reason past its retries: undone": (
        dict(builds={f"terraform#{n}": ["IN_PROGRESS", "TRANSIENT"] for n in (1, 2, 3)}), {"fleet": "f", "delta": 2},
        "FAILED", "Pairscale.BuildFailed", "Fail",
        OUT_OK[:10] + ["lock.heartbeat"] * 2 + OUT_OK[5:10] + ["lock.heartbeat"] * 4 + OUT_OK[5:10] + OUT_UNDO,
        ["InsufficientInstanceCapacity", "after 2 retries", "was undone"]),
    "scale-out refills the warm pool once its new pairs are in rotation": (
        dict(refill=2), {"fleet": "f", "target_pair_count": 4}, "SUCCEEDED", None, "Done",
        OUT_OK[:-1] + ["state.commit:warm_pairs", *OUT_OK[5:10], "lock.release"],
        ['"pairs_added": ["pair-0003", "pair-0004"]', '"warm_pairs_added": ["pair-0005", "pair-0006"]']),
    "scale-out whose pool refill fails for good: scaled, the pool left short, nothing undone": (
        dict(refill=1, builds={"terraform#2": ["IN_PROGRESS", "FAILED"]}), {"fleet": "f", "target_pair_count": 4},
        "SUCCEEDED", None, "Done",
        OUT_OK[:-1] + ["state.commit:warm_pairs", *OUT_OK[5:10], "lock.release"],
        ['"pairs_added": ["pair-0003", "pair-0004"]', '"warm_pool": "not refilled: the warm pool terraform build',
         "UnauthorizedOperation"]),
    "scale-out whose pool refill cannot be recorded: scaled, nothing undone": (
        dict(refill=1, faults={"state.commit#3": "Pairscale.Fenced"}), {"fleet": "f", "target_pair_count": 4},
        "SUCCEEDED", None, "Done",
        OUT_OK[:-1] + ["state.commit", "lock.release"],
        ['"to": 4', '"warm_pool": "not refilled: ', "fake state.commit failed with Pairscale.Fenced"]),
    "scale-out, terraform fails for good: undone without a retry": (
        dict(builds={"terraform#1": ["IN_PROGRESS", "FAILED"]}), {"fleet": "f", "delta": 2},
        "FAILED", "Pairscale.BuildFailed", "Fail",
        OUT_OK[:10] + OUT_UNDO, ["UnauthorizedOperation", "after 0 retries", "was undone"]),
    "scale-out, heartbeat lost during terraform: the build is stopped before anything is undone": (
        dict(faults={"lock.heartbeat#1": "Pairscale.LockNotOwned"}), {"fleet": "f", "delta": 2},
        "FAILED", "Pairscale.LockNotOwned", "Fail",
        OUT_OK[:7] + ["build.stop out_terraform"] + OUT_UNDO, ["was undone"]),
    "scale-out, terraform overdue: stopped, then undone": (
        dict(builds={"terraform#1": ["IN_PROGRESS", "OVERDUE"]}), {"fleet": "f", "delta": 2},
        "FAILED", "Pairscale.BuildFailed", "Fail",
        OUT_OK[:10] + ["build.stop out_terraform"] + OUT_UNDO, ["after build_timeout_seconds", "was undone"]),
    "scale-out, terraform cannot be stopped: nothing undone, left to the next run": (
        dict(faults={"lock.heartbeat#1": "Pairscale.LockNotOwned", "build.stop": "Pairscale.BuildStopping"}),
        {"fleet": "f", "delta": 2}, "FAILED", "Pairscale.BuildFailed", "Fail: compensation incomplete",
        OUT_OK[:7] + ["build.stop"] * 13 + ["lock.release (unfinished)"],
        ["could not be stopped", "Pairscale.BuildStopping", "the next run of this fleet stops it"]),
    "an unfinished scale-out is undone by the next run: its builds stopped, then the compensating builds": (
        dict(open_scale_out=True), {"fleet": "f", "target_pair_count": 2}, "SUCCEEDED", None, "Done",
        ["lock.acquire", "state.recover_open", "build.stop tf-old:1", "build.start:ansible:scale_in",
         "lock.heartbeat", "build.status", "lock.heartbeat", "build.status", "build.start:terraform",
         "lock.heartbeat", "build.status", "lock.heartbeat", "build.status", "state.finish_runs",
         "state.validate", "state.plan", "lock.release"], ['"outcome": "no_op"']),
    "an unfinished scale-out whose compensation fails stays unfinished": (
        dict(open_scale_out=True, builds={"terraform#1": ["IN_PROGRESS", "FAILED"]}),
        {"fleet": "f", "target_pair_count": 2}, "FAILED", "Pairscale.BuildFailed", "Fail",
        ["lock.acquire", "state.recover_open", "build.stop tf-old:1", "build.start:ansible:scale_in",
         "lock.heartbeat", "build.status", "lock.heartbeat", "build.status", "build.start:terraform",
         "lock.heartbeat", "build.status", "lock.heartbeat", "build.status", "lock.release"],
        ["could not be repaired", "recovery terraform"]),
    "scale-out, nodes never healthy": (dict(faults={"drain.health": "Pairscale.NotReady"}), {"fleet": "f", "delta": 2},
                                       "FAILED", "Pairscale.NotReady", "Fail",
                                       OUT_OK[:16] + ["drain.health", "lock.heartbeat"] * 24 + ["drain.health"]
                                       + OUT_UNDO,
                                       ["was undone", "pair-0003", "still not healthy after 25 checks"]),
    "scale-out, nodes healthy on the third check": (
        dict(faults={"drain.health#1": "Pairscale.NotReady", "drain.health#2": "Pairscale.NodeUnreachable"}),
        {"fleet": "f", "delta": 2}, "SUCCEEDED", None, "Done",
        OUT_OK[:16] + ["drain.health", "lock.heartbeat"] * 2 + OUT_OK[16:], ['"to": 4']),
    "scale-out, discover drift, rollback fails": (
        dict(faults={"state.discover": "Pairscale.Drift", "state.rollback": "Pairscale.Aws"}), {"fleet": "f", "delta": 2},
        "FAILED", "Pairscale.Internal", "Fail: compensation incomplete",
        OUT_OK[:11] + ["state.rollback", "lock.release (unfinished)"],
        ["failed at the rollback", "Left to do", "pair-0003"]),
    "scale-out, commit count fails: undone before any call": (
        dict(faults={"state.commit#2": "Pairscale.Fenced"}), {"fleet": "f", "delta": 2},
        "FAILED", "Pairscale.Fenced", "Fail",
        OUT_OK[:18] + ["state.commit"] + OUT_UNDO, ["was undone"]),
    "scale-out, canary fails twice: undone": (
        dict(faults={"drain.canary": "Pairscale.CanaryFailed"}), {"fleet": "f", "delta": 2},
        "FAILED", "Pairscale.CanaryFailed", "Fail",
        OUT_OK[:17] + ["drain.canary"] * 2 + OUT_UNDO, ["was undone", "pair-0003"]),
    "scale-out, canary fails once: placed again, scaled": (
        dict(faults={"drain.canary#1": "Pairscale.CanaryFailed"}), {"fleet": "f", "delta": 2},
        "SUCCEEDED", None, "Done", OUT_OK[:17] + ["drain.canary"] + OUT_OK[17:], ['"to": 4']),
    "scale-in, held for quality": (
        dict(pairs=3, quality_mos=3.1), {"fleet": "f", "delta": -1}, "SUCCEEDED", None, "Done",
        ["lock.acquire", "state.recover_open", "state.validate", "state.plan", *QUALITY, "lock.release"],
        ['"outcome": "held_for_quality"', '"mos": 3.1', '"threshold": 3.5']),
    "scale-in, quality not measured: fails before any change": (
        dict(pairs=3, faults={"drain.quality": "Pairscale.Internal"}), {"fleet": "f", "delta": -1},
        "FAILED", "Pairscale.Internal", "Fail",
        ["lock.acquire", "state.recover_open", "state.validate", "state.plan", "drain.quality", "lock.release"], ["nothing was changed"]),
    "scale-out, resume fails: nothing destroyed, left unfinished for the next run": (
        dict(faults={"drain.resume": "Pairscale.Dispatcher"}), {"fleet": "f", "delta": 2},
        "FAILED", "Pairscale.Dispatcher", "Fail: compensation incomplete",
        OUT_OK[:-2] + ["drain.resume"] * 5 + ["lock.release (unfinished)"],
        ["(committed)", "the next run of this fleet puts them into rotation", "pair-0003"]),
    "scale-out, release fails at the end": (dict(faults={"lock.release": "Pairscale.Aws"}), {"fleet": "f", "delta": 2},
                                            "FAILED", "Pairscale.Aws", "Fail", OUT_OK, ["pairscale lock break", "from 2 to 4"]),
    "failure, then release fails": (dict(faults={"state.plan": "Pairscale.UnknownFleet", "lock.release": "Pairscale.LockNotOwned"}),
                                    {"fleet": "f", "delta": 1}, "FAILED", "Pairscale.UnknownFleet", "Fail",
                                    ["lock.acquire", "state.recover_open", "state.validate", "state.plan", "lock.release"],
                                    ["could not be released either"]),
    "retryable errors are retried": (dict(faults={"state.validate#1": "Pairscale.Retryable",
                                                  "state.validate#2": "Lambda.TooManyRequestsException"}),
                                     {"fleet": "f", "target_pair_count": 2}, "SUCCEEDED", None, "Done",
                                     ["lock.acquire", "state.recover_open", "state.validate", "state.validate", "state.validate",
                                      "state.plan", "lock.release"], []),
}


def main():
    definition = open(sys.argv[1]).read()
    names = sys.argv[2:] or list(SCENARIOS)
    failed = 0
    for name in names:
        kw, request, status, error, last, calls, needles = SCENARIOS[name]
        world = World(**kw)
        d, last_state, builds = run(definition, world, request)
        problems = []
        if d["status"] != status:
            problems.append(f"status {d['status']}, expected {status}")
        if error and d.get("error") != error:
            problems.append(f"error {d.get('error')!r}, expected {error!r}")
        if last_state != last:
            problems.append(f"ended in state {last_state!r}, expected {last!r}")
        if calls is not None and world.calls != calls:
            problems.append("calls were:\n      " + "\n      ".join(world.calls)
                            + "\n    expected:\n      " + "\n      ".join(calls))
        text = (d.get("output") or "") + (d.get("cause") or "")
        for n in needles:
            if n not in text:
                problems.append(f"{n!r} not in the output/cause")
        # Every step's build keeps its own record to the end (a later step does not overwrite
        # it); a step retried keeps its last attempt there, the earlier ones in the journal.
        kept = sorted(b.get("build_id", "?") for b in (builds or {}).values())
        last_of_step = {}
        for b in world.build_kind:
            last_of_step[world.build_step[b]] = b
        if kept != sorted(last_of_step.values()):
            problems.append(f"the run's $.builds holds builds {kept}, but the last of each step started is "
                            f"{sorted(last_of_step.values())}")
        if any(c.startswith("CONTRACT") for c in world.calls):
            problems.append("contract violations: " + "; ".join(c for c in world.calls if c.startswith("CONTRACT")))
        if problems:
            failed += 1
            print(f"FAIL {name}:")
            for p in problems:
                print(f"    {p}")
            print(f"    cause: {d.get('cause')}\n    output: {d.get('output')}")
        else:
            print(f"ok   {name}")
    print(f"{len(names) - failed}/{len(names)} scenarios behave as designed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
