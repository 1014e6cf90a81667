#!/usr/bin/env bash
# run.sh SIP_PORT HTTP_PORT RUNDIR: one test Kamailio (kamailio.cfg beside this script) in the
# foreground, replacing this shell, so the caller's PID is Kamailio's main process (TERM stops
# it and its children). SIP on udp:127.0.0.1:SIP_PORT, JSON-RPC on
# http://127.0.0.1:HTTP_PORT/RPC, the dispatcher list from $PAIRSCALE_TEST_PG_URL, modules from
# $KAMAILIO_MODULE_DIR (both exported by tests/setup/30-kamailio.sh); logs to standard error.
# KAMAILIO_RELOAD_DELTA, if set, is the dispatcher's reload_delta in seconds (else 0).
#
# tests/setup/30-kamailio.sh starts the shared instances with it; tests that stop and start a
# Kamailio of their own (crates/dispatcher/tests/common) run it too, so every test instance
# is started one way.
set -euo pipefail
[ $# = 3 ] || { echo "usage: $0 SIP_PORT HTTP_PORT RUNDIR" >&2; exit 2; }
: "${PAIRSCALE_TEST_PG_URL:?set by tests/setup/30-kamailio.sh}"
: "${KAMAILIO_MODULE_DIR:?set by tests/setup/30-kamailio.sh}"
cfg="$(cd "$(dirname "$0")" && pwd)/kamailio.cfg"
mkdir -p "$3"
defines=()
if [ -n "${KAMAILIO_RELOAD_DELTA:-}" ]; then
  [[ $KAMAILIO_RELOAD_DELTA =~ ^[0-9]{1,3}$ ]] \
    || { echo "KAMAILIO_RELOAD_DELTA must be a whole number of seconds (got '$KAMAILIO_RELOAD_DELTA')" >&2; exit 2; }
  defines=(-A "RELOAD_DELTA=$KAMAILIO_RELOAD_DELTA")
fi
# -DD: no daemon; -E: log to stderr. Absolute paths throughout: kamailio chdirs to /.
exec kamailio -DD -E \
  -f "$cfg" \
  -L "$KAMAILIO_MODULE_DIR" \
  -P "$3/kamailio.pid" \
  -Y "$3" \
  -A "DBURL=\"$PAIRSCALE_TEST_PG_URL\"" \
  "${defines[@]}" \
  -l "udp:127.0.0.1:$1" \
  -l "tcp:127.0.0.1:$2" \
  -m 64 -M 8
