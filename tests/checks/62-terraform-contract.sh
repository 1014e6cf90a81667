# The orchestrator's Terraform held against the Rust code it deploys (tests/terraform/
# contract.py): each function's environment against what its binary reads, each function's
# role against the AWS calls its binary can make, and the example env's fleet configuration
# against FleetConfig's rules, with tests/fixtures/fleet_config.terraform.json kept equal to
# it (a Rust test parses that file with FleetConfig::from_json; PAIRSCALE_UPDATE_FIXTURES=1
# rewrites it), and the module's fleet_config validation probed at every FleetConfig bound.
#
# What Terraform sets is what Terraform evaluates: `terraform console` over a copy of
# terraform/envs/example/orchestrator (its s3 backend overridden by a local one, nothing is
# planned or applied, no AWS API is called), with terraform.tfvars.example as its inputs.

ps_contract_json="$PS_WORK/tf-contract.json"

ps_contract_eval() {
  local copy="$PS_WORK/tf-contract" env=terraform/envs/example/orchestrator out
  rm -rf "$copy" && mkdir -p "$copy" "$copy/lambda"
  cp -r "$PAIRSCALE_ROOT/terraform" "$PAIRSCALE_ROOT/statemachines" "$copy/"
  rm -rf "$copy/$env/.terraform" "$copy/$env/.terraform.lock.hcl"
  cat > "$copy/$env/contract_override.tf" <<'EOF'
terraform {
  backend "local" {}
}
EOF
  for f in lock state drain build; do
    mkdir -p "$copy/lambda/pairscale-$f" && : > "$copy/lambda/pairscale-$f/bootstrap.zip"
  done
  TF_DATA_DIR="$copy/.tf" terraform -chdir="$copy/$env" init -input=false -no-color \
    > "$PS_WORK/tf-contract-init.log" 2>&1 || { cat "$PS_WORK/tf-contract-init.log"; return 1; }
  # The console prints the JSON as an HCL string literal.
  # One line: the console reads its input line by line.
  out=$(echo 'jsonencode({binaries = module.orchestrator.lambda_binaries, environment = { for fn, env in module.orchestrator.lambda_environment : fn => sort(keys(env)) }, permissions = module.orchestrator.lambda_permissions, vpc_functions = module.orchestrator.lambda_vpc_functions, fleet_config_json = module.orchestrator.fleet_config_json})' \
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
  run_check "terraform contract: fleet_config validation accepts exactly what FleetConfig accepts" \
    python3 "$PAIRSCALE_ROOT/tests/terraform/contract.py" fleet-config-bounds "$PS_WORK"
fi
