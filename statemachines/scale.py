#!/usr/bin/env python3
"""The source of scale.asl.json, the scaling state machine (docs/architecture.md draws it).

Amazon States Language cannot share anything between states: every Task carries its own Retry
block and every build the run starts needs its own poll loop (start, wait, heartbeat, status,
finished?, failed, overdue), six in all. Here each is written once: the retry policies are
named below, build_loop() writes a loop, and small helpers write the lock, commit and rollback
calls. Terraform reads only the JSON it writes (templatefile() fills the ${...} placeholders,
which sit inside JSON strings), so that file is committed, and tests/checks/50-statemachines.sh
fails when it is not exactly what this file writes.

    python3 statemachines/scale.py            write statemachines/scale.asl.json
    python3 statemachines/scale.py --check    exit 1 if it is not up to date

Stdlib only. A state's keys come out in one order (Type, Comment, Resource, Parameters, ...,
Next), so a change to this file shows in the JSON as the lines it changes.
"""
import difflib
import json
import sys
from pathlib import Path

DEFINITION = Path(__file__).resolve().with_name("scale.asl.json")

# --- Retry policies ----------------------------------------------------------------------------
# Every Task retries TRANSIENT last; a Task whose handler reports a passing node problem retries
# that first, with its own pace.

LAMBDA_SERVICE_ERRORS = [
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
]
# Throttling, a lost response, a Lambda hiccup: about two minutes of jittered back-off.
TRANSIENT = {"ErrorEquals": ["Pairscale.Retryable", *LAMBDA_SERVICE_ERRORS], "IntervalSeconds": 2,
             "MaxAttempts": 6, "BackoffRate": 2.0, "MaxDelaySeconds": 60, "JitterStrategy": "FULL"}
# A node's Event Socket or Kamailio's JSON-RPC did not answer: try a few more times.
NODE_UNREACHABLE = {"ErrorEquals": ["Pairscale.NodeUnreachable"], "IntervalSeconds": 3,
                    "MaxAttempts": 4, "BackoffRate": 2.0}
NODE_OR_DISPATCHER = {**NODE_UNREACHABLE, "ErrorEquals": ["Pairscale.NodeUnreachable", "Pairscale.Dispatcher"]}
# New nodes still booting: asked again every HEALTH_WAIT_SECONDS, with a heartbeat in between,
# up to HEALTH_ROUNDS times (about four minutes; crates/core/src/history.rs counts it).
HEALTH_WAIT_SECONDS = 10
HEALTH_ROUNDS = 24

# A build asked to stop that has not ended yet: about two minutes before the run gives up on it.
BUILD_STOPPING = {"ErrorEquals": ["Pairscale.BuildStopping"], "IntervalSeconds": 5, "MaxAttempts": 12,
                  "BackoffRate": 1.5, "MaxDelaySeconds": 15}

# A canary call that failed is placed once more before the pair is given up: one bad call on a
# loaded network is not yet a bad node.
CANARY_AGAIN = {"ErrorEquals": ["Pairscale.CanaryFailed"], "IntervalSeconds": 5, "MaxAttempts": 1, "BackoffRate": 2.0}

# --- What the states read -----------------------------------------------------------------------

FLEET = "$.request.fleet"
RUN = "$$.Execution.Id"  # the run: owner of the lock, key of the journals
PLAN = "$.plan.outcome.plan"
# Every Kamailio sharing the dispatcher table, as the run read the fleet's configuration (null:
# the drain function's own): quiesce and resume change the nodes on each.
KAMAILIOS = "$.plan.config.kamailio_rpc_urls"
CANARY = "$.plan.config.canary"  # the fleet's canary call and quality gate"
AS_OWNER = {"fleet.$": FLEET, "owner.$": RUN}
FENCED = {**AS_OWNER, "token.$": "$.lock.token"}  # a write the lock's token fences
ERROR = ("$.error.Error", "$.error.Cause")  # what went wrong
UNDO_ERROR = ("$.undo_error.Error", "$.undo_error.Cause")  # what went wrong undoing it
# Where a run whose compensation failed releases the lock, before it fails with what is left to do.
STUCK = "Release after compensation failure"
# What a person can do about a lock this run could not release.
NEXT_RUN_BREAKS_IT = "next run breaks it by itself, since this run is over; or break it now with pairscale lock break"
NEW_PAIRS = "$.out.new_pairs"  # a scale-out's pair ids, from its first commit
NEW_PAIRS_JSON = f"States.JsonToString({NEW_PAIRS})"
# Each handler's Task timeout, above the function's own Lambda timeout.
TIMEOUTS = {"lock": 60, "state": 120, "build": 120, "drain": 960}


# --- State helpers ------------------------------------------------------------------------------

def state(kind, comment=None):
    return {"Type": kind, "Comment": comment} if comment else {"Type": kind}


def task(handler, payload, *, then, catch, comment=None, timeout=None, select=None, result=None,
         retry=()):
    """A Lambda invoke of pairscale-<handler> with Payload payload; retries TRANSIENT last."""
    st = state("Task", comment)
    st["Resource"] = "arn:aws:states:::lambda:invoke"
    st["Parameters"] = {"FunctionName": "${%s_function_arn}" % handler, "Payload": payload}
    st["TimeoutSeconds"] = timeout or TIMEOUTS[handler]
    if select:
        st["ResultSelector"] = select
    st.update({"ResultPath": result, "Retry": [*retry, TRANSIENT], "Catch": catch, "Next": then})
    return st


def caught(then, into="$.error", errors=("States.ALL",)):
    """A Catch list: errors (default: all) are kept at into and lead to then."""
    return [{"ErrorEquals": list(errors), "ResultPath": into, "Next": then}]


def fmt(template, *paths):
    """States.Format(template, paths...): the intrinsic a Cause is written with."""
    return "States.Format(%s)" % ", ".join(["'%s'" % template, *paths])


def failure(error, template, *paths, into="$.failure", then="Release after failure", comment=None):
    """A Pass that writes {Error, Cause} at into, the cause formatted from template and paths;
    error is a name or a path ("$.error.Error"). By default it is the run's failure, reported
    once the lock is released."""
    st = state("Pass", comment)
    st["Parameters"] = {"Error.$" if error.startswith("$") else "Error": error, "Cause.$": fmt(template, *paths)}
    st.update({"ResultPath": into, "Next": then})
    return st


def step(parameters, *, into, then, comment=None):
    """A Pass that writes parameters at into."""
    st = state("Pass", comment)
    st.update({"Parameters": parameters, "ResultPath": into, "Next": then})
    return st


step_state = step


def note(result, then):
    return {"Type": "Pass", "Result": result, "ResultPath": "$.result", "Next": then}


def choice(rules, default, comment=None):
    st = state("Choice", comment)
    st.update({"Choices": rules, "Default": default})
    return st


def when(variable, test, value, then):
    return {"Variable": variable, test: value, "Next": then}


def all_of(tests, then):
    return {"And": [{"Variable": v, t: x} for v, t, x in tests], "Next": then}


def fail(comment, error_path, cause_path):
    return {"Type": "Fail", "Comment": comment, "ErrorPath": error_path, "CausePath": cause_path}


def each(comment, items, selector, start, states, *, then, on_error):
    """An inline Map over items: builds the updates of the next commit at $.updates."""
    return {"Type": "Map", "Comment": comment, "ItemsPath": items, "ItemSelector": selector,
            "ItemProcessor": {"ProcessorConfig": {"Mode": "INLINE"}, "StartAt": start, "States": states},
            "ResultPath": "$.updates", "Catch": caught(on_error), "Next": then}


def status_updates(what, items, pair_id, status, *, then, on_error):
    """{pair_id, status} for each of items, for the next commit."""
    inner = {f"Update {status}": {"Type": "Pass", "End": True}}
    return each(f"Builds the commit's updates: one {{pair_id, status: {status}}} per {what}.", items,
                {"pair_id.$": pair_id, "status": status}, f"Update {status}", inner,
                then=then, on_error=on_error)


def release(*, then, held, finished=True):
    """Releases the lock; held: where a failed release goes (its cause is at $.release_error).
    finished=False leaves the run's journal unfinished, for the next run to recover."""
    payload = {"action": "release", **AS_OWNER}
    if not finished:
        payload["finished"] = False
    return task("lock", payload, then=then, catch=caught(held, into="$.release_error"))


def heartbeat(comment, *, then, catch):
    return task("lock", {"action": "heartbeat", **AS_OWNER}, comment=comment, then=then, catch=catch)


def rollback(*, then, failed, comment=None):
    """Rolls back this run's records; failed: where a failed rollback goes ($.undo_error)."""
    return task("state", {"action": "rollback", **FENCED}, comment=comment, then=then,
                catch=caught(failed, into="$.undo_error"))


def commit(changes, *, then, on_error, comment=None, select=None, result=None, into="$.error"):
    return task("state", {"action": "commit", **FENCED, "changes": changes}, comment=comment,
                select=select, result=result, then=then, catch=caught(on_error, into=into))


def resume(nodes, *, then, catch, comment=None, timeout=None, kamailios=KAMAILIOS):
    """Back into rotation: FreeSWITCH takes calls again, and every Kamailio (kamailios: the
    fleet's kamailio_rpc_urls, null for the drain function's own) enables the nodes."""
    return task("drain", {"action": "resume", **FENCED, "nodes.$": nodes, "kamailio_rpc_urls.$": kamailios},
                comment=comment, timeout=timeout, retry=[NODE_OR_DISPATCHER], then=then, catch=catch)


def build_loop(prefix, what, build, *, then, on_error, into="$.error", config="$.plan.config"):
    """The states "<prefix> Start", "Wait", "Heartbeat", "Status", "Finished?", "Failed",
    "Overdue", "Stop" and "Not stopped": start a build (build: kind, playbook, pair ids), then
    wait, keep the lock alive and ask for its status until it ends. Success goes to then. A
    build that ended in failure writes {Error, Cause} at into and goes to on_error; every other
    way out (overdue, a failed heartbeat or status call, a start whose answer was lost) first
    stops the build and waits until it has ended, so that nothing undoes its work while it
    still runs; a build that cannot be stopped leaves the run unfinished for the next run.
    config holds build_poll_seconds, build_timeout_seconds, build_retries and
    build_retry_seconds. what names the build in a cause ("scale-out terraform").

    A Terraform build also has "Back off?", "Back off wait", "Back off heartbeat", "Back off
    count" and "Start again": when its log shows a transient failure (the status call's
    retry_in_seconds), the run waits that long in rounds of at most build_poll_seconds, the
    lock kept alive, and starts the same build again, up to build_retries times; every attempt
    shares the step's build_timeout_seconds, counted from the first start (since). A permanent
    failure, or one past its retries, goes to on_error at once.

    Each build keeps its own record, $.builds.<step> ("Out: undo terraform" ->
    $.builds.out_undo_terraform): build_id, project, kind, started_at, attempt, since, and
    poll, its status when last asked; and the build function keeps the same id in the run's
    journal under the same step (a retry under <step>_retry<n>), where a later run finds it if
    this one dies."""
    start, wait, beat, status, finished, failed, overdue, stop, unstopped = (
        f"{prefix} {s}" for s in ("Start", "Wait", "Heartbeat", "Status", "Finished?", "Failed", "Overdue",
                                  "Stop", "Not stopped"))
    backoff, backoff_wait, backoff_beat, backoff_count, again = (
        f"{prefix} {s}" for s in ("Back off?", "Back off wait", "Back off heartbeat", "Back off count",
                                  "Start again"))
    retries = build.get("kind") == "terraform"
    step = prefix.lower().replace(":", "").replace(" ", "_")
    record = "$.builds." + step
    to_stop = caught(stop, into=into)
    # The key is the same for a retried start (same run, same state, same attempt): one build,
    # not two.
    key = "States.Hash(States.Format('{}/{}', $$.Execution.Id, $$.State.Name), 'SHA-1')"
    again_key = f"States.Hash(States.Format('{{}}/{{}}/{{}}', $$.Execution.Id, $$.State.Name, {record}.attempt), 'SHA-1')"
    ended = f"the {what} build {{}} (project {{}})"
    about = [f"{record}.build_id", f"{record}.project", f"{record}.poll.status", f"{record}.poll.cause"]
    started = {f"{k}.$": f"$.Payload.{k}" for k in ("build_id", "project", "kind", "started_at", "attempt", "since")}
    polled = {f"{k}.$": f"$.Payload.{k}"
              for k in ("status", "done", "succeeded", "overdue", "cause", "retry_in_seconds", "backoff")}
    retry = {"retry": {"attempt.$": f"{record}.attempt", "retries.$": f"{config}.build_retries",
                       "retry_seconds.$": f"{config}.build_retry_seconds",
                       "poll_seconds.$": f"{config}.build_poll_seconds"}} if retries else {}
    states = {
        start: task("build", {"action": "start", **FENCED, "step": step, **build, "idempotency_key.$": key},
                    select=started, result=record, then=wait, catch=to_stop),
        wait: {"Type": "Wait", "SecondsPath": f"{config}.build_poll_seconds", "Next": beat},
        beat: heartbeat("Keeps the scaling lock alive while the build runs.", then=status, catch=to_stop),
        status: task("build", {"action": "status", "build_id.$": f"{record}.build_id",
                               "started_at.$": f"{record}.since",
                               "timeout_seconds.$": f"{config}.build_timeout_seconds", **retry},
                     select=polled, result=f"{record}.poll", then=finished, catch=to_stop),
        finished: choice([when(f"{record}.poll.succeeded", "BooleanEquals", True, then),
                          *([when(f"{record}.poll.backoff", "IsNull", False, backoff)] if retries else []),
                          when(f"{record}.poll.done", "BooleanEquals", True, failed),
                          when(f"{record}.poll.overdue", "BooleanEquals", True, overdue)], wait),
        failed: failure("Pairscale.BuildFailed",
                        f"{ended} ended {{}}: {{}}" + (" (after {} retries)" if retries else ""),
                        *about, *([f"{record}.attempt"] if retries else []), into=into, then=on_error),
        overdue: failure("Pairscale.BuildFailed",
                         f"{ended} is still {{}} after build_timeout_seconds ({{}} s); pairscale stopped it",
                         *about[:3], f"{config}.build_timeout_seconds", into=into, then=stop),
        stop: task("build", {"action": "stop", "fleet.$": FLEET, "run.$": RUN, "step": step},
                   comment="Every attempt of this step's build, found in the run's journal, is stopped; "
                           "Pairscale.BuildStopping until they have ended.",
                   retry=[BUILD_STOPPING], then=on_error, catch=caught(unstopped, into="$.stop_error")),
        unstopped: failure(
            "Pairscale.BuildFailed",
            f"the {what} build did not succeed ({{}}) and could not be stopped ({{}}: {{}}); it may still be "
            "running, so nothing more was undone. Left to do: nothing by hand; the next run of this fleet stops "
            "it and finishes the undo from the journal of this run",
            f"{into}.Cause", "$.stop_error.Error", "$.stop_error.Cause", then=STUCK),
    }
    if retries:
        states.update({
            backoff: choice([when(f"{record}.poll.backoff.rounds", "NumericGreaterThan", 0, backoff_wait)], again,
                            "The build failed for a passing reason (its log showed it): wait before starting it "
                            "again, in rounds no longer than build_poll_seconds."),
            backoff_wait: {"Type": "Wait", "SecondsPath": f"{record}.poll.backoff.seconds", "Next": backoff_beat},
            backoff_beat: heartbeat("Keeps the scaling lock alive while the run waits to start the build again.",
                                    then=backoff_count, catch=to_stop),
            backoff_count: step_state(
                {"rounds.$": f"States.MathAdd({record}.poll.backoff.rounds, -1)",
                 "seconds.$": f"{record}.poll.backoff.seconds"},
                into=f"{record}.poll.backoff", then=backoff),
            again: task("build", {"action": "start", **FENCED, "step": step, **build,
                                  "attempt.$": f"States.MathAdd({record}.attempt, 1)", "since.$": f"{record}.since",
                                  "idempotency_key.$": again_key},
                        comment="The same build, started again: its own key and journal entry, the first "
                                "attempt's deadline.",
                        select=started, result=record, then=wait, catch=to_stop),
        })
    return states


# --- The machine --------------------------------------------------------------------------------

def start():
    """Lock, repair what a stopped run left, validate, plan, and choose the direction."""
    return {
        "Init": {"Type": "Pass", "Comment": "Keeps the start input whole at $.request: every later state "
                 "reads the fleet from it and plan parses it. $.builds gathers a record per build.",
                 "Parameters": {"request.$": "$", "builds": {}}, "ResultPath": "$", "Next": "Names a fleet?"},
        "Names a fleet?": choice(
            [all_of([(FLEET, "IsPresent", True), (FLEET, "IsString", True)], "Acquire lock")],
            "Fail: no fleet in the input",
            "Without a fleet nothing can even be locked: refuse before any call."),
        "Fail: no fleet in the input": {
            "Type": "Fail", "Error": "Pairscale.InvalidRequest",
            "Cause": 'The start input has no "fleet" string. Start with {"fleet": "<fleet>", '
                     '"target_pair_count": <n>} or {"fleet": "<fleet>", "delta": <+n|-n>}. Nothing was changed.'},
        "Acquire lock": task(
            "lock", {"action": "acquire", **AS_OWNER, "request.$": "$.request"},
            comment="One run per fleet at a time; the token fences every later write.",
            select={"owner.$": "$.Payload.owner", "token.$": "$.Payload.token",
                    "acquired_at.$": "$.Payload.acquired_at"},
            result="$.lock", then="Recover unfinished runs",
            catch=caught("Break the lock if stale", errors=["Pairscale.LockHeld"])
            + caught("Fail: lock not acquired")),
        "Break the lock if stale": task(
            "lock", {"action": "break_stale", "fleet.$": FLEET, "breaker.$": RUN,
                     "reason": "found held by a run that is no longer running, by the next run"},
            comment="Another run holds the lock. Break it only if that run is no longer RUNNING or the lock "
                    "expired (never a live run), then try again; the break is recorded on the lock item.",
            select={"previous_holder.$": "$.Payload.broken.previous_holder",
                    "stale_because.$": "$.Payload.stale_because"},
            result="$.stale", then="Acquire lock", catch=caught("Fail: lock not acquired", into="$.break_error")),
        "Recover unfinished runs": task(
            "state", {"action": "recover_open", **FENCED},
            comment="The recovery obligation lives in the fleet's journals, not in the lock: whether this run "
                    "took a free lock, an expired one or one it broke, every earlier run that never finished "
                    "(stopped, lock lost, compensation incomplete) is finished or undone here, oldest first: "
                    "rolled back if it stopped before its count commit, left if it committed, finished if it "
                    "was removing pairs (its other candidates put back, the removal done by the builds below). "
                    "Returns the pairs to put back into rotation.",
            select={"runs.$": "$.Payload.runs[*].stale_run", "resume_nodes.$": "$.Payload.resume_nodes",
                    "kamailio_rpc_urls.$": "$.Payload.kamailio_rpc_urls",
                    "resume_count.$": "States.ArrayLength($.Payload.resume_nodes)",
                    "stop_builds.$": "$.Payload.stop_builds",
                    "stop_count.$": "States.ArrayLength($.Payload.stop_builds)",
                    "compensate_pairs.$": "$.Payload.compensate_pairs",
                    "compensate_count.$": "States.ArrayLength($.Payload.compensate_pairs)",
                    "hangup_nodes.$": "$.Payload.hangup_nodes",
                    "hangup_count.$": "States.ArrayLength($.Payload.hangup_nodes)",
                    "finish_after.$": "$.Payload.finish_after",
                    "finish_count.$": "States.ArrayLength($.Payload.finish_after)",
                    "build": {"build_poll_seconds.$": "$.Payload.build_poll_seconds",
                              "build_timeout_seconds.$": "$.Payload.build_timeout_seconds",
                              "build_retries.$": "$.Payload.build_retries",
                              "build_retry_seconds.$": "$.Payload.build_retry_seconds"}},
            result="$.recovered", then="Any builds to stop?", catch=caught("Stale run not recovered")),
        "Any builds to stop?": choice(
            [when("$.recovered.stop_count", "NumericGreaterThan", 0, "Recover: stop builds")], "Anything to compensate?"),
        "Recover: stop builds": task(
            "build", {"action": "stop", "build_ids.$": "$.recovered.stop_builds"},
            comment="Every build the unfinished runs' journals name is stopped (those that ended are left), and "
                    "nothing is undone until each has ended: a Terraform run still going would hold the state "
                    "lock against the compensation, or create what the compensation just destroyed.",
            retry=[BUILD_STOPPING], then="Anything to compensate?", catch=caught("Stale run not recovered")),
        "Anything to compensate?": choice(
            [when("$.recovered.compensate_count", "NumericGreaterThan", 0, "Anything to hang up?")],
            "Any runs to finish?",
            "A scale-out that ran a build and never committed its count may have left instances, services and "
            "dispatcher rows behind its rolled-back records, and a scale-in stopped while removing pairs left "
            "them half removed: the same builds remove them."),
        "Anything to hang up?": choice(
            [when("$.recovered.hangup_count", "NumericGreaterThan", 0, "Recover: hang up removed pairs")],
            "Recover: ansible Start"),
        "Recover: hang up removed pairs": task(
            "drain", {"action": "force", **FENCED, "nodes.$": "$.recovered.hangup_nodes"},
            comment="The pairs a scale-in committed to removal may still carry calls (it stopped between "
                    "choosing them under force and hanging up): the run decided to cut them, so they are cut "
                    "before Ansible deregisters them. A node that cannot be reached is being destroyed anyway.",
            result="$.recovered.hung_up", then="Recover: ansible Start",
            catch=caught("Recover: ansible Start", into="$.recovered.hangup_error")),
        **build_loop("Recover: ansible", "recovery scale_in ansible",
                     {"kind": "ansible", "playbook": "scale_in", "pair_ids.$": "$.recovered.compensate_pairs"},
                     then="Recover: terraform Start", on_error="Stale run not recovered", config="$.recovered.build"),
        **build_loop("Recover: terraform", "recovery terraform", {"kind": "terraform"},
                     then="Any runs to finish?", on_error="Stale run not recovered", config="$.recovered.build"),
        "Any runs to finish?": choice(
            [when("$.recovered.finish_count", "NumericGreaterThan", 0, "Finish recovered runs")], "Anything to resume?"),
        "Finish recovered runs": task(
            "state", {"action": "finish_runs", **FENCED, "runs.$": "$.recovered.finish_after"},
            comment="Only now, with their builds stopped and undone, do the recovered runs count as finished; a "
                    "run stopped before this point leaves them for the next one.",
            then="Anything to resume?", catch=caught("Stale run not recovered")),
        "Anything to resume?": choice(
            [when("$.recovered.resume_count", "NumericGreaterThan", 0, "Resume the stale run's nodes")],
            "Validate"),
        "Resume the stale run's nodes": resume(
            "$.recovered.resume_nodes", timeout=300, then="Validate", catch=caught("Stale run not recovered"),
            kamailios="$.recovered.kamailio_rpc_urls",
            comment="Back into rotation: the nodes the unfinished runs had quiesced (or committed and never "
                    "resumed)."),
        "Stale run not recovered": failure(
            "$.error.Error",
            "Fleet {} was not scaled: what an earlier, unfinished run left could not be repaired: {}. Left to do: "
            "follow that cause, then start this request again (the next run tries the repair again)",
            FLEET, "$.error.Cause"),
        "Fail: lock not acquired": fail(
            "Nothing was changed and no lock is held: nothing to undo.", "$.error.Error",
            fmt("Nothing was changed: the scaling lock was not acquired. {}", "$.error.Cause")),
        "Validate": task(
            "state", {"action": "validate", "fleet.$": FLEET},
            select={"valid.$": "$.Payload.valid", "summary.$": "$.Payload.summary"},
            result="$.validation", then="Valid?", catch=caught("Failed before any change")),
        "Valid?": choice(
            [when("$.validation.valid", "BooleanEquals", True, "Plan"),
             all_of([("$.request.reconcile", "IsPresent", True), ("$.request.reconcile", "IsBoolean", True),
                     ("$.request.reconcile", "BooleanEquals", True)], "Plan")],
            "Drift found"),
        "Drift found": failure(
            "Pairscale.Drift",
            "validation found the fleet different from its records: {}. Repair it, or start again with "
            "reconcile set to true to scale anyway", "$.validation.summary",
            into="$.error", then="Failed before any change"),
        "Plan": task(
            "state", {"action": "plan", "request.$": "$.request"},
            comment="Refuses a bad request (Pairscale.InvalidRequest) with the lock held: released on the "
                    "failure path.",
            select={"outcome.$": "$.Payload.outcome", "config.$": "$.Payload.config", "nodes.$": "$.Payload.nodes"},
            result="$.plan", then="Dry run?", catch=caught("Failed before any change")),
        "Dry run?": choice([when("$.plan.outcome.dry_run", "BooleanEquals", True, "Note dry run")], "Direction?"),
        "Direction?": choice(
            [when(f"{PLAN}.action", "StringEquals", "scale_out", "Out: commit new pairs"),
             when(f"{PLAN}.action", "StringEquals", "scale_in", "In: call quality"),
             when(f"{PLAN}.action", "StringEquals", "no_op", "Note no-op")],
            "Unknown plan"),
        "Unknown plan": failure(
            "Pairscale.Internal",
            "the plan action {} is not one this state machine knows (scale_out, scale_in, no_op)",
            f"{PLAN}.action", into="$.error", then="Failed before any change"),
        "Note dry run": note({"outcome": "dry_run"}, "Release: no change"),
        "Note no-op": note({"outcome": "no_op"}, "Release: no change"),
        "Release: no change": release(then="Report: no change", held="Lock left held: no change"),
        "Report: no change": step(
            {"fleet.$": FLEET, "outcome.$": "$.result.outcome", "request.$": "$.request", "plan.$": PLAN,
             "planned.$": "$.plan.outcome"},
            into="$", then="Done"),
        "Lock left held: no change": failure(
            "Pairscale.Aws",
            "nothing was changed (plan: {}), but the scaling lock of fleet {} was not released: {}. The "
            + NEXT_RUN_BREAKS_IT, "$.result.outcome", FLEET, "$.release_error.Cause", then="Fail"),
    }


def scale_out():
    """Commit the new pairs, build them (Terraform, then Ansible), wait until they are healthy,
    commit the count, put them into rotation; or undo it all."""
    undo = "Out: undo, roll back"
    return {
        "Out: commit new pairs": commit(
            {"new_pairs.$": f"{PLAN}.add"},
            comment="Records the new pairs as provisioning (fenced, journaled); Terraform builds exactly the "
                    "recorded set.",
            select={"new_pairs.$": "$.Payload.new_pairs"}, result="$.out",
            then="Out: terraform Start", on_error="Out: roll back the commit"),
        **build_loop("Out: terraform", "scale-out terraform", {"kind": "terraform"},
                     then="Out: discover", on_error=undo),
        "Out: discover": task(
            "state", {"action": "discover", **FENCED, "pair_ids.$": NEW_PAIRS},
            comment="Fills the new records from EC2/ECS tags; Pairscale.Drift if a pair has no instance.",
            select={"nodes.$": "$.Payload.nodes", "health_rounds": 0}, result="$.discovered",
            then="Out: ansible Start", catch=caught(undo)),
        **build_loop("Out: ansible", "scale_out ansible",
                     {"kind": "ansible", "playbook": "scale_out", "pair_ids.$": NEW_PAIRS},
                     then="Out: wait until healthy", on_error=undo),
        "Out: wait until healthy": task(
            "drain", {"action": "health", "nodes.$": "$.discovered.nodes"},
            comment="A node not ready yet (or not answering yet) is asked again every "
                    f"{HEALTH_WAIT_SECONDS} s, the lock kept alive in between, up to {HEALTH_ROUNDS} times (about "
                    "four minutes).",
            then="Out: canary calls",
            catch=caught("Out: not healthy yet", into="$.health_error",
                         errors=["Pairscale.NotReady", "Pairscale.NodeUnreachable"]) + caught(undo)),
        "Out: not healthy yet": step(
            {"nodes.$": "$.discovered.nodes", "health_rounds.$": "States.MathAdd($.discovered.health_rounds, 1)"},
            into="$.discovered", then="Out: still waiting for health?"),
        "Out: still waiting for health?": choice(
            [when("$.discovered.health_rounds", "NumericGreaterThan", HEALTH_ROUNDS, "Out: never healthy")],
            "Out: health wait"),
        "Out: health wait": {"Type": "Wait", "Seconds": HEALTH_WAIT_SECONDS, "Next": "Out: health heartbeat"},
        "Out: health heartbeat": heartbeat(
            "New nodes can take minutes to boot: the lock is kept alive while the run waits for them.",
            then="Out: wait until healthy", catch=caught(undo)),
        "Out: never healthy": failure(
            "$.health_error.Error",
            "the new nodes were still not healthy after {} checks, " + f"{HEALTH_WAIT_SECONDS}" + " s apart: {}",
            "$.discovered.health_rounds", "$.health_error.Cause", into="$.error", then=undo),
        "Out: canary calls": task(
            "drain", {"action": "canary", "nodes.$": "$.discovered.nodes", "canary.$": CANARY},
            comment="A real SIP call to each new node, through its own SIP port, to the canary extension the "
                    "FreeSWITCH role installs; the node goes into rotation only if the call is answered and its "
                    "quality (MOS) passes the fleet's threshold. Pairscale.CanaryFailed names the node and why; "
                    "the compensation removes every new pair.",
            select={"nodes.$": "$.Payload.nodes", "skipped.$": "$.Payload.skipped"}, result="$.canary",
            retry=[CANARY_AGAIN, NODE_UNREACHABLE], then="Out: mark new pairs active", catch=caught(undo)),
        "Out: resume new nodes": resume(
            "$.discovered.nodes", then="Out: in rotation", catch=caught("Out: not all in rotation"),
            comment="Resumes FreeSWITCH, then enables the nodes in Kamailio's dispatcher: they take calls from "
                    "here on, so nothing after this destroys them; a failure here is finished forward."),
        "Out: not all in rotation": failure(
            "$.error.Error",
            "Fleet {} was scaled from {} to {} pairs (committed), but putting the new pairs {} into rotation "
            "failed: {}. They are healthy; any that took calls keep them. Left to do: nothing by hand; the run "
            "stays unfinished and the next run of this fleet puts them into rotation (a dry run does only that)",
            FLEET, f"{PLAN}.from", f"{PLAN}.to", NEW_PAIRS_JSON, "$.error.Cause", then=STUCK,
            comment="The count is committed and the new pairs are healthy, but not all of them were put into "
                    "rotation; some may already carry calls, so nothing is destroyed. The lock is released with the "
                    "journal unfinished: the next run's recovery resumes them."),
        "Out: mark new pairs active": status_updates(
            "new pair", NEW_PAIRS, "$$.Map.Item.Value", "active", then="Out: commit count", on_error=undo),
        "Out: commit count": commit(
            {"pair_count.$": f"{PLAN}.to", "updates.$": "$.updates", "scaled": "out"},
            comment="The new count becomes the truth; starts the scale-out cooldown. The new nodes are healthy "
                    "and still out of rotation, so a failure up to here is undone without touching a call.",
            then="Out: resume new nodes", on_error=undo),
        **refill_pool(),
        "Out: release": release(then="Out: report", held="Lock left held: scaled"),
        "Out: report": out_report(),
        "Out: roll back the commit": rollback(
            then="Out: rolled back", failed="Out: rollback of the commit failed",
            comment="The first commit failed: nothing was built, so rolling the records back is all there is "
                    "to undo."),
        "Out: rolled back": failure(
            "$.error.Error",
            "Scale-out of fleet {} failed before anything was built; its records were rolled back and "
            "nothing is left to do. {}", FLEET, "$.error.Cause"),
        "Out: rollback of the commit failed": failure(
            "Pairscale.Internal",
            "Scale-out of fleet {} failed at its first commit ({}: {}) and the rollback failed too ({}: {}). "
            "Left to do: roll back run {} with the state action rollback, then validate the fleet",
            FLEET, *ERROR, *UNDO_ERROR, RUN, then=STUCK),
        **scale_out_undo(),
    }


def out_report(**extra):
    return step(
        {"fleet.$": FLEET, "direction": "out", "from.$": f"{PLAN}.from", "to.$": f"{PLAN}.to",
         "pairs_added.$": NEW_PAIRS, "in_rotation_at.$": "$.in_rotation.at", **extra, "outcome": "scaled",
         "request.$": "$.request"},
        into="$", then="Done")


def refill_pool():
    """After the new pairs are in rotation: bring the warm pool back to its size (new ids recorded
    as warm, then a Terraform build that launches their nodes and stops them). The scale-out is
    done by then, so a failure here undoes nothing: the records stay warm and the next Terraform
    build of any run makes their nodes."""
    return {
        "Out: in rotation": step(
            {"at.$": "$$.State.EnteredTime"}, into="$.in_rotation", then="Out: refill the pool?",
            comment="When the new pairs took calls: the run's time to capacity ends here (the policy reads it "
                    "from the output), not after the refill."),
        "Out: refill the pool?": choice(
            [when(f"{PLAN}.refill", "NumericGreaterThan", 0, "Out: commit warm pairs")], "Out: release",
            "The pool is refilled only after the new pairs take calls: its launches never delay capacity."),
        "Out: commit warm pairs": commit(
            {"warm_pairs.$": f"{PLAN}.refill"},
            comment="Records the pool's new pairs as warm (fenced, journaled, once per run).",
            select={"warm_pairs.$": "$.Payload.warm_pairs"}, result="$.warm",
            then="Out: refill terraform Start", on_error="Out: pool not refilled", into="$.refill_error"),
        **build_loop("Out: refill terraform", "warm pool terraform", {"kind": "terraform"},
                     then="Out: release refilled", on_error="Out: pool not refilled", into="$.refill_error"),
        "Out: release refilled": release(then="Out: report refilled", held="Lock left held: scaled"),
        "Out: report refilled": out_report(**{"warm_pairs_added.$": "$.warm.warm_pairs"}),
        "Out: pool not refilled": release(then="Out: report pool not refilled", held="Lock left held: scaled"),
        "Out: report pool not refilled": out_report(**{
            "warm_pool.$": fmt("not refilled: {}. The warm records stay; the next Terraform build of any run makes their "
                          "nodes", "$.refill_error.Cause")}),
    }


def scale_out_undo():
    """Roll the records back, deregister the new pairs (Ansible), destroy them (Terraform)."""
    return {
        "Out: undo, roll back": rollback(
            then="Out: undo ansible Start", failed="Out: undo failed at rollback",
            comment="Deletes this run's new records and restores the count: the next Terraform run no longer "
                    "has the new pairs."),
        **build_loop("Out: undo terraform", "compensating terraform", {"kind": "terraform"},
                     then="Out: undone", on_error="Out: undo failed at terraform", into="$.undo_error"),
        **build_loop("Out: undo ansible", "compensating scale_in ansible",
                     {"kind": "ansible", "playbook": "scale_in", "pair_ids.$": NEW_PAIRS},
                     then="Out: undo terraform Start", on_error="Out: undo failed at ansible", into="$.undo_error"),
        "Out: undone": failure(
            "$.error.Error",
            "Scale-out of fleet {} failed and was undone: records rolled back, pairs {} removed from the "
            "dispatcher and destroyed by Terraform. Nothing is left to do. The failure: {}",
            FLEET, NEW_PAIRS_JSON, "$.error.Cause"),
        "Out: undo failed at rollback": failure(
            "Pairscale.Internal",
            "Scale-out of fleet {} failed ({}: {}) and its compensation failed at the rollback ({}: {}). "
            "Left to do: roll back run {} with the state action rollback, run the ansible scale_in playbook "
            "for {}, then the terraform build, then validate the fleet",
            FLEET, *ERROR, *UNDO_ERROR, RUN, NEW_PAIRS_JSON, then=STUCK),
        "Out: undo failed at terraform": failure(
            "Pairscale.Internal",
            "Scale-out of fleet {} failed ({}: {}); its records were rolled back and pairs {} were removed "
            "from the dispatcher, but the compensating Terraform run failed ({}: {}). Left to do: run the "
            "terraform build until it succeeds (it destroys them), then validate the fleet",
            FLEET, *ERROR, NEW_PAIRS_JSON, *UNDO_ERROR, then=STUCK),
        "Out: undo failed at ansible": failure(
            "Pairscale.Internal",
            "Scale-out of fleet {} failed ({}: {}); its records were rolled back but the compensating ansible "
            "scale_in run failed ({}: {}). Left to do: run the ansible scale_in playbook for pairs {} (it "
            "removes them from the dispatcher), then the terraform build (it destroys them), then validate "
            "the fleet",
            FLEET, *ERROR, *UNDO_ERROR, NEW_PAIRS_JSON, then=STUCK),
    }


def scale_in():
    """Select candidates, drain them (a race: the first to empty go), then deregister (Ansible)
    and destroy (Terraform) the winners and commit the count; undo it all before the removal."""
    undo = "In: undo: calls hung up?"
    removing = "In: failed while removing"
    drain = "$.plan.config.drain"
    return {
        "In: call quality": task(
            "drain", {"action": "quality", "fleet.$": FLEET, "nodes.$": "$.plan.nodes", "canary.$": CANARY},
            comment="Canary calls on a sample of the active nodes and the operator's MOS metric, if configured: "
                    "the fleet's quality figure (the worse of the calls' median and the metric), published as the "
                    "CallQualityMos metric. Below the fleet's threshold the scale-in is held: "
                    "taking capacity from a fleet whose calls already sound bad makes them worse.",
            select={"hold_scale_in.$": "$.Payload.hold_scale_in", "reading.$": "$.Payload.reading"},
            result="$.quality", retry=[NODE_UNREACHABLE], then="In: record quality",
            catch=caught("Failed before any change")),
        "In: record quality": task(
            "state", {"action": "record_quality", **FENCED, "reading.$": "$.quality.reading"},
            comment="Kept on the fleet's bookkeeping, where pairscale status shows it.",
            result=None, then="In: held for quality?", catch=caught("Failed before any change")),
        "In: held for quality?": choice(
            [when("$.quality.hold_scale_in", "BooleanEquals", True, "In: note held for quality")],
            "In: select candidates"),
        "In: note held for quality": note({"outcome": "held_for_quality"}, "In: release, held for quality"),
        "In: release, held for quality": release(
            then="In: report held for quality", held="Lock left held: no change"),
        "In: report held for quality": step(
            {"fleet.$": FLEET, "outcome.$": "$.result.outcome", "request.$": "$.request", "plan.$": PLAN,
             "quality.$": "$.quality.reading"},
            into="$", then="Done",
            comment="Nothing was changed: the scale-in waits until the fleet's call quality recovers."),
        "In: select candidates": task(
            "drain", {"action": "select", "nodes.$": "$.plan.nodes", "remove.$": f"{PLAN}.remove",
                      "race_spares.$": f"{PLAN}.race_spares",
                      "pair_capacity_channels.$": "$.plan.config.pair_capacity_channels"},
            comment="Ranks the unprotected active pairs by expected time to drain; picks remove, and up to race_spares "
                    "spares while each shortens the expected wait (core::drain::choose) and the pairs left serving "
                    "can carry the live load (pair_capacity_channels).",
            select={"enough.$": "$.Payload.enough", "nodes.$": "$.Payload.nodes", "forced": False},
            result="$.select",
            retry=[NODE_UNREACHABLE], then="In: enough candidates?", catch=caught("Failed before any change")),
        "In: enough candidates?": choice(
            [when("$.select.enough", "BooleanEquals", True, "In: mark candidates draining")],
            "In: not enough candidates"),
        "In: not enough candidates": failure(
            "Pairscale.InvalidRequest",
            "fleet {} cannot remove {} pair(s): only {} unprotected, reachable active pair(s) could be "
            "chosen. Unprotect pairs, bring unreachable ones back, or ask for fewer",
            FLEET, f"{PLAN}.remove", "States.ArrayLength($.select.nodes)",
            into="$.error", then="Failed before any change"),
        "In: mark candidates draining": status_updates(
            "candidate", "$.select.nodes", "$$.Map.Item.Value.pair_id", "draining",
            then="In: commit draining", on_error=undo),
        "In: commit draining": commit({"updates.$": "$.updates"}, then="In: quiesce", on_error=undo),
        "In: quiesce": task(
            "drain", {"action": "quiesce", **FENCED, "nodes.$": "$.select.nodes", "kamailio_rpc_urls.$": KAMAILIOS},
            comment="Disables the candidates in every Kamailio's dispatcher, then pauses FreeSWITCH both ways: no "
                    "new calls, live calls go on.",
            select={"started_at.$": "$.Payload.started_at", "forces": 0, "chosen": []}, result="$.drain",
            retry=[NODE_OR_DISPATCHER], then="In: drain wait", catch=caught(undo)),
        "In: drain wait": {"Type": "Wait", "SecondsPath": f"{drain}.check_interval_seconds",
                           "Next": "In: drain heartbeat"},
        "In: drain heartbeat": heartbeat(
            "Drains outlast any fixed TTL: every round pushes the lock's expiry forward.",
            then="In: drain check", catch=caught(undo)),
        "In: drain check": task(
            "drain", {"action": "check", "nodes.$": "$.select.nodes", "remove.$": f"{PLAN}.remove",
                      "drain.$": drain, "started_at.$": "$.drain.started_at", "chosen.$": "$.drain.chosen"},
            select={**{f"{k}.$": f"$.Payload.{k}" for k in ("decision", "total_channels", "winners",
                                                             "winner_nodes", "loser_nodes")},
                    "losers.$": "States.ArrayLength($.Payload.loser_nodes)",
                    "force_nodes.$": "$.Payload.force_nodes", "force_chosen.$": "$.Payload.force_chosen",
                    "spare_nodes.$": "$.Payload.spare_nodes",
                    "to_cut.$": "States.ArrayLength($.Payload.force_nodes)"},
            result="$.check", then="In: drain decision", catch=caught(undo)),
        "In: drain decision": choice(
            [when("$.check.decision", "StringEquals", "done", "In: any spares?"),
             when("$.check.decision", "StringEquals", "wait", "In: drain wait"),
             when("$.check.decision", "StringEquals", "force", "In: count forced hangups"),
             when("$.check.decision", "StringEquals", "abort", "In: drain deadline")],
            "In: unknown decision", "The drain policy decides (core::drain): done, wait, force or abort."),
        "In: unknown decision": failure(
            "Pairscale.Internal",
            "drain check returned decision {}, which this state machine does not know", "$.check.decision",
            into="$.error", then=undo),
        "In: drain deadline": failure(
            "Pairscale.DrainDeadline",
            "the drain of fleet {} passed its deadline with {} channel(s) left on the candidates (policy {}, "
            "deadline {} s, hard maximum {} s)", FLEET, "$.check.total_channels", f"{drain}.policy",
            f"{drain}.deadline_seconds", f"{drain}.hard_max_seconds", into="$.error", then=undo),
        "In: count forced hangups": step(
            {"started_at.$": "$.drain.started_at", "forces.$": "States.MathAdd($.drain.forces, 1)",
             "chosen.$": "$.check.force_chosen", "spares.$": "$.check.spare_nodes",
             "spare_count.$": "States.ArrayLength($.check.spare_nodes)"},
            into="$.drain", then="In: too many forced hangups?"),
        "In: too many forced hangups?": choice(
            [when("$.drain.forces", "NumericGreaterThan", 5, "In: force gave up")], "In: anything to cut?",
            "Bounds the force loop: a candidate that stays unreachable never counts as drained."),
        "In: anything to cut?": choice(
            [when("$.check.to_cut", "NumericGreaterThan", 0, "In: mark chosen drained")], "In: drain wait",
            "None of the nodes to remove could be reached (or all are empty): check again, within the bound."),
        "In: force gave up": failure(
            "Pairscale.DrainDeadline",
            "the drain of fleet {} passed its deadline under policy force, and after 5 rounds of hupall {} "
            "channel(s) are left or candidates are unreachable", FLEET, "$.check.total_channels",
            into="$.error", then=undo),
        "In: mark chosen drained": status_updates(
            "pair chosen for removal", "$.check.force_chosen", "$$.Map.Item.Value", "drained",
            then="In: commit chosen", on_error=undo),
        "In: commit chosen": commit(
            {"updates.$": "$.updates"}, then="In: note calls hung up", on_error=undo,
            comment="Before a call is cut, the pairs chosen for removal are committed to it (drained): from "
                    "here on they go forward, never back into rotation. A run that dies now leaves the removal "
                    "to the next run, which hangs up what is left on them and removes them."),
        "In: note calls hung up": {
            "Type": "Pass", "Comment": "From here a failure undoes only the spares.", "Result": True,
            "ResultPath": "$.select.forced", "Next": "In: force hangups"},
        "In: force hangups": task(
            "drain", {"action": "force", **FENCED, "nodes.$": "$.check.force_nodes",
                      "hupall_cause.$": f"{drain}.hupall_cause"},
            comment="Hangs up only the nodes the run removes (the emptiest k, from check's force_nodes); the "
                    "spares racing beside them keep their calls and go back into rotation.",
            retry=[NODE_UNREACHABLE], then="In: drain wait", catch=caught(undo)),
        "In: any spares?": choice(
            [when("$.check.losers", "NumericGreaterThan", 0, "In: resume spares")], "In: settle candidates"),
        "In: resume spares": resume("$.check.loser_nodes", comment="The spares that lost the race take calls again.",
                                    then="In: settle candidates", catch=caught(undo)),
        "In: settle candidates": each(
            "Builds one commit's updates: winners drained, spares active again.", "$.select.nodes",
            {"pair_id.$": "$$.Map.Item.Value.pair_id", "winners.$": "$.check.winners"}, "Won?", {
                "Won?": {"Type": "Pass", "Parameters": {"pair_id.$": "$.pair_id",
                                                        "won.$": "States.ArrayContains($.winners, $.pair_id)"},
                         "Next": "Winner?"},
                "Winner?": choice([when("$.won", "BooleanEquals", True, "Drained")], "Active again"),
                "Drained": {"Type": "Pass", "Parameters": {"pair_id.$": "$.pair_id", "status": "drained"}, "End": True},
                "Active again": {"Type": "Pass", "Parameters": {"pair_id.$": "$.pair_id", "status": "active"},
                                 "End": True},
            }, then="In: commit settled", on_error=undo),
        "In: commit settled": commit(
            {"updates.$": "$.updates"}, then="In: ansible Start", on_error=undo,
            comment="Winners drained, spares active: the next Terraform run destroys exactly the winners."),
        **build_loop("In: terraform", "scale-in terraform", {"kind": "terraform"},
                     then="In: commit count", on_error=removing),
        **build_loop("In: ansible", "scale_in ansible",
                     {"kind": "ansible", "playbook": "scale_in", "pair_ids.$": "$.check.winners"},
                     then="In: confirm empty", on_error=removing),
        **confirm_empty(removing),
        "In: commit count": commit(
            {"pair_count.$": f"{PLAN}.to", "removes.$": "$.check.winners", "scaled": "in"},
            comment="The new count becomes the truth; the removed pairs' records go; starts the scale-in cooldown.",
            then="In: release", on_error=removing),
        "In: release": release(then="In: report", held="Lock left held: scaled"),
        "In: report": step(
            {"fleet.$": FLEET, "direction": "in", "from.$": f"{PLAN}.from", "to.$": f"{PLAN}.to",
             "pairs_removed.$": "$.check.winners", "spares_resumed.$": "$.check.loser_nodes", "outcome": "scaled",
             "request.$": "$.request"},
            into="$", then="Done"),
        **scale_in_undo(undo, removing),
    }


def confirm_empty(removing):
    """The last look before Terraform destroys the winners: each is paused again and read at
    zero, in a loop that shares the drain's start, limit and force count. A FreeSWITCH restarted
    since its last check forgot its pause (the flags live in memory) and may have taken calls
    (its own ESL client's: Kamailio no longer routes to it); those are waited on, or cut under
    policy force, as in the drain, never destroyed with the node."""
    drain = "$.plan.config.drain"
    winners = "States.JsonToString($.check.winners)"
    return {
        "In: confirm empty": task(
            "drain", {"action": "check", "nodes.$": "$.check.winner_nodes",
                      "remove.$": "States.ArrayLength($.check.winners)", "drain.$": drain,
                      "started_at.$": "$.drain.started_at", "chosen.$": "$.check.winners"},
            comment="Every pair to destroy, read once more after its deregistration: check puts back a pause a "
                    "restart lost, and a node it paused again counts as empty only in a later round.",
            select={"decision.$": "$.Payload.decision", "total_channels.$": "$.Payload.total_channels",
                    "force_nodes.$": "$.Payload.force_nodes",
                    "to_cut.$": "States.ArrayLength($.Payload.force_nodes)"},
            result="$.confirm", retry=[NODE_UNREACHABLE], then="In: confirm decision", catch=caught(removing)),
        "In: confirm decision": choice(
            [when("$.confirm.decision", "StringEquals", "done", "In: terraform Start"),
             when("$.confirm.decision", "StringEquals", "wait", "In: confirm wait"),
             when("$.confirm.decision", "StringEquals", "force", "In: count confirm hangups")],
            "In: calls on removed pairs",
            "Empty: destroy them. Calls came up on them after their drain: wait, or under policy force cut them, "
            "within the drain's own limit."),
        "In: confirm wait": {"Type": "Wait", "SecondsPath": f"{drain}.check_interval_seconds",
                             "Next": "In: confirm heartbeat"},
        "In: confirm heartbeat": heartbeat(
            "The lock stays alive while calls that came up on a removed pair end.",
            then="In: confirm empty", catch=caught(removing)),
        "In: count confirm hangups": step(
            {"started_at.$": "$.drain.started_at", "forces.$": "States.MathAdd($.drain.forces, 1)",
             "chosen.$": "$.drain.chosen"},
            into="$.drain", then="In: too many confirm hangups?"),
        "In: too many confirm hangups?": choice(
            [when("$.drain.forces", "NumericGreaterThan", 5, "In: calls on removed pairs")],
            "In: anything to cut on removed pairs?", "The drain's own bound on hang-up rounds, shared with it."),
        "In: anything to cut on removed pairs?": choice(
            [when("$.confirm.to_cut", "NumericGreaterThan", 0, "In: confirm hangups")], "In: confirm wait"),
        "In: confirm hangups": task(
            "drain", {"action": "force", **FENCED, "nodes.$": "$.confirm.force_nodes",
                      "hupall_cause.$": f"{drain}.hupall_cause"},
            comment="Policy force, past the deadline: the pairs are removed, and their calls with them.",
            retry=[NODE_UNREACHABLE], then="In: confirm wait", catch=caught(removing)),
        "In: calls on removed pairs": failure(
            "Pairscale.DrainDeadline",
            "pairs {} of fleet {} were drained and deregistered, but {} channel(s) came up on them afterwards (a "
            "FreeSWITCH restart forgets its pause) and did not end within the limit of the drain (policy {}, decision "
            "{}), so they were not destroyed", winners, FLEET, "$.confirm.total_channels", f"{drain}.policy",
            "$.confirm.decision", into="$.error", then=removing),
    }


def scale_in_undo(undo, removing):
    """Before any call was cut and before the removal: the candidates take calls again and the
    records are rolled back. Once calls were cut under force: only the spares go back; the
    pairs chosen for removal are left to the next run, which finishes their removal. After the
    removal began: nothing is undone, and the next run finishes it."""
    winners = "States.JsonToString($.check.winners)"
    chosen = "States.JsonToString($.drain.chosen)"
    return {
        undo: choice(
            [when("$.select.forced", "BooleanEquals", True, "In: undo, any spares?")],
            "In: undo, resume candidates",
            "A pair whose calls were cut never goes back into rotation: after a forced hangup only the "
            "spares are undone."),
        "In: undo, any spares?": choice(
            [when("$.drain.spare_count", "NumericGreaterThan", 0, "In: undo, resume spares")],
            "In: undo, roll back all but the chosen"),
        "In: undo, resume spares": resume(
            "$.drain.spares", then="In: undo, roll back all but the chosen",
            catch=caught("In: undo, roll back all but the chosen", into="$.undo_error"),
            comment="The spares take calls again. If one cannot be reached, the next run puts it back."),
        "In: undo, roll back all but the chosen": task(
            "state", {"action": "rollback_keeping_removal", **FENCED},
            comment="Every record back as it was, except the pairs chosen for removal (drained): the run "
                    "stays unfinished, for the next run to remove them.",
            then="In: failed after hangups", catch=caught("In: failed after hangups", into="$.undo_error")),
        "In: failed after hangups": failure(
            "$.error.Error",
            "Scale-in of fleet {} failed after it hung up the calls of pairs {} (drain policy force), so those "
            "pairs go forward, not back: they stay out of rotation, and the next run of this fleet hangs up "
            "what is left on them, deregisters and destroys them, and commits the count. The other "
            "candidates take calls again (any this run could not reach, the next run puts back). Left to do: "
            "nothing by hand; start the next run (a dry run does only this). The failure: {}",
            FLEET, chosen, "$.error.Cause", then=STUCK),
        "In: undo, resume candidates": resume("$.select.nodes", then="In: undo, roll back",
                     catch=caught("In: undo failed at resume", into="$.undo_error"),
                     comment="Every candidate takes calls again (idempotent: a node never paused is only "
                             "re-enabled)."),
        "In: undo, roll back": rollback(then="In: undone", failed="In: undo failed at rollback"),
        "In: undone": failure(
            "$.error.Error",
            "Scale-in of fleet {} failed before any pair was destroyed and was undone: the candidates take "
            "calls again and the records were rolled back. Nothing is left to do. The failure: {}",
            FLEET, "$.error.Cause"),
        "In: undo failed at resume": failure(
            "Pairscale.Internal",
            "Scale-in of fleet {} failed ({}: {}) and resuming the candidates failed too ({}: {}). Left to "
            "do: run the drain action resume for pairs {} (they may still refuse calls), roll back run {} "
            "with the state action rollback, then validate the fleet",
            FLEET, *ERROR, *UNDO_ERROR, "States.JsonToString($.select.nodes[*].pair_id)", RUN, then=STUCK),
        "In: undo failed at rollback": failure(
            "Pairscale.Internal",
            "Scale-in of fleet {} failed ({}: {}); the candidates take calls again but the rollback failed "
            "({}: {}). Left to do: roll back run {} with the state action rollback (records may still say "
            "draining or drained), then validate the fleet",
            FLEET, *ERROR, *UNDO_ERROR, RUN, then=STUCK),
        removing: failure(
            "$.error.Error",
            "Scale-in of fleet {} failed after the removal of drained pairs {} began (ansible deregisters "
            "them from the dispatcher, then terraform destroys them), so it is finished, not rolled back; "
            "those pairs are out of rotation. Left to do: nothing by hand; the next run of this fleet (a dry "
            "run does only this) hangs up any call still on them, runs the ansible scale_in playbook for them "
            "and the terraform build, then commits pair_count {}. The failure: {}",
            FLEET, winners, f"{PLAN}.to", "$.error.Cause", then=STUCK),
    }


def endings():
    """Where every failure ends: the lock released (or said to be held), then a Fail state."""
    return {
        "Failed before any change": failure(
            "$.error.Error", "Fleet {} was not scaled and nothing was changed. {}", FLEET, "$.error.Cause"),
        "Release after failure": release(then="Fail", held="Lock left held after failure"),
        "Lock left held after failure": failure(
            "$.failure.Error", "{} The scaling lock could not be released either ({}): the " + NEXT_RUN_BREAKS_IT + ".",
            "$.failure.Cause", "$.release_error.Cause", then="Fail"),
        "Lock left held: scaled": failure(
            "Pairscale.Aws",
            "Fleet {} was scaled from {} to {} pairs, but the scaling lock was not released: {}. The "
            + NEXT_RUN_BREAKS_IT, FLEET, f"{PLAN}.from", f"{PLAN}.to", "$.release_error.Cause", then="Fail"),
        "Fail": fail("Every failure with its compensation done (or not needed) ends here; $.failure names what "
                     "happened.", "$.failure.Error", "$.failure.Cause"),
        STUCK: release(
            then="Fail: compensation incomplete", held="Lock left held after compensation failure", finished=False),
        "Lock left held after compensation failure": failure(
            "$.failure.Error",
            "{}. The scaling lock could not be released either ({}): break it with the lock action "
            "break_stale once the fleet is repaired.", "$.failure.Cause", "$.release_error.Cause",
            then="Fail: compensation incomplete"),
        "Fail: compensation incomplete": fail(
            "The run failed and undoing it failed too: $.failure says what is left to do by hand.",
            "$.failure.Error", "$.failure.Cause"),
        "Done": {"Type": "Succeed"},
    }


def machine():
    return {
        "Comment": "pairscale: scale one fleet out or in. One machine for every request (manual target, manual "
                   "delta, CloudWatch alarm event); the plan decides the direction. See docs/architecture.md.",
        "QueryLanguage": "JSONPath",
        "StartAt": "Init",
        "States": {**start(), **scale_out(), **scale_in(), **endings()},
    }


def render():
    return json.dumps(machine(), indent=2, ensure_ascii=False) + "\n"


def main(argv):
    text = render()
    if "--check" not in argv:
        DEFINITION.write_text(text)
        return 0
    committed = DEFINITION.read_text() if DEFINITION.exists() else ""
    if committed == text:
        print(f"{DEFINITION.name} is what {Path(__file__).name} writes")
        return 0
    diff = difflib.unified_diff(committed.splitlines(), text.splitlines(), f"committed {DEFINITION.name}",
                                f"written by {Path(__file__).name}", lineterm="", n=1)
    print("\n".join(list(diff)[:60]))
    print(f"FAIL {DEFINITION.name} is not what {Path(__file__).name} writes: edit the source, then run "
          f"python3 statemachines/{Path(__file__).name}")
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
