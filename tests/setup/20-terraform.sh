# Terraform against the local emulator, for the sandbox's deploy (terraform/envs/sandbox) and
# tests/checks/60-terraform.sh: the CLI configuration (providers from the local mirror, never
# the network) and tests/terraform/moto_compat.py, a loopback proxy in front of the router
# that answers the two Step Functions actions moto 5.2 lacks and the AWS provider calls.
# Exports PAIRSCALE_TF_ENDPOINT (the provider's endpoint for every service) when Terraform and
# the provider mirror are here; otherwise PAIRSCALE_TF_MISSING says what is missing, and the
# sandbox deploys through the SDK instead (saying so).
: "${AWS_ENDPOINT_URL:?tests/setup/15-router.sh must be sourced before 20-terraform.sh}"

ps_tf_mirror=${PAIRSCALE_TF_PLUGIN_MIRROR:-/opt/tf-plugins}
unset PAIRSCALE_TF_ENDPOINT PAIRSCALE_TF_MISSING
if ! command -v terraform > /dev/null; then
  export PAIRSCALE_TF_MISSING="terraform is not installed (CI installs it; locally: see .github/workflows/ci.yml)"
elif [ ! -d "$ps_tf_mirror/registry.terraform.io/hashicorp/aws" ]; then
  export PAIRSCALE_TF_MISSING="no hashicorp/aws provider mirror at $ps_tf_mirror (set PAIRSCALE_TF_PLUGIN_MIRROR)"
fi

if [ -n "${PAIRSCALE_TF_MISSING:-}" ]; then
  log "no Terraform: $PAIRSCALE_TF_MISSING"
else
  # The repository's CLI config points at /opt/tf-plugins; another mirror gets a copy here.
  if [ "$ps_tf_mirror" = /opt/tf-plugins ]; then
    export TF_CLI_CONFIG_FILE="$PAIRSCALE_ROOT/terraform/.terraformrc"
  else
    export TF_CLI_CONFIG_FILE="$PS_WORK/terraformrc"
    sed "s#/opt/tf-plugins#$ps_tf_mirror#" "$PAIRSCALE_ROOT/terraform/.terraformrc" > "$TF_CLI_CONFIG_FILE"
  fi
  export TF_IN_AUTOMATION=1 TF_INPUT=0 CHECKPOINT_DISABLE=1

  ps_tf_port_file="$PS_WORK/moto-compat.port"
  rm -f "$ps_tf_port_file"
  "$PS_CACHE/venv-moto/bin/python" "$PAIRSCALE_ROOT/tests/terraform/moto_compat.py" "$AWS_ENDPOINT_URL" \
    "$ps_tf_port_file" > "$PS_WORK/moto-compat.log" 2>&1 &
  track_pid $! moto-compat
  for _ in $(seq 1 50); do [ -s "$ps_tf_port_file" ] && break; sleep 0.1; done
  [ -s "$ps_tf_port_file" ] || { cat "$PS_WORK/moto-compat.log"; die "tests/terraform/moto_compat.py did not start"; }
  export PAIRSCALE_TF_ENDPOINT="http://127.0.0.1:$(cat "$ps_tf_port_file")"
  log "$(terraform version | head -1) · provider mirror $ps_tf_mirror · endpoint $PAIRSCALE_TF_ENDPOINT"
fi
