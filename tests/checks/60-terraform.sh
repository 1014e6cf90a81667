# Terraform: formatting, init and validate of every module, example and root; then both
# modules applied to the local AWS emulator (moto, via tests/terraform), what they created
# checked with boto3, a scale plan checked to touch only the pairs that change, and destroy.
#
# Emulator gaps, worked around rather than skipped (see tests/terraform/):
#   - states:ValidateStateMachineDefinition and ListStateMachineVersions (called by the
#     provider) are not in moto 5.2: tests/terraform/moto_compat.py, a loopback proxy in front
#     of moto started by tests/setup/20-terraform.sh, answers those two and forwards the rest.
#   - ec2:MonitorInstances is not in moto 5.2: the test root sets detailed_monitoring = false.

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
    # stable ids, so pair-0002 is never replaced.
    log "terraform plan of a scale change (drop pair-0001, add pair-0003) against a baseline plan"
    if ps_tf "$root" plan -input=false -no-color -refresh=false -state="$state" -out="$PS_WORK/base.tfplan" \
          > "$PS_WORK/tf-base-plan.log" 2>&1 \
        && ps_tf "$root" plan -input=false -no-color -refresh=false -state="$state" -out="$PS_WORK/scale.tfplan" \
          -var 'pairs={"pair-0002"={instance_type="c7i.2xlarge"},"pair-0003"={}}' > "$PS_WORK/tf-scale-plan.log" 2>&1; then
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
# Per pair: instance, task definition, service, and its own ESL group with its two rules.
if bad or len(created) != 6 or len(deleted) != 6:
    sys.exit(1)
PY
    else
      grep -A15 'Error' "$PS_WORK/tf-base-plan.log" "$PS_WORK/tf-scale-plan.log" | head -40
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
