"""Every IAM policy the orchestrator module renders, linted with parliament.

    python iam_lint.py OUTPUTS_JSON

OUTPUTS_JSON is `terraform output -json` of tests/terraform after its apply to the emulator
(tests/checks/60-terraform.sh): orchestrator.iam_policies holds, per role, its inline policy
and its trust policy exactly as Terraform rendered them; the inline policies are linted. Run with the parliament venv
(tests/requirements/parliament.txt). Every finding fails unless ALLOWED names it (role,
finding, statement) with a reason; an ALLOWED entry that matches nothing fails too, so the
list never outlives what it excuses.
"""

import json
import sys
from pathlib import Path

import parliament

# The community auditors' findings (permissions management, privilege escalation, credentials
# exposure, sensitive access, ...) are defined in their own config, as `parliament
# --include-community-auditors` loads it.
parliament.override_config(str(Path(parliament.__file__).parent / "community_auditors" / "config_override.yaml"))

# (role, parliament issue, statement Sid) -> why it is accepted. Nothing else passes.
ALLOWED = {
    # parliament wants every resource type an action requires in one statement; IAM takes the
    # union of the statements. RunInstances is split on purpose: what it creates (instance,
    # volume, interface) must carry the fleet tag, what it launches from (image, subnet,
    # groups) exists already and carries no tag of the request.
    ("build-terraform", "RESOURCE_MISMATCH", "LaunchTaggedNodes"):
        "RunInstances' image, subnet and groups are in LaunchFrom",
    ("build-terraform", "RESOURCE_MISMATCH", "LaunchFrom"):
        "RunInstances' instance, volume and interface are in LaunchTaggedNodes, with the fleet tag required",
    ("build-terraform", "RESOURCE_MISMATCH", "SecurityGroupsInVpc"):
        "CreateSecurityGroup's group is in CreateFleetSecurityGroups, with the fleet tag required",
    ("build-terraform", "RESOURCE_MISMATCH", "CreateFleetSecurityGroupRules"):
        "the rules' group is in ManageFleetResources, only a group with the fleet tag",
    ("lambda-lock", "RESOURCE_MISMATCH", "LockHolderExecution"):
        "the scaling state machine is a STANDARD workflow: its executions have execution ARNs, never express ones",
    ("lambda-policy", "RESOURCE_MISMATCH", "ReadRuns"):
        "the scaling state machine is a STANDARD workflow: its executions have execution ARNs, never express ones",
    ("lambda-policy", "RESOURCE_MISMATCH", "StartAndListRuns"):
        "ListExecutions of a state machine takes the state machine's ARN (a Map Run's ARN lists that Map Run's "
        "child executions, which this STANDARD machine never starts)",
    # "*" where AWS or the service's own check leaves no other choice.
    ("lambda-drain", "RESOURCE_STAR", "VpcNetworkInterfaces"):
        "Lambda creates a VPC function's interfaces in its role's name and checks the role with an "
        "unscoped simulation when the function is created (AWSLambdaVPCAccessExecutionRole's actions)",
    ("build-ansible", "RESOURCE_STAR", "BuildNetworkInterfaces"):
        "CodeBuild creates the build's interface in the role's name before the interface exists "
        "(the CodeBuild user guide's VPC policy grants these on *)",
    # Actions that manage permissions, each held to what it must reach.
    ("build-terraform", "PERMISSIONS_MANAGEMENT_ACTIONS", "PassPairRoles"):
        "iam:PassRole of exactly the three roles the pairs run with (node profile, ESL client task and execution)",
    ("build-terraform", "PRIVILEGE_ESCALATION", None):
        "RunInstances with PassRole is the build's job: the only role it can pass to an instance is the "
        "node's, which may only open Session Manager channels and register its own tagged instance",
    ("build-ansible", "PERMISSIONS_MANAGEMENT_ACTIONS", "BuildNetworkInterfacePermission"):
        "CreateNetworkInterfacePermission only for codebuild.amazonaws.com, only in the fleet's subnets "
        "(CodeBuild in a VPC)",
    ("state-machine", "PERMISSIONS_MANAGEMENT_ACTIONS", "LogDelivery"):
        "logs:PutResourcePolicy is how Step Functions delivers execution logs to CloudWatch Logs; "
        "it accepts only * (Step Functions developer guide)",
}

# Roles the module must render: a role missing from the output is a failure, not a pass.
EXPECTED_ROLES = {"lambda-lock", "lambda-state", "lambda-drain", "lambda-build", "lambda-policy", "build-terraform",
                  "build-ansible", "state-machine", "scheduler", "esl-client-execution", "esl-client",
                  "freeswitch"}


def sid_of(doc, text, finding):
    """The Sid of the statement a finding is about: by the line parliament names (Terraform
    renders one statement object per "    {" line), or by the actions it names."""
    loc = finding.location or {}
    for key in ("Sid", "sid"):
        if loc.get(key):
            return loc[key]
    starts = [i + 1 for i, line in enumerate(text.splitlines()) if line == "    {"]
    stmts = doc.get("Statement", [])
    stmts = stmts if isinstance(stmts, list) else [stmts]
    if loc.get("line") in starts and len(starts) == len(stmts):
        return stmts[starts.index(loc["line"])].get("Sid")
    acts = loc.get("actions") or []
    if isinstance(acts, str):
        acts = [acts]
    hits = [st.get("Sid") for st in stmts
            if acts and set(a.lower() for a in acts) & set(a.lower() for a in _list(st.get("Action")))]
    if len(hits) == 1:
        return hits[0]
    if len(stmts) == 1:
        return stmts[0].get("Sid")
    return None


def _list(v):
    return v if isinstance(v, list) else ([] if v is None else [v])


def main():
    outputs = json.load(open(sys.argv[1], encoding="utf-8"))
    roles = outputs["orchestrator"]["value"]["iam_policies"]
    bad, used = 0, set()
    missing = EXPECTED_ROLES - set(roles)
    for r in sorted(missing):
        print(f"FAIL role {r} is not in the module's iam_policies output")
        bad += 1
    for role, docs in sorted(roles.items()):
        # The inline policy only: parliament reads identity policies, and a trust policy (no
        # Resource, a Principal) is malformed to it.
        for kind in ("policy",):
            text = docs[kind]
            doc = json.loads(text)
            pol = parliament.analyze_policy_string(text, ignore_private_auditors=True,
                                                   include_community_auditors=True)
            findings = [parliament.enhance_finding(f) for f in pol.findings]
            n = len(_list(doc.get("Statement")))
            if not findings:
                print(f"ok   {role} {kind}: {n} statement(s), no findings")
            for f in findings:
                sid = sid_of(doc, text, f)
                key = (role, f.issue, sid) if (role, f.issue, sid) in ALLOWED else None
                where = f"{role} {kind} statement {sid or '?'}"
                if key:
                    used.add(key)
                    print(f"ok   {where}: {f.issue} ({f.severity}) allowed: {ALLOWED[key]}")
                else:
                    print(f"FAIL {where}: {f.issue} ({f.severity}) {f.title}: {f.detail} {f.location}")
                    bad += 1
    for key in sorted(set(ALLOWED) - used, key=str):
        print(f"FAIL allow-list entry {key} matched no finding: remove it")
        bad += 1
    if bad:
        print(f"{bad} finding(s)", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
