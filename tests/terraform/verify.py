"""Checks what tests/terraform created in the emulator, with boto3 (from the moto venv).

    python verify.py OUTPUTS_JSON
OUTPUTS_JSON is `terraform output -json`. Prints one line per failed expectation and exits 1
if there was any.
"""

import json
import sys
from pathlib import Path

import boto3

outputs = {k: v["value"] for k, v in json.load(open(sys.argv[1], encoding="utf-8")).items()}
orch = outputs["orchestrator"]
pairs = outputs["pairs"]
FLEET, NAME = "test", "ps-test"
# The warm pool's pairs (their nodes stopped, no ESL client) and the pairs that serve.
warm = sorted(pid for pid, p in pairs.items() if p.get("warm"))
serving = sorted(pid for pid, p in pairs.items() if not p.get("warm"))
failures = []


def expect(what, cond):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures.append(what)


def tags_of(items, key="Key", value="Value"):
    return {t[key]: t[value] for t in items or []}


# DynamoDB: the state table.
ddb = boto3.client("dynamodb")
table = ddb.describe_table(TableName=orch["table_name"])["Table"]
expect("table keys pk (HASH) + sk (RANGE)",
       {(k["AttributeName"], k["KeyType"]) for k in table["KeySchema"]} == {("pk", "HASH"), ("sk", "RANGE")})
expect("table is PAY_PER_REQUEST", table.get("BillingModeSummary", {}).get("BillingMode") == "PAY_PER_REQUEST")
expect("table SSE is KMS", table.get("SSEDescription", {}).get("SSEType") == "KMS")
ttl = ddb.describe_time_to_live(TableName=orch["table_name"])["TimeToLiveDescription"]
expect("table TTL on 'ttl'", ttl.get("AttributeName") == "ttl" and ttl.get("TimeToLiveStatus") == "ENABLED")
pitr = ddb.describe_continuous_backups(TableName=orch["table_name"])["ContinuousBackupsDescription"]
expect("table PITR enabled",
       pitr["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"] == "ENABLED")
# The test root turns deletion protection off (it destroys the table); the module's default,
# on, is checked on envs/example by tests/checks/62-terraform-contract.sh.
expect("state table deletion protection as the root sets it (off)",
       table.get("DeletionProtectionEnabled") is False and orch["state_table_deletion_protection"] is False)
lock = ddb.describe_table(TableName=orch["tf_lock_table"])["Table"]
expect("tf lock table keyed on LockID", lock["KeySchema"] == [{"AttributeName": "LockID", "KeyType": "HASH"}])

# KMS: the deploy role administers the fleet's key through the key's own policy
# (key_administrator_arns), its IAM policy granting no key by tag.
kms = boto3.client("kms")
key_policy = json.loads(kms.get_key_policy(KeyId=orch["kms_key_arn"], PolicyName="default")["Policy"])
admins = [st for st in key_policy["Statement"] if st.get("Sid") == "KeyAdministrators"]
expect("the key policy names the deploy role as the key's administrator",
       len(admins) == 1 and admins[0].get("Principal") == {"AWS": outputs["deploy_access"]["role_arn"]})

# SSM parameters.
ssm = boto3.client("ssm")
names = orch["ssm_parameter_names"]
expect("pair_count parameter path", names["pair_count"] == f"/pairscale/{FLEET}/pair_count")
pc = ssm.get_parameter(Name=names["pair_count"])["Parameter"]
expect("pair_count is a plain integer String counting the serving pairs",
       pc["Type"] == "String" and pc["Value"] == str(len(serving)))
cfg = ssm.get_parameter(Name=names["config"])["Parameter"]
expect("config holds exactly the module's fleet_config_json", cfg["Value"] == orch["fleet_config_json"])
steps = json.loads(cfg["Value"]).get("alarm_steps", {})
expect("config alarm_steps: the module's alarms by name (scale-in negative) plus the root's own",
       steps == {f"{NAME}-channels-per-pair-high": 1, f"{NAME}-channels-per-pair-low": -1,
                 f"{NAME}-busiest-pair-high": 2, "external-alarm": -1})
pw = ssm.get_parameter(Name=names["esl_password"], WithDecryption=True)["Parameter"]
expect("esl_password is a SecureString of 32 chars", pw["Type"] == "SecureString" and len(pw["Value"]) == 32)
for secret in ("dispatcher_db_password", "freeswitch_repo_token"):
    p = ssm.get_parameter(Name=names[secret], WithDecryption=True)["Parameter"]
    expect(f"{secret} is a SecureString under {FLEET}'s path",
           p["Type"] == "SecureString" and names[secret] == f"/pairscale/{FLEET}/{secret}")

# The dispatcher database's CA bundle (tests/terraform/main.tf gives one of over 4,096
# characters): a String parameter of the Advanced tier, holding the bundle as given.
CA_PEM = (Path(__file__).resolve().parent.parent / "fixtures/dispatcher-db-ca-bundle.pem").read_text(encoding="utf-8")
ca_name = names.get("dispatcher_db_ca")
expect("dispatcher_db_ca parameter path", ca_name == f"/pairscale/{FLEET}/dispatcher_db_ca")
ca = ssm.get_parameter(Name=ca_name)["Parameter"] if ca_name else {}
ca_tier = [p.get("Tier") for p in ssm.describe_parameters(
    ParameterFilters=[{"Key": "Name", "Values": [ca_name]}])["Parameters"]] if ca_name else []
expect(f"dispatcher_db_ca is a String holding the bundle, Advanced ({ca.get('Type')}, {ca_tier})",
       ca.get("Type") == "String" and ca.get("Value") == CA_PEM and ca_tier == ["Advanced"])
param_arn = {k: ssm.get_parameter(Name=n)["Parameter"]["ARN"] for k, n in names.items() if n}

# Lambdas.
lam = boto3.client("lambda")
# What the module declares (tests/checks/62-terraform-contract.sh holds these against the Rust
# code); here: that the functions really carry exactly that, with these values.
expected_env = {fn: set(env) for fn, env in orch["lambda_environment"].items()}
expect("five functions", set(expected_env) == {"lock", "state", "drain", "build", "policy"})
for fn, env_keys in expected_env.items():
    conf = lam.get_function(FunctionName=f"{NAME}-{fn}")["Configuration"]
    expect(f"{fn}: provided.al2023 / arm64 / bootstrap",
           conf["Runtime"] == "provided.al2023" and conf["Architectures"] == ["arm64"]
           and conf["Handler"] == "bootstrap")
    env = conf.get("Environment", {}).get("Variables", {})
    expect(f"{fn}: environment is exactly {sorted(env_keys)}", set(env) == env_keys)
    expect(f"{fn}: environment values as declared", env == orch["lambda_environment"][fn])
    expect(f"{fn}: tracing Active", conf.get("TracingConfig", {}).get("Mode") == "Active")
    if "LoggingConfig" in conf:  # not every emulator version echoes it back
        expect(f"{fn}: JSON logs", conf["LoggingConfig"].get("LogFormat") == "JSON")
    conc = lam.get_function_concurrency(FunctionName=f"{NAME}-{fn}").get("ReservedConcurrentExecutions")
    expect(f"{fn}: reserved concurrency set", isinstance(conc, int) and conc >= 1)
drain = lam.get_function(FunctionName=f"{NAME}-drain")["Configuration"]
drain_env = drain.get("Environment", {}).get("Variables", {})
expect("drain: secrets by parameter name, the database URL without a password",
       drain_env.get("PAIRSCALE_ESL_PASSWORD_PARAM") == names["esl_password"]
       and drain_env.get("PAIRSCALE_DISPATCHER_DB_PASSWORD_PARAM") == names["dispatcher_db_password"]
       and drain_env.get("PAIRSCALE_DISPATCHER_DB_URL_BASE") == "postgres://kamailio@10.42.9.5:5432/kamailio")
expect("drain: the database over TLS, verify-full, its CA bundle by parameter name",
       drain_env.get("PAIRSCALE_DISPATCHER_DB_SSLMODE") == "verify-full"
       and drain_env.get("PAIRSCALE_DISPATCHER_DB_CA_PARAM") == ca_name)
expect("drain is in the VPC with the orchestrator SG",
       drain.get("VpcConfig", {}).get("SecurityGroupIds") == [orch["orchestrator_security_group_id"]])
lock_conf = lam.get_function(FunctionName=f"{NAME}-lock")["Configuration"]
expect("lock is not in the VPC", not lock_conf.get("VpcConfig", {}).get("SubnetIds"))
expect("lock reserved concurrency is small",
       lam.get_function_concurrency(FunctionName=f"{NAME}-lock")["ReservedConcurrentExecutions"] <= 2)

# State machines.
sfn = boto3.client("stepfunctions")
fn_arns = set(orch["function_arns"].values())
# The machine's tasks run four of them; the policy function starts the machine instead.
machine_fn_arns = {a for k, a in orch["function_arns"].items() if k != "policy"}
for action, arn in orch["state_machine_arns"].items():
    sm = sfn.describe_state_machine(stateMachineArn=arn)
    definition = json.loads(sm["definition"])
    used = {s["Parameters"]["FunctionName"] for s in definition["States"].values()
            if "FunctionName" in s.get("Parameters", {})}
    expect(f"{action}: placeholders rendered to the four function ARNs", used == machine_fn_arns)
    expect(f"{action}: logging ALL", sm.get("loggingConfiguration", {}).get("level") == "ALL")
    expect(f"{action}: X-Ray tracing", sm.get("tracingConfiguration", {}).get("enabled") is True)

# IAM: the state machine may invoke exactly the four functions.
iam = boto3.client("iam")
doc = iam.get_role_policy(RoleName=f"{NAME}-state-machine", PolicyName="pairscale-state-machine")["PolicyDocument"]
invoke = [s for s in doc["Statement"] if s.get("Sid") == "InvokePairscaleFunctions"][0]
res = invoke["Resource"] if isinstance(invoke["Resource"], list) else [invoke["Resource"]]
expect("state machine role invokes exactly the four functions", set(res) == machine_fn_arns)
for fn in expected_env:
    doc = iam.get_role_policy(RoleName=f"{NAME}-{fn}", PolicyName=f"pairscale-{fn}")["PolicyDocument"]
    actions = [a for s in doc["Statement"] for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])]
    expect(f"{fn} role: no wildcard actions", not any(a == "*" or a.endswith(":*") for a in actions))
    declared = {a for st in orch["lambda_permissions"][fn] for a in st["actions"]}
    expect(f"{fn} role: exactly the actions the module declares", set(actions) == declared)

# The parameters each role may read: the drain function its configuration, its two secrets
# and the CA bundle; the Ansible build (CodeBuild resolving its PARAMETER_STORE variables) its
# three secrets and the CA bundle. Nothing else, and no wildcard.


def parameters_read(doc, action):
    return {r for st in doc["Statement"] if st.get("Effect") == "Allow"
            and action in ([st["Action"]] if isinstance(st["Action"], str) else st["Action"])
            for r in ([st["Resource"]] if isinstance(st["Resource"], str) else st["Resource"])}


drain_doc = iam.get_role_policy(RoleName=f"{NAME}-drain", PolicyName="pairscale-drain")["PolicyDocument"]
want = {param_arn[k] for k in ("config", "esl_password", "dispatcher_db_password", "dispatcher_db_ca")}
got = parameters_read(drain_doc, "ssm:GetParameter")
expect(f"drain role reads exactly its configuration, its two secrets and the CA bundle ({sorted(got - want)} beyond)",
       got == want)
ansible_doc = iam.get_role_policy(RoleName=f"{NAME}-build-ansible", PolicyName="pairscale-build-ansible")["PolicyDocument"]
want = {param_arn[k] for k in ("esl_password", "dispatcher_db_password", "freeswitch_repo_token", "dispatcher_db_ca")}
got = parameters_read(ansible_doc, "ssm:GetParameters")
expect(f"Ansible build role resolves exactly its three secrets and the CA bundle ({sorted(got - want)} beyond)",
       got == want)

# EventBridge: one rule per alarm, evaluating the fleet's policy with the event's time and the
# whole event.
ev = boto3.client("events")
policy_arn = [a for a in fn_arns if a.endswith(f":{NAME}-policy")]
for key, alarm in orch["alarm_names"].items():
    rule = ev.describe_rule(Name=alarm)
    pattern = json.loads(rule["EventPattern"])
    expect(f"rule {key}: CloudWatch alarm state change of {alarm}",
           pattern["source"] == ["aws.cloudwatch"]
           and pattern["detail-type"] == ["CloudWatch Alarm State Change"]
           and pattern["detail"]["alarmName"] == [alarm])
    targets = ev.list_targets_by_rule(Rule=alarm)["Targets"]
    tmpl = targets[0].get("InputTransformer", {}).get("InputTemplate", "") if targets else ""
    paths = targets[0].get("InputTransformer", {}).get("InputPathsMap", {}) if targets else {}
    expect(f"rule {key}: evaluates the policy function with the fleet, the event's time and the event",
           len(targets) == 1 and [targets[0]["Arn"]] == policy_arn
           and '"action": "evaluate"' in tmpl and f'"fleet": "{FLEET}"' in tmpl
           and '"time": <time>' in tmpl and paths.get("time") == "$.time" and "<aws.events.event>" in tmpl)
rules = [ev.describe_rule(Name=alarm)["Arn"] for alarm in orch["alarm_names"].values()]
p_policy = json.loads(boto3.client("lambda").get_policy(FunctionName=f"{NAME}-policy")["Policy"])
sources = sorted(st.get("Condition", {}).get("ArnLike", {}).get("AWS:SourceArn", "")
                 for st in p_policy["Statement"]
                 if st.get("Principal", {}).get("Service") == "events.amazonaws.com")
expect("policy function: EventBridge may invoke it, from the alarm rules only", sources == sorted(rules))

# EventBridge Scheduler: the policy every minute, with the scheduled time in the input.
sched = boto3.client("scheduler").get_schedule(Name=f"{NAME}-policy")
target = sched.get("Target", {})
expect("policy schedule: every minute (the default policy_every_minutes)",
       sched.get("ScheduleExpression") == "rate(1 minute)")
expect("policy schedule: invokes the policy function's evaluate with the scheduled time",
       [target.get("Arn")] == policy_arn and json.loads(target.get("Input", "{}")) ==
       {"action": "evaluate", "fleet": FLEET, "time": "<aws.scheduler.scheduled-time>"}
       and target.get("RoleArn", "").endswith(f"role/{NAME}-scheduler"))

# The scheduled quality measurement: a rate rule invoking the drain function's `measure`.
quality = ev.describe_rule(Name=f"{NAME}-quality")
expect("quality rule: every 5 minutes (the default measure_every_minutes)",
       quality.get("ScheduleExpression") == "rate(5 minutes)")
targets = ev.list_targets_by_rule(Rule=f"{NAME}-quality")["Targets"]
drain_arn = [a for a in fn_arns if a.endswith(f":{NAME}-drain")]
expect("quality rule: invokes the drain function with the fleet's measure",
       len(targets) == 1 and [targets[0]["Arn"]] == drain_arn
       and json.loads(targets[0].get("Input", "{}")) == {"action": "measure", "fleet": FLEET})
policy = json.loads(boto3.client("lambda").get_policy(FunctionName=f"{NAME}-drain")["Policy"])
# The load sample: a rate rule invoking the drain function's `sample` every minute.
sample = ev.describe_rule(Name=f"{NAME}-sample")
expect("sample rule: every minute (the default sample_every_minutes)",
       sample.get("ScheduleExpression") == "rate(1 minute)")
targets = ev.list_targets_by_rule(Rule=f"{NAME}-sample")["Targets"]
expect("sample rule: invokes the drain function with the fleet's sample",
       len(targets) == 1 and [targets[0]["Arn"]] == drain_arn
       and json.loads(targets[0].get("Input", "{}")) == {"action": "sample", "fleet": FLEET})
sources = sorted(st.get("Condition", {}).get("ArnLike", {}).get("AWS:SourceArn", "")
                 for st in policy["Statement"]
                 if st.get("Principal", {}).get("Service") == "events.amazonaws.com")
expect("drain function: EventBridge may invoke it, from the quality and sample rules only",
       sources == sorted([quality["Arn"], sample["Arn"]]))

# CodeBuild.
cb = boto3.client("codebuild")
projects = cb.batch_get_projects(names=list(orch["codebuild_project_names"].values()))["projects"]
expect("two CodeBuild projects with buildspecs", len(projects) == 2
       and all("version: 0.2" in p["source"].get("buildspec", "") for p in projects))
# The dispatcher role reloads every Kamailio of the fleet configuration's HA pair.
kamailios = ["http://10.42.9.10:5071/RPC", "http://10.42.9.11:5072/RPC"]
ansible = [p for p in projects if p["name"] == orch["codebuild_project_names"]["ansible"]]
ansible_env = {e["name"]: e["value"] for e in ansible[0]["environment"]["environmentVariables"]} if ansible else {}
expect("the Ansible build is given every Kamailio of the fleet configuration",
       json.loads(ansible_env.get("PAIRSCALE_KAMAILIO_RPC_URLS", "null")) == kamailios)
# The dispatcher database as the drain function reaches it: libpq's variables, TLS verify-full,
# and the CA bundle's text resolved by CodeBuild from its parameter (the buildspec writes it to
# PGSSLROOTCERT).
ansible_vars = {e["name"]: e for e in ansible[0]["environment"]["environmentVariables"]} if ansible else {}
ca_var = ansible_vars.get("PAIRSCALE_DISPATCHER_DB_CA", {})
expect("the Ansible build reaches the dispatcher database as the drain function does, over verify-full TLS",
       ansible_env.get("PGHOST") == "10.42.9.5" and ansible_env.get("PGPORT") == "5432"
       and ansible_env.get("PGSSLMODE") == "verify-full"
       and ansible_vars.get("PGPASSWORD", {}).get("type") == "PARAMETER_STORE")
expect("the Ansible build is given the CA bundle from its parameter (PAIRSCALE_DISPATCHER_DB_CA)",
       ca_var.get("type") == "PARAMETER_STORE" and ca_var.get("value") == ca_name)
# The fleet's ports (fleet_config esl_port 8031, sip_port 5070 in tests/terraform/main.tf) reach
# the FreeSWITCH role through the Ansible build and the pairs root through the Terraform build.
ESL_PORT, SIP_PORT = 8031, 5070
expect("the Ansible build is given the fleet's ESL and SIP ports",
       ansible_env.get("PAIRSCALE_ESL_PORT") == str(ESL_PORT) and ansible_env.get("PAIRSCALE_SIP_PORT") == str(SIP_PORT))
tf_project = [p for p in projects if p["name"] == orch["codebuild_project_names"]["terraform"]]
tf_env = {e["name"]: e["value"] for e in tf_project[0]["environment"]["environmentVariables"]} if tf_project else {}
expect("the Terraform build hands the pairs root the fleet's ESL and SIP ports",
       tf_env.get("TF_VAR_esl_port") == str(ESL_PORT) and tf_env.get("TF_VAR_sip_port") == str(SIP_PORT))
# The fleet's baked image (fleet_config.image_id in tests/terraform/main.tf) reaches the Ansible
# build (scale_out.yml configures its nodes without installing) and the pairs root (the nodes
# start from it; checked on the instances below).
IMAGE_ID = ansible_env.get("PAIRSCALE_FREESWITCH_IMAGE_ID", "")
expect(f"the Ansible and Terraform builds are given the fleet's baked image ({IMAGE_ID!r})",
       IMAGE_ID.startswith("ami-") and tf_env.get("TF_VAR_image_id") == IMAGE_ID)
rules = boto3.client("ec2").describe_security_group_rules(
    Filters=[{"Name": "group-id", "Values": [orch["orchestrator_security_group_id"]]}])["SecurityGroupRules"]
rpc_ports = {r["FromPort"] for r in rules if r.get("IsEgress") and r.get("CidrIpv4") == "10.42.9.0/24"
             and r.get("Description") == "Kamailio JSON-RPC"}
expect(f"the functions reach every Kamailio's JSON-RPC port (egress: {sorted(rpc_ports)})", rpc_ports == {5071, 5072})
esl_out = {(r["FromPort"], r["ToPort"]) for r in rules if r.get("IsEgress") and r.get("Description") == "FreeSWITCH event socket"}
expect(f"the functions reach the nodes on the fleet's ESL port (egress: {sorted(esl_out)})", esl_out == {(ESL_PORT, ESL_PORT)})

# S3 state bucket.
s3 = boto3.client("s3")
bucket = orch["state_bucket"]
expect("state bucket versioned", s3.get_bucket_versioning(Bucket=bucket).get("Status") == "Enabled")
pab = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
expect("state bucket blocks public access", all(pab.values()))
enc = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"][0]
expect("state bucket SSE-KMS", enc["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms")
policy = json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])
expect("state bucket denies requests without TLS",
       any(st["Effect"] == "Deny" and st.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}
           for st in policy["Statement"]))
# The Terraform build keeps the pairs' state here: the TLS-only policy must leave the backend
# its objects (tests/lib/moto_server.py makes moto evaluate that Deny as IAM does), while an
# unconditional Deny still refuses.
key = "tfstate/verify/probe.tfstate"
try:
    s3.put_object(Bucket=bucket, Key=key, Body=b"{}")
    expect("the state backend can write and read its object",
           s3.get_object(Bucket=bucket, Key=key)["Body"].read() == b"{}")
    # Every version and delete marker, so the bucket is as Terraform left it.
    versions = s3.list_object_versions(Bucket=bucket, Prefix=key)
    for v in versions.get("Versions", []) + versions.get("DeleteMarkers", []):
        s3.delete_object(Bucket=bucket, Key=v["Key"], VersionId=v["VersionId"])
except s3.exceptions.ClientError as exc:
    expect(f"the state backend can write and read its object ({exc})", False)
probe = f"{bucket[:40]}-deny-probe"
s3.create_bucket(Bucket=probe)
s3.put_bucket_policy(Bucket=probe, Policy=json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": [f"arn:aws:s3:::{probe}/*"]}]}))
try:
    s3.put_object(Bucket=probe, Key="x", Body=b"x")
    expect("an unconditional Deny in a bucket policy refuses", False)
except s3.exceptions.ClientError as exc:
    expect("an unconditional Deny in a bucket policy refuses",
           exc.response["ResponseMetadata"]["HTTPStatusCode"] == 403)
s3.delete_bucket_policy(Bucket=probe)
s3.delete_bucket(Bucket=probe)

# EC2: one FreeSWITCH node per pair, tagged; a serving pair's running, a warm pair's stopped.
ec2 = boto3.client("ec2")
reservations = ec2.describe_instances(Filters=[
    {"Name": "tag:pairscale:fleet", "Values": [FLEET]},
    {"Name": "tag:pairscale:role", "Values": ["freeswitch"]},
    {"Name": "instance-state-name", "Values": ["pending", "running", "stopping", "stopped"]},
])["Reservations"]
instances = {tags_of(i["Tags"])["pairscale:pair-id"]: i for r in reservations for i in r["Instances"]}
expect(f"one node per pair {sorted(pairs)}", set(instances) == set(pairs))
expect(f"the test root has serving pairs {serving} and a warm pool {warm}", bool(serving) and bool(warm))
for pid, inst in sorted(instances.items()):
    want = "stopped" if pid in warm else "running"
    expect(f"{pid}: node {want} ({inst['State']['Name']})", inst["State"]["Name"] == want)
    expect(f"{pid}: outputs say warm {pid in warm}, service {None if pid in warm else f'esl-{pid}'}",
           pairs[pid].get("warm") is (pid in warm)
           and pairs[pid].get("service_name") == (None if pid in warm else f"esl-{pid}"))
for pid, inst in instances.items():
    expect(f"{pid}: node IMDSv2 only", inst.get("MetadataOptions", {}).get("HttpTokens") == "required")
expect("every node starts from the fleet's baked image, not the base image ami_id",
       bool(instances) and all(i["ImageId"] == IMAGE_ID for i in instances.values()))
if "pair-0002" in instances:
    expect("pair-0002: instance_type override", instances["pair-0002"]["InstanceType"] == "c7i.2xlarge")

# ECS: one ESL client service per serving pair, tagged, pointed at its own node; none, and no
# task definition, for a warm pair.
ecs = boto3.client("ecs")
arns = ecs.list_services(cluster=orch["ecs_cluster_arn"])["serviceArns"]
services = ecs.describe_services(cluster=orch["ecs_cluster_arn"], services=arns, include=["TAGS"])["services"] if arns else []
# A deleted service is INACTIVE: ECS's ListServices leaves it out, moto 5.2's lists it (after a
# warm pair is put back in the pool, tests/checks/60-terraform.sh runs this again).
services = [svc for svc in services if svc.get("status") != "INACTIVE"]
by_pair = {tags_of(s.get("tags"), "key", "value").get("pairscale:pair-id"): s for s in services}
expect(f"one ESL client service per serving pair {serving}, none for the warm pool's", set(by_pair) == set(serving))
for pid in warm:
    families = ecs.list_task_definitions(familyPrefix=f"{NAME}-esl-{pid}")["taskDefinitionArns"]
    expect(f"{pid}: warm, no ESL client task definition ({families})", not families)
for pid, svc in by_pair.items():
    tags = tags_of(svc.get("tags"), "key", "value")
    expect(f"{pid}: service tagged fleet + role esl-client",
           tags.get("pairscale:fleet") == FLEET and tags.get("pairscale:role") == "esl-client")
    expect(f"{pid}: desired_count 1", svc["desiredCount"] == 1)
    td = ecs.describe_task_definition(taskDefinition=svc["taskDefinition"])["taskDefinition"]
    env = {e["name"]: e["value"] for e in td["containerDefinitions"][0]["environment"]}
    expect(f"{pid}: ESL client points at its own node ({pairs[pid]['private_ip']})",
           env.get("PAIRSCALE_ESL_HOST") == pairs[pid]["private_ip"] == instances[pid]["PrivateIpAddress"]
           and env.get("PAIRSCALE_PAIR_ID") == pid)

# Network: each node admits ESL from the orchestrator and from its own ESL client only; SIP
# from Kamailio on the fleet's port; every rule and every volume tagged at creation.
node_groups = {pid: {g["GroupId"] for g in inst.get("SecurityGroups", [])} for pid, inst in instances.items()}
client_groups = {pid: set(svc.get("networkConfiguration", {}).get("awsvpcConfiguration", {}).get("securityGroups", []))
                 for pid, svc in by_pair.items()}
fleet_groups = set().union(*node_groups.values(), *client_groups.values()) if node_groups else set()
all_rules = ec2.describe_security_group_rules(
    Filters=[{"Name": "group-id", "Values": sorted(fleet_groups)}])["SecurityGroupRules"] if fleet_groups else []


def covers(r, port):
    return r["IpProtocol"] in ("tcp", "-1") and (r["IpProtocol"] == "-1" or r["FromPort"] <= port <= r["ToPort"])


# Each pair's own ESL group, by its tags: a warm pair's node carries it already, so taking the
# pair from the pool changes nothing on the node.
pair_group = {tags_of(g.get("Tags")).get("pairscale:pair-id"): g["GroupId"] for g in ec2.describe_security_groups(
    Filters=[{"Name": "tag:pairscale:fleet", "Values": [FLEET]},
             {"Name": "tag:pairscale:role", "Values": ["pair-esl"]}])["SecurityGroups"]}
expect(f"one ESL group per pair, warm or serving ({sorted(pair_group)})", set(pair_group) == set(pairs))
for pid in sorted(instances):
    expect(f"{pid}: node carries its pair's ESL group", pair_group.get(pid) in node_groups[pid])
    esl_in = [r for r in all_rules if not r["IsEgress"] and r["GroupId"] in node_groups[pid] and covers(r, ESL_PORT)]
    sources = {r.get("ReferencedGroupInfo", {}).get("GroupId") or r.get("CidrIpv4") or r.get("CidrIpv6") for r in esl_in}
    others = set().union(*(g for q, g in client_groups.items() if q != pid))
    if pid in warm:
        # No client yet: the node admits the orchestrator and its own group, the one its client
        # will carry, and no other pair's client.
        expect(f"{pid}: warm node admits ESL ({ESL_PORT}) from the orchestrator and its own group only ({sorted(sources)})",
               sources == {orch["orchestrator_security_group_id"], pair_group.get(pid)} and not (sources & others))
    else:
        own = client_groups.get(pid, set()) - others
        expect(f"{pid}: node admits ESL ({ESL_PORT}) from the orchestrator and its own client only ({sorted(sources)})",
               sources == {orch["orchestrator_security_group_id"]} | (own & sources) and bool(own & sources)
               and not (sources & others))
    sip_in = {(r["IpProtocol"], r["FromPort"], r.get("ReferencedGroupInfo", {}).get("GroupId")) for r in all_rules
              if not r["IsEgress"] and r["GroupId"] in node_groups[pid] and r["IpProtocol"] in ("udp", "tcp")
              and not covers(r, ESL_PORT) and r["FromPort"] == r["ToPort"]}
    kamailio = {x for x in sip_in if x[2] is not None and x[2] != orch["orchestrator_security_group_id"]}
    expect(f"{pid}: node admits SIP on the fleet's port only, UDP and TCP ({sorted(kamailio)})",
           {(p, port) for p, port, _ in kamailio} == {("udp", SIP_PORT), ("tcp", SIP_PORT)})
    vols = ec2.describe_volumes(Filters=[{"Name": "attachment.instance-id", "Values": [instances[pid]["InstanceId"]]}])["Volumes"]
    expect(f"{pid}: its volumes carry the fleet and pair tags (given at launch)",
           bool(vols) and all(tags_of(v.get("Tags")).get("pairscale:fleet") == FLEET
                              and tags_of(v.get("Tags")).get("pairscale:pair-id") == pid for v in vols))
untagged = [r["SecurityGroupRuleId"] for r in all_rules if tags_of(r.get("Tags")).get("pairscale:fleet") != FLEET
            and r["GroupId"] != orch["orchestrator_security_group_id"]]
expect(f"every rule of the pairs' groups carries the fleet tag (untagged: {untagged})", bool(all_rules) and not untagged)

if failures:
    print(f"{len(failures)} expectation(s) failed", file=sys.stderr)
    sys.exit(1)
