# Terraform: formatting, init and validate of every module, example and root; then both
# modules applied to the local AWS emulator (moto, via tests/terraform), what they created
# checked with boto3, a scale plan checked to touch only the pairs that change, the warm pair
# taken from the pool (planned: its node updated in place, its client created, nothing else;
# applied: the same node started) and put back, and destroy.
#
# Emulator gaps, worked around rather than skipped (see tests/terraform/):
#   - states:ValidateStateMachineDefinition and ListStateMachineVersions (called by the
#     provider) are not in moto 5.2: tests/terraform/moto_compat.py, a loopback proxy in front
#     of moto started by tests/setup/20-terraform.sh, answers those two and forwards the rest.
#   - ec2:MonitorInstances is not in moto 5.2: the test root sets detailed_monitoring = false.
#   - aws_ec2_instance_state (a warm pair's node stopped, a serving pair's running) needs no
#     workaround: moto 5.2 implements StopInstances, StartInstances and DescribeInstanceStatus
#     with IncludeAllInstances, and its instances change state at once.
#   - moto 5.2's ecs:ListServices lists deleted (INACTIVE) services, which ECS leaves out:
#     tests/terraform/verify.py leaves them out itself (a warm pair put back has one).
#   - the baseline plan's drift (attributes moto 5.2 does not echo back) cannot be applied: the
#     provider's update of the CodeBuild projects against it was still retrying after minutes.
#     The warm pair's applies (taken from the pool, put back) target that pair's resources.

ps_tf_dirs=(
  terraform/modules/orchestrator
  terraform/modules/pairs
  terraform/modules/orchestrator/examples/basic
  terraform/modules/pairs/examples/basic
  terraform/envs/example/orchestrator
  terraform/envs/example/pairs
  terraform/modules/deploy-access
  terraform/envs/example/deploy-access
  terraform/envs/sandbox
  tests/terraform
)

# Run terraform in a directory with its data dir kept under the test work dir.
ps_tf() {
  local dir=$1; shift
  TF_DATA_DIR="$PS_WORK/tf-data/${dir//\//_}" terraform -chdir="$PAIRSCALE_ROOT/$dir" "$@"
}

ps_tf_validate() {
  local dir=$1
  ps_tf "$dir" init -backend=false -input=false -no-color > "$PS_WORK/tf-init-${dir//\//_}.log" 2>&1 \
    || { cat "$PS_WORK/tf-init-${dir//\//_}.log"; return 1; }
  ps_tf "$dir" validate -no-color
}

ps_tf_validated() {
  local dir=$1 rc=$2
  [ "$rc" = 0 ] || cat "$PS_WORK/tf-validate-${dir//\//_}.log"
  return "$rc"
}

ps_tf_moto() {
  local root=tests/terraform py="$PS_CACHE/venv-moto/bin/python"
  # Lambda packages are only stored by the emulator: a shell script stands in for bootstrap.
  local zips="$PS_WORK/lambda"
  for f in lock state drain build policy; do
    mkdir -p "$zips/pairscale-$f"
    "$py" - "$zips/pairscale-$f/bootstrap.zip" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1], "w") as z:
    z.writestr(zipfile.ZipInfo("bootstrap"), "#!/bin/sh\nexit 0\n")
PY
  done

  export TF_VAR_aws_endpoint="$PAIRSCALE_TF_ENDPOINT" TF_VAR_lambda_artifacts_dir="$zips"
  local rc=0 state="$PS_WORK/moto.tfstate"
  rm -f "$state"
  ps_tf "$root" init -input=false -no-color > "$PS_WORK/tf-moto-init.log" 2>&1 || { cat "$PS_WORK/tf-moto-init.log"; return 1; }

  log "terraform apply (orchestrator + pairs) against moto"
  if ! ps_tf "$root" apply -auto-approve -input=false -no-color -state="$state" > "$PS_WORK/tf-apply.log" 2>&1; then
    grep -A15 'Error' "$PS_WORK/tf-apply.log" | head -60
    rc=1
  fi

  if [ $rc = 0 ]; then
    ps_tf "$root" output -json -state="$state" > "$PS_WORK/tf-outputs.json" || rc=1
    log "checking created resources with boto3"
    "$py" "$PAIRSCALE_ROOT/$root/verify.py" "$PS_WORK/tf-outputs.json" > "$PS_WORK/tf-verify.log" 2>&1 \
      || { grep -v '^ok ' "$PS_WORK/tf-verify.log"; rc=1; }
  fi

  if [ $rc = 0 ]; then
    # Replace pair-0001 with pair-0003: compared with a plan of the unchanged pair set (which
    # carries whatever the emulator does not echo back), the scale plan must delete exactly
    # pair-0001's resources, create exactly pair-0003's and touch nothing else: for_each over
    # stable ids, so pair-0002 is never replaced, and pair-0005 stays in the warm pool.
    log "terraform plan of a scale change (drop pair-0001, add pair-0003) against a baseline plan"
    if ps_tf "$root" plan -input=false -no-color -refresh=false -state="$state" -out="$PS_WORK/base.tfplan" \
          > "$PS_WORK/tf-base-plan.log" 2>&1 \
        && ps_tf "$root" plan -input=false -no-color -refresh=false -state="$state" -out="$PS_WORK/scale.tfplan" \
          -var 'pairs={"pair-0002"={instance_type="c7i.2xlarge"},"pair-0003"={},"pair-0005"={warm=true}}' \
          > "$PS_WORK/tf-scale-plan.log" 2>&1; then
      ps_tf "$root" show -json "$PS_WORK/base.tfplan" > "$PS_WORK/base-plan.json"
      ps_tf "$root" show -json "$PS_WORK/scale.tfplan" > "$PS_WORK/scale-plan.json"
      "$py" - "$PS_WORK/base-plan.json" "$PS_WORK/scale-plan.json" <<'PY' || rc=1
import json, sys

def changes(path):
    out = {}
    for rc in json.load(open(path)).get("resource_changes", []):
        acts = tuple(rc["change"]["actions"])
        if acts not in (("no-op",), ("read",)):
            out[rc["address"]] = acts
    return out

base, scale = changes(sys.argv[1]), changes(sys.argv[2])
if base:
    print(f"baseline plan (emulator drift, ignored): {len(base)} in-place change(s)")
bad = [f"{a}: {c}" for a, c in base.items() if c != ("update",)]
diff = {a: c for a, c in scale.items() if base.get(a) != c}
expected = lambda a, c: (('"pair-0001"' in a and c == ("delete",))
                         or ('"pair-0003"' in a and c == ("create",))
                         or a.endswith("aws_ssm_parameter.pair_count"))
bad += [f"{a}: {c}" for a, c in diff.items() if not expected(a, c)]
created = [a for a, c in diff.items() if c == ("create",)]
deleted = [a for a, c in diff.items() if c == ("delete",)]
print(f"scale plan beyond the baseline: {len(created)} to create, {len(deleted)} to delete")
for b in bad:
    print(f"FAIL unexpected change {b}")
# Per serving pair: instance, its state, task definition, service, and its own ESL group with
# its two rules.
if bad or len(created) != 7 or len(deleted) != 7:
    sys.exit(1)
PY
    else
      grep -A15 'Error' "$PS_WORK/tf-base-plan.log" "$PS_WORK/tf-scale-plan.log" | head -40
      rc=1
    fi
  fi

  if [ $rc = 0 ]; then
    # Take pair-0005 from the warm pool: against the same baseline, the plan must update its
    # node's state in place (the instance itself unchanged: never replaced, never destroyed),
    # create its ESL client's task definition and service, and touch nothing else.
    log "terraform plan of taking the warm pair-0005 from the pool against the baseline plan"
    local serve='pairs={"pair-0001"={},"pair-0002"={instance_type="c7i.2xlarge"},"pair-0005"={}}'
    if ps_tf "$root" plan -input=false -no-color -refresh=false -state="$state" -out="$PS_WORK/take.tfplan" \
          -var "$serve" > "$PS_WORK/tf-take-plan.log" 2>&1; then
      ps_tf "$root" show -json "$PS_WORK/take.tfplan" > "$PS_WORK/take-plan.json"
      "$py" - "$PS_WORK/base-plan.json" "$PS_WORK/take-plan.json" <<'PY' || rc=1
import json, sys

def changes(path, keep_noop=False):
    out = {}
    for rc in json.load(open(path)).get("resource_changes", []):
        acts = tuple(rc["change"]["actions"])
        if keep_noop or acts not in (("no-op",), ("read",)):
            out[rc["address"]] = acts
    return out

base, take = changes(sys.argv[1]), changes(sys.argv[2])
every = changes(sys.argv[2], keep_noop=True)
pair = '["pair-0005"]'
want = {
    f"module.pairs.aws_ec2_instance_state.freeswitch{pair}": ("update",),
    f"module.pairs.aws_ecs_task_definition.esl_client{pair}": ("create",),
    f"module.pairs.aws_ecs_service.esl_client{pair}": ("create",),
}
diff = {a: c for a, c in take.items() if base.get(a) != c}
bad = [f"unexpected change {a}: {c}" for a, c in diff.items() if want.get(a) != c]
bad += [f"missing change {a}: {c} (planned: {take.get(a)})" for a, c in want.items() if take.get(a) != c]
node = f"module.pairs.aws_instance.freeswitch{pair}"
if every.get(node) not in (("no-op",), ("update",)) or node in diff:
    bad.append(f"the warm node {node} is not kept as it is: {every.get(node)}")
print(f"take plan beyond the baseline: {sorted(f'{a}: {c[0]}' for a, c in diff.items())}")
for b in bad:
    print(f"FAIL {b}")
sys.exit(1 if bad else 0)
PY
    else
      grep -A15 'Error' "$PS_WORK/tf-take-plan.log" | head -40
      rc=1
    fi
  fi

  if [ $rc = 0 ]; then
    # Applied, the same node runs (StartInstances; its id and address kept) with its client;
    # put back (a rollback), it is stopped and the client removed: verify.py holds the fleet to
    # what it was after the first apply. Only pair-0005's resources are applied (-target), not
    # the baseline's drift (see the emulator gaps above).
    log "terraform apply: the warm pair-0005 taken from the pool, then put back"
    local before="$PS_WORK/tf-outputs.json" taken="$PS_WORK/tf-outputs-taken.json"
    local targets=(-target='module.pairs.aws_ec2_instance_state.freeswitch["pair-0005"]'
      -target='module.pairs.aws_ecs_task_definition.esl_client["pair-0005"]'
      -target='module.pairs.aws_ecs_service.esl_client["pair-0005"]')
    if ps_tf "$root" apply -auto-approve -input=false -no-color -state="$state" "${targets[@]}" -var "$serve" \
          > "$PS_WORK/tf-take-apply.log" 2>&1 \
        && ps_tf "$root" output -json -state="$state" > "$taken"; then
      "$py" - "$before" "$taken" <<'PY' || rc=1
import json, sys
import boto3

before, taken = (json.load(open(p))["pairs"]["value"]["pair-0005"] for p in sys.argv[1:3])
inst = boto3.client("ec2").describe_instances(InstanceIds=[before["instance_id"]])["Reservations"][0]["Instances"][0]
svc = boto3.client("ecs").describe_services(
    cluster=json.load(open(sys.argv[2]))["orchestrator"]["value"]["ecs_cluster_arn"], services=["esl-pair-0005"])["services"]
checks = {
    "pair-0005 taken: the same node (id and address)": taken["instance_id"] == before["instance_id"]
        and taken["private_ip"] == before["private_ip"],
    f"pair-0005 taken: its node running ({inst['State']['Name']})": inst["State"]["Name"] == "running",
    "pair-0005 taken: not warm, its ESL client service esl-pair-0005 active":
        taken["warm"] is False and taken["service_name"] == "esl-pair-0005"
        and [s["status"] for s in svc] == ["ACTIVE"],
}
for what, ok in checks.items():
    print(("ok   " if ok else "FAIL ") + what)
sys.exit(0 if all(checks.values()) else 1)
PY
    else
      grep -A15 'Error' "$PS_WORK/tf-take-apply.log" | head -40
      rc=1
    fi
  fi
  if [ $rc = 0 ]; then
    local back="$PS_WORK/tf-outputs-back.json"
    if ps_tf "$root" apply -auto-approve -input=false -no-color -state="$state" "${targets[@]}" \
          > "$PS_WORK/tf-back-apply.log" 2>&1 \
        && ps_tf "$root" output -json -state="$state" > "$back"; then
      "$py" -c 'import json, sys; a, b = (json.load(open(p))["pairs"]["value"]["pair-0005"]["instance_id"] for p in sys.argv[1:3]); print(("ok   " if a == b else "FAIL ") + f"pair-0005 put back: the same node ({b})"); sys.exit(a != b)' \
        "$PS_WORK/tf-outputs.json" "$back" || rc=1
      "$py" "$PAIRSCALE_ROOT/$root/verify.py" "$back" > "$PS_WORK/tf-verify-back.log" 2>&1 \
        || { echo "after pair-0005 was put back in the pool:"; grep -v '^ok ' "$PS_WORK/tf-verify-back.log"; rc=1; }
    else
      grep -A15 'Error' "$PS_WORK/tf-back-apply.log" | head -40
      rc=1
    fi
  fi

  log "terraform destroy against moto"
  if ! ps_tf "$root" destroy -auto-approve -input=false -no-color -state="$state" > "$PS_WORK/tf-destroy.log" 2>&1; then
    grep -A15 'Error' "$PS_WORK/tf-destroy.log" | head -40
    rc=1
  fi
  if [ -n "$(ps_tf "$root" state list -state="$state" 2>/dev/null)" ]; then
    echo "resources left in state after destroy:"
    ps_tf "$root" state list -state="$state"
    rc=1
  fi
  return $rc
}

if [ -n "${PAIRSCALE_TF_MISSING:-}" ]; then
  skip terraform "$PAIRSCALE_TF_MISSING"
else
  # TF_CLI_CONFIG_FILE (providers from the local mirror) and PAIRSCALE_TF_ENDPOINT (the
  # emulator, behind tests/terraform/moto_compat.py) come from tests/setup/20-terraform.sh.
  run_check "terraform fmt" terraform fmt -check -recursive -diff "$PAIRSCALE_ROOT/terraform" "$PAIRSCALE_ROOT/tests/terraform"
  # init + validate of every directory at once (each is mostly waiting on provider start-up),
  # then one check result per directory. Waits on these PIDs only: the shell has long-running
  # children (the emulator) that a bare `wait` would wait for forever.
  ps_tf_pids=()
  for ps_tf_dir in "${ps_tf_dirs[@]}"; do
    ( ps_tf_validate "$ps_tf_dir" > "$PS_WORK/tf-validate-${ps_tf_dir//\//_}.log" 2>&1 ) &
    ps_tf_pids+=($!)
  done
  ps_tf_i=0
  for ps_tf_dir in "${ps_tf_dirs[@]}"; do
    if wait "${ps_tf_pids[$ps_tf_i]}"; then ps_tf_rc=0; else ps_tf_rc=1; fi
    run_check "terraform validate $ps_tf_dir" ps_tf_validated "$ps_tf_dir" "$ps_tf_rc"
    ps_tf_i=$((ps_tf_i + 1))
  done
  if [ -z "${PAIRSCALE_TF_ENDPOINT:-}" ]; then
    fail "terraform apply against moto (PAIRSCALE_TF_ENDPOINT is not set: tests/setup/20-terraform.sh did not run)"
  else
    run_check "terraform apply/verify/scale/destroy against moto" ps_tf_moto
  fi
fi
