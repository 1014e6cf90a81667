# The FreeSWITCH simulator seen by an independent client: FreeSWITCH's own libesl (PyPI
# FreeSWITCH-ESL-Python) talks to one pairscale-fssim node and must get the answers a real
# FreeSWITCH would give (tests/esl/crosscheck.py). Sourced by tests/run.
esl_crosscheck() {
  local out="$PS_WORK/fssim.out" addr="" i
  # The library is compiled from source at install time.
  apt_ensure g++
  venv esl "$PAIRSCALE_ROOT/tests/requirements/esl.txt"
  if ! cargo build --locked -q -p pairscale-fssim; then
    fail "esl crosscheck (building pairscale-fssim)"
    return 0
  fi
  "$CARGO_TARGET_DIR/debug/pairscale-fssim" --nodes 1 --initial-calls 20 --initial-bridged 5 \
    --heartbeat-secs 1 > "$out" 2> "$PS_WORK/fssim.log" &
  track_pid $! fssim
  for ((i = 0; i < 100; i++)); do
    addr=$(head -n 1 "$out" 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["addr"])' 2>/dev/null || true)
    [ -n "$addr" ] && break
    sleep 0.1
  done
  if [ -z "$addr" ]; then
    tail -20 "$PS_WORK/fssim.log"
    fail "esl crosscheck (pairscale-fssim did not start)"
    return 0
  fi
  log "fssim node at $addr"
  run_check "esl crosscheck (libesl vs fssim)" \
    timeout 120 "$VENV_BIN/python" "$PAIRSCALE_ROOT/tests/esl/crosscheck.py" \
    --addr "$addr" --calls 20 --bridged 5
}
esl_crosscheck
