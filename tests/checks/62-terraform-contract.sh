# The orchestrator's Terraform held against the Rust code it deploys (tests/terraform/
# contract.py): each function's environment against what its binary reads, each function's
# role against the AWS calls its binary can make, and the example env's fleet configuration
# against FleetConfig's rules, with tests/fixtures/fleet_config.terraform.json kept equal to
# it (a Rust test parses that file with FleetConfig::from_json; PAIRSCALE_UPDATE_FIXTURES=1
# rewrites it), and the module's fleet_config validation probed at every FleetConfig bound.
#
# The CodeBuild roles are held against what they run: the Terraform build's against the
# actions the pairs root's resource types need (tests/terraform/contract.py's table), the
# Ansible build's against the AWS calls of the playbooks' modules and plugins. Every role's
# policies, the deploy role's (terraform/modules/deploy-access) among them, as Terraform
# rendered them in tests/checks/60-terraform.sh's apply to the emulator (their resources are
# unknown to the console), are linted with parliament and with the lint's own rule against a
# grant by a tag the same policy can write (tests/terraform/iam_lint.py, its rule first held
# to its self-tests, tests/terraform/test_iam_lint.py; findings fail unless its allow-list
# names them with a reason).
# The fleet's ESL and SIP ports reach the FreeSWITCH role's configuration. The dispatcher
# database's TLS inputs (dispatcher_db_sslmode, dispatcher_db_ca_bundle) are probed as
# fleet_config is: what neither the drain function nor the Ansible build can use is refused by
# the module's validation, naming the variable. (What they set, with a CA bundle, is checked on
# the emulator by tests/terraform/verify.py.)
#
# What Terraform sets is what Terraform evaluates: `terraform console` over a copy of
# terraform/envs/example/orchestrator (its s3 backend overridden by a local one, nothing is
# planned or applied, no AWS API is called), with terraform.tfvars.example as its inputs.

ps_contract_json="$PS_WORK/tf-contract.json"

ps_contract_eval() {
  local copy="$PS_WORK/tf-contract" env=terraform/envs/example/orchestrator out
  rm -rf "$copy" && mkdir -p "$copy" "$copy/lambda"
  cp -r "$PAIRSCALE_ROOT/terraform" "$PAIRSCALE_ROOT/statemachines" "$copy/"
  # The orchestrator module reads the build image's files (its tag is their digest).
  if [ -d "$PAIRSCALE_ROOT/build-image" ]; then cp -r "$PAIRSCALE_ROOT/build-image" "$copy/"; fi
  rm -rf "$copy/$env/.terraform" "$copy/$env/.terraform.lock.hcl"
  cat > "$copy/$env/contract_override.tf" <<'EOF'
terraform {
  backend "local" {}
}
EOF
  for f in lock state drain build policy; do
    mkdir -p "$copy/lambda/pairscale-$f" && : > "$copy/lambda/pairscale-$f/bootstrap.zip"
  done
  TF_DATA_DIR="$copy/.tf" terraform -chdir="$copy/$env" init -input=false -no-color \
    > "$PS_WORK/tf-contract-init.log" 2>&1 || { cat "$PS_WORK/tf-contract-init.log"; return 1; }
  # The console prints the JSON as an HCL string literal.
  # One line: the console reads its input line by line.
  out=$(echo 'jsonencode({binaries = module.orchestrator.lambda_binaries, environment = { for fn, env in module.orchestrator.lambda_environment : fn => sort(keys(env)) }, permissions = module.orchestrator.lambda_permissions, codebuild_permissions = module.orchestrator.codebuild_permissions, state_table_deletion_protection = module.orchestrator.state_table_deletion_protection, vpc_functions = module.orchestrator.lambda_vpc_functions, fleet_config_json = module.orchestrator.fleet_config_json})' \
    | TF_DATA_DIR="$copy/.tf" TF_VAR_dispatcher_db_password=unused TF_VAR_freeswitch_repo_token=unused \
      terraform -chdir="$copy/$env" console -no-color -var-file=terraform.tfvars.example \
      -var "lambda_artifacts_dir=$copy/lambda" 2> "$PS_WORK/tf-contract-console.log") \
    || { cat "$PS_WORK/tf-contract-console.log"; return 1; }
  python3 - "$out" "$ps_contract_json" <<'PY'
import json, sys
raw = sys.argv[1].strip()
# An HCL string literal: JSON's escapes, plus $${ and %%{ for a literal ${ and %{.
value = json.loads(raw).replace("$${", "${").replace("%%{", "%{")
json.dump(json.loads(value), open(sys.argv[2], "w"), indent=1, sort_keys=True)
PY
}

if [ -n "${PAIRSCALE_TF_MISSING:-}" ]; then
  skip "terraform contract" "$PAIRSCALE_TF_MISSING: the Lambda environment, IAM and fleet_config checks need its evaluation of the module"
else
  # TF_CLI_CONFIG_FILE (providers from the local mirror) comes from tests/setup/20-terraform.sh.
  rm -f "$ps_contract_json"
  run_check "terraform contract: evaluate envs/example/orchestrator" ps_contract_eval
  if [ -s "$ps_contract_json" ]; then
    run_check "terraform contract: Lambda environment == what each binary reads" \
      python3 "$PAIRSCALE_ROOT/tests/terraform/contract.py" env "$ps_contract_json"
    run_check "terraform contract: Lambda roles == the AWS calls of each binary" \
      python3 "$PAIRSCALE_ROOT/tests/terraform/contract.py" iam "$ps_contract_json"
    run_check "terraform contract: fleet_config is a valid FleetConfig, fixture up to date" \
      python3 "$PAIRSCALE_ROOT/tests/terraform/contract.py" fleet-config "$ps_contract_json" \
      "$PAIRSCALE_ROOT/tests/fixtures/fleet_config.terraform.json"
  fi
  # The rendered policies come from 60-terraform.sh's apply: without it these fail, never skip.
  ps_contract_outputs="$PS_WORK/tf-outputs.json"
  ps_contract_rendered() {
    [ -s "$ps_contract_outputs" ] && return 0
    echo "no rendered policies: $ps_contract_outputs is written by tests/checks/60-terraform.sh's apply, which must run (and pass) first"
    return 1
  }
  if [ -s "$ps_contract_json" ]; then
    run_check "terraform contract: the state table has deletion protection by default" \
      python3 -c 'import json, sys; v = json.load(open(sys.argv[1]))["state_table_deletion_protection"]; print(f"envs/example/orchestrator: deletion protection {v}"); sys.exit(v is not True)' "$ps_contract_json"
    run_check "terraform contract: CodeBuild roles == what the pairs root and the playbooks need" \
      bash -c 'ps_out=$1; shift; [ -s "$ps_out" ] || { echo "no rendered policies ($ps_out): tests/checks/60-terraform.sh must run first"; exit 1; }; python3 "$@" "$ps_out"' _ \
      "$ps_contract_outputs" "$PAIRSCALE_ROOT/tests/terraform/contract.py" codebuild "$ps_contract_json"
  fi
  # Installed as checkov is (65-checkov.sh): a failed install stops the run, never skips.
  venv parliament "$PAIRSCALE_ROOT/tests/requirements/parliament.txt"
  ps_parliament_bin=$VENV_BIN
  ps_parliament_lint() {
    ps_contract_rendered || return 1
    "$ps_parliament_bin/python" "$PAIRSCALE_ROOT/tests/terraform/iam_lint.py" "$ps_contract_outputs"
  }
  run_check "iam lint: self-tests (a grant by a tag the policy can write is found)" \
    "$ps_parliament_bin/python" "$PAIRSCALE_ROOT/tests/terraform/test_iam_lint.py"
  run_check "iam lint: parliament over every role's policies, as Terraform renders them" ps_parliament_lint

  # fleet_config's ports -> the Ansible build's environment (verify.py checks that on the
  # emulator) -> the scale-out play's FreeSWITCH role variables -> the role's templates.
  ps_contract_ports() {
    local bin=${PAIRSCALE_ANSIBLE_BIN:-$PS_CACHE/venv-ansible/bin} play="$PS_WORK/ports-play.yml" out
    [ -x "$bin/ansible-playbook" ] || { echo "no ansible-playbook in $bin (tests/setup/25-ansible.sh)"; return 1; }
    "$bin/python" - "$PAIRSCALE_ROOT/ansible/playbooks/scale_out.yml" "$play" <<'PY' || return 1
import sys, yaml
first = yaml.safe_load(open(sys.argv[1]))[0]
v = {k: first["vars"][k] for k in ("freeswitch_esl_port", "freeswitch_sip_port")}
yaml.safe_dump([{"hosts": "localhost", "connection": "local", "gather_facts": False, "vars": v,
                 "tasks": [{"ansible.builtin.debug": {"msg": "ports {{ freeswitch_esl_port }} {{ freeswitch_sip_port }}"}}]}],
               open(sys.argv[2], "w"))
PY
    out=$(PAIRSCALE_ESL_PORT=8031 ANSIBLE_LOCALHOST_WARNING=0 "$bin/ansible-playbook" -i localhost, "$play" \
      -e pairscale_sip_port=5070 2>&1) || { echo "$out"; return 1; }
    grep -q '"ports 8031 5070"' <<< "$out" || { echo "scale_out.yml does not hand the fleet's ports to the role:"; echo "$out" | grep -i ports; return 1; }
    grep -q 'name="listen-port" value="{{ freeswitch_esl_port }}"' "$PAIRSCALE_ROOT/ansible/roles/freeswitch/templates/event_socket.conf.xml.j2" \
      || { echo "event_socket.conf.xml.j2 does not listen on freeswitch_esl_port"; return 1; }
    grep -q 'name="sip-port" value="{{ freeswitch_sip_port }}"' "$PAIRSCALE_ROOT/ansible/roles/freeswitch/templates/sip_profile.xml.j2" \
      || { echo "sip_profile.xml.j2 does not listen on freeswitch_sip_port"; return 1; }
    grep -q 'pairscale_sip_port=\$PAIRSCALE_SIP_PORT' "$PAIRSCALE_ROOT/terraform/buildspecs/ansible.yml" \
      || { echo "the Ansible buildspec does not pass PAIRSCALE_SIP_PORT as pairscale_sip_port"; return 1; }
    echo "PAIRSCALE_ESL_PORT=8031, pairscale_sip_port=5070 -> freeswitch_esl_port 8031, freeswitch_sip_port 5070 -> event socket and SIP profile"
  }
  run_check "terraform contract: the fleet's ESL and SIP ports reach the FreeSWITCH role" ps_contract_ports
  run_check "terraform contract: fleet_config validation accepts exactly what FleetConfig accepts" \
    python3 "$PAIRSCALE_ROOT/tests/terraform/contract.py" fleet-config-bounds "$PS_WORK"
  run_check "terraform contract: dispatcher_db_sslmode and dispatcher_db_ca_bundle refuse, naming the variable, what neither side can use" \
    python3 "$PAIRSCALE_ROOT/tests/terraform/contract.py" db-tls-bounds "$PS_WORK"
fi
