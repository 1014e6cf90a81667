"""Every IAM policy the orchestrator module renders, linted with parliament.

    python iam_lint.py OUTPUTS_JSON

OUTPUTS_JSON is `terraform output -json` of tests/terraform after its apply to the emulator
(tests/checks/60-terraform.sh): orchestrator.iam_policies holds, per role, its inline policy
and its trust policy exactly as Terraform rendered them, and deploy_access.policy_json the
deploy role's policy (terraform/modules/deploy-access); the inline policies are linted. Run
with the parliament venv (tests/requirements/parliament.txt). Every finding fails unless
ALLOWED names it (role, finding, statement) with a reason; an ALLOWED entry that matches
nothing fails too, so the list never outlives what it excuses.

Besides parliament's findings, one rule of this file: TAG_ESCALATION (tag_escalations()), a
grant by a resource tag (aws:ResourceTag/K) in a policy that can also write K onto a resource
that does not carry it yet: the principal could tag a resource it was never meant to reach and
then use the grant on it. tests/terraform/test_iam_lint.py holds the rule to that.
"""

import fnmatch
import json
import re
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
    # (parliament names no statement when two of a policy's statements hold such actions.)
    ("build-terraform", "PERMISSIONS_MANAGEMENT_ACTIONS", None):
        "iam:PassRole of exactly the three roles the pairs run with (node profile, ESL client task and "
        "execution: PassPairRoles), and kms:CreateGrant on the fleet key only through EC2 and only for an "
        "AWS resource (NodeVolumesKeyGrant: EC2 grants itself the key for a node's encrypted volume)",
    ("build-terraform", "PRIVILEGE_ESCALATION", None):
        "RunInstances with PassRole is the build's job: the only role it can pass to an instance is the "
        "node's, which may only open Session Manager channels and register its own tagged instance",
    ("build-ansible", "PERMISSIONS_MANAGEMENT_ACTIONS", "BuildNetworkInterfacePermission"):
        "CreateNetworkInterfacePermission only for codebuild.amazonaws.com, only in the fleet's subnets "
        "(CodeBuild in a VPC)",
    ("state-machine", "PERMISSIONS_MANAGEMENT_ACTIONS", "LogDelivery"):
        "logs:PutResourcePolicy is how Step Functions delivers execution logs to CloudWatch Logs; "
        "it accepts only * (Step Functions developer guide)",
    # The deploy role (terraform/modules/deploy-access/policy.tf): it applies the orchestrator
    # root, so it makes what the orchestrator is made of (functions, roles, policies, buckets),
    # each held to the orchestrators' name prefix.
    ("deploy", "PERMISSIONS_MANAGEMENT_ACTIONS", None):
        "the orchestrator's roles and their inline policies, its bucket policies, its ECR repository's "
        "policy and its KMS key (whose policy is set at creation): all named by the name prefix, "
        "iam:PassRole of those roles to the orchestrator's services only",
    ("deploy", "PRIVILEGE_ESCALATION", "PassOrchestratorRoles"):
        "deploying the orchestrator's functions is passing them their roles: only roles named by the "
        "name prefix, only to the orchestrator's services, onto functions named by the prefix",
    ("deploy", "PRIVILEGE_ESCALATION", None):
        "lambda:UpdateFunctionCode of the functions it deploys (named by the name prefix) is its job",
    ("deploy", "CREDENTIALS_EXPOSURE", "EcrLogin"):
        "ecr:GetAuthorizationToken is the docker login of the build image's push; it takes no resource, "
        "and the push is held to the fleets' repositories (OrchestratorResources)",
    ("deploy", "RESOURCE_STAR", "Describe"):
        "the describe and list calls of a Terraform refresh that policy.tf's Describe statement lists as "
        "not scoped by resource",
    ("deploy", "RESOURCE_MISMATCH", "OrchestratorResources"):
        "service:* on resources named by the prefix: actions on other resource types (Step Functions "
        "activities, ...) match none of the statement's resources and are granted nothing",
    ("deploy", "RESOURCE_MISMATCH", "OrchestratorBuckets"):
        "s3:* on buckets named by the prefix: actions on other resource types (access grants, access "
        "points, jobs, ...) match none of the statement's resources and are granted nothing",
    ("deploy", "RESOURCE_MISMATCH", "OrchestratorLogsAlarmsParameters"):
        "logs:*, cloudwatch:*, ssm:* on resources named by the prefix: actions on other resource types "
        "(ops items, documents, ...) match none of the statement's resources and are granted nothing",
    ("deploy", "RESOURCE_MISMATCH", "FleetKeyAliases"):
        "the alias half of CreateAlias/DeleteAlias/UpdateAlias; the key half is in the fleet key's own "
        "policy (the orchestrator module's key_administrator_arns)",
    ("deploy", "RESOURCE_MISMATCH", "CreateSecurityGroupInVpc"):
        "CreateSecurityGroup's group is in CreateFleetSecurityGroup, with the fleet tag required",
}

# Roles the modules must render: a role missing from the output is a failure, not a pass.
# "deploy" is terraform/modules/deploy-access's role; the others are the orchestrator module's.
EXPECTED_ROLES = {"lambda-lock", "lambda-state", "lambda-drain", "lambda-build", "lambda-policy", "build-terraform",
                  "build-ansible", "state-machine", "scheduler", "esl-client-execution", "esl-client",
                  "freeswitch", "deploy"}


# --- TAG_ESCALATION -----------------------------------------------------------------------
#
# A grant by tag (aws:ResourceTag/K, or a service's own <service>:ResourceTag/K) is only as
# narrow as the power to write K. The rule, per policy and per service:
#   - a *gate* is an Allow whose condition requires K on the resource (a positive test of
#     ResourceTag/K: StringEquals, StringLike, ..., or Null false), for actions other than
#     writing tags;
#   - a *writer* is an Allow of a tag-writing action (parliament's access level "Tagging",
#     not an Untag/Delete/Remove) that can put K on a resource without K: it is not itself
#     held to resources carrying K, not held to the call that creates the resource (a
#     <service>:CreateAction condition, as EC2 sets for tags written by RunInstances or
#     CreateSecurityGroup), and not kept from writing K (Null aws:RequestTag/K true, or
#     aws:TagKeys limited to other keys); and no Deny of that action on resources without K
#     (Null ResourceTag/K true) covers it;
#   - a gate and a writer of the same service and tag, on resources that can overlap, are a
#     finding: tag a resource that lacks K, then use the gate on it.
# A Deny-guarded writer passes this rule, but note that for KMS such a Deny also refuses the
# tags of CreateKey (terraform/modules/deploy-access/policy.tf says why).

_PRIVILEGES = {(svc["prefix"], p["privilege"].lower()): p["access_level"]
               for svc in parliament.iam_definition for p in svc["privileges"]}
_RESOURCE_TAG = re.compile(r"^[a-z0-9-]+:resourcetag/(.+)$", re.IGNORECASE)


def _actions(st):
    """(service, action) pairs a statement names, wildcards expanded with parliament's table."""
    if "NotAction" in st:
        names = {a.lower() for a in _list(st["NotAction"])}
        return {(svc["prefix"], p["privilege"]) for svc in parliament.iam_definition for p in svc["privileges"]
                if f'{svc["prefix"]}:{p["privilege"]}'.lower() not in names}
    out = set()
    for a in _list(st.get("Action")):
        for e in parliament.expand_action(a, raise_exceptions=False):
            out.add((e["service"], e["action"]))
    return out


def _is_tag_write(service, action):
    return (_PRIVILEGES.get((service, action.lower())) == "Tagging"
            and not action.lower().startswith(("untag", "delete", "remove")))


def _conditions(st):
    """(operator, key, values) of a statement's Condition, keys lower case."""
    for op, kv in (st.get("Condition") or {}).items():
        for k, v in kv.items():
            yield op, k.lower(), [str(x).lower() for x in _list(v)]


def _requires(op, values):
    """Whether a condition with this operator holds only when its key is present."""
    base = op.lower().split(":")[-1]
    if base == "null":
        return values == ["false"]
    return not (base.startswith(("stringnot", "arnnot")) or base.endswith("ifexists"))


def _gated_tags(st):
    """Tag keys (lower case) a statement requires on the resource."""
    return {m.group(1) for op, k, vals in _conditions(st)
            if (m := _RESOURCE_TAG.match(k)) and _requires(op, vals)}


def _resources(st):
    return ["*"] if "NotResource" in st else (_list(st.get("Resource")) or ["*"])


def _overlap(a, b):
    return any(parliament.is_glob_match(x, y) for x in a for y in b)


def _can_write(st, tag):
    """Whether an Allow of a tag-writing action may put `tag` on a resource that lacks it."""
    if tag in _gated_tags(st):
        return False
    for op, k, vals in _conditions(st):
        base = op.lower().split(":")[-1]
        if k.endswith(":createaction") and _requires(op, vals):
            return False
        if k == f"aws:requesttag/{tag}" and base == "null" and vals == ["true"]:
            return False
        if k == "aws:tagkeys" and op.lower().startswith("forallvalues:"):
            if base in ("stringnotequals", "stringnotlike") and any(fnmatch.fnmatchcase(tag, v) for v in vals):
                return False
            if base in ("stringequals", "stringlike") and not any(fnmatch.fnmatchcase(tag, v) for v in vals):
                return False
    return True


def _denied(stmts, service, action, resources, tag):
    """Whether a Deny refuses this tag write wherever the resource lacks `tag`."""
    for d in stmts:
        if d.get("Effect") != "Deny" or (service, action) not in _actions(d):
            continue
        conds = list(_conditions(d))
        if (len(conds) == 1 and conds[0][0].lower() == "null" and conds[0][2] == ["true"]
                and _RESOURCE_TAG.match(conds[0][1]) and _RESOURCE_TAG.match(conds[0][1]).group(1) == tag
                and all(any(fnmatch.fnmatchcase(r, dr) for dr in _resources(d)) for r in resources)):
            return True
    return False


def tag_escalations(doc):
    """TAG_ESCALATION findings of one policy document: dicts with the gate's Sid, the writer's
    Sid, the service, the tag key and the actions the gate grants."""
    stmts = [st for st in _list(doc.get("Statement")) if isinstance(st, dict)]
    allows = [st for st in stmts if st.get("Effect") == "Allow"]
    found = []
    for gate in allows:
        tags = _gated_tags(gate)
        if not tags:
            continue
        by_service = {}
        for svc, act in _actions(gate):
            if not _is_tag_write(svc, act):
                by_service.setdefault(svc, set()).add(act)
        for tag in sorted(tags):
            for svc, granted in sorted(by_service.items()):
                for w in allows:
                    writes = sorted(a for s2, a in _actions(w) if s2 == svc and _is_tag_write(s2, a))
                    if not writes or not _can_write(w, tag) or not _overlap(_resources(w), _resources(gate)):
                        continue
                    if all(_denied(stmts, svc, a, _resources(w), tag) for a in writes):
                        continue
                    found.append({"sid": gate.get("Sid"), "writer": w.get("Sid"), "service": svc, "tag": tag,
                                  "writes": writes, "actions": sorted(granted)})
    return found


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
    roles = dict(outputs["orchestrator"]["value"]["iam_policies"])
    if "deploy_access" in outputs:
        roles["deploy"] = {"policy": outputs["deploy_access"]["value"]["policy_json"]}
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
            for e in tag_escalations(doc):
                key = (role, "TAG_ESCALATION", e["sid"])
                where = f"{role} {kind} statement {e['sid'] or '?'}"
                if key in ALLOWED:
                    used.add(key)
                    print(f"ok   {where}: TAG_ESCALATION allowed: {ALLOWED[key]}")
                else:
                    print(f"FAIL {where}: TAG_ESCALATION grants {e['service']}:{{{','.join(e['actions'])}}} by the tag "
                          f"{e['tag']!r}, which statement {e['writer'] or '?'} can write ({', '.join(e['writes'])}) "
                          "onto resources that do not carry it")
                    bad += 1
    for key in sorted(set(ALLOWED) - used, key=str):
        print(f"FAIL allow-list entry {key} matched no finding: remove it")
        bad += 1
    if bad:
        print(f"{bad} finding(s)", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
