# State machine definitions (statemachines/*.asl.json):
#   0. scale.asl.json is what its source, statemachines/scale.py, writes (the JSON is committed
#      because Terraform reads it; the build loop and the retry policies are written once there);
#   1. statelint: each is valid Amazon States Language (it knows QueryLanguage, ResultSelector,
#      ErrorPath/CausePath, MaxDelaySeconds and JitterStrategy);
#   2. tests/statemachines/consistency.py, after its own self-tests: what statelint cannot know
#      (placeholders against the templatefile() call, Lambdas against Cargo and Terraform, error
#      names against the core catalogue, every path ending in Succeed or Fail, Retry/Catch rules);
#   3. tests/statemachines/emulate.py: scale.asl.json run in the local emulator's interpreter
#      (in process, fake handlers that follow docs/handlers.md), every flow and failure path.

run_check "state machine written by its source" python3 "$PAIRSCALE_ROOT/statemachines/scale.py" --check

venv statelint "$PAIRSCALE_ROOT/tests/requirements/statelint.txt"
ps_statelint_bin=$VENV_BIN

ps_statelint() {
  local f rc=0 n=0
  for f in "$PAIRSCALE_ROOT"/statemachines/*.asl.json; do
    [ -e "$f" ] || continue
    n=$((n + 1))
    if ! "$ps_statelint_bin/statelint" "$f"; then
      echo "statelint rejected ${f#"$PAIRSCALE_ROOT"/}"
      rc=1
    fi
  done
  [ "$n" -gt 0 ] || { echo "no statemachines/*.asl.json to check"; return 1; }
  return $rc
}

run_check "statelint" ps_statelint
run_check "state machine consistency: self-tests" python3 "$PAIRSCALE_ROOT/tests/statemachines/test_consistency.py"
run_check "state machine consistency" python3 "$PAIRSCALE_ROOT/tests/statemachines/consistency.py" "$PAIRSCALE_ROOT"

venv moto "$PAIRSCALE_ROOT/tests/requirements/moto.txt"
run_check "state machine scenarios in the emulator" \
  "$VENV_BIN/python" "$PAIRSCALE_ROOT/tests/statemachines/emulate.py" "$PAIRSCALE_ROOT/statemachines/scale.asl.json"
