#!/usr/bin/env bash
# The tests that wait on time (the end-to-end runs through the state machine, the drains of
# real FreeSWITCH, the CLI against the local stack, the sandbox) run while stress-ng keeps every
# core busy: no test may rely on a wall-clock margin a loaded machine does not give. Prints the
# load it ran under and nextest's summary; exits as the tests did.
#
#   tests/load/under-load.sh [--hogs N] [nextest filter]   (default: one CPU hog per core)
set -euo pipefail

export PAIRSCALE_ROOT=${PAIRSCALE_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
cd "$PAIRSCALE_ROOT"
# shellcheck source=../lib/common.sh
source tests/lib/common.sh
# The tests' status survives stopping stress-ng: ps_cleanup exits with the status it is given.
trap 'ps_rc=$?; kill "${ps_stress_pid:-}" 2>/dev/null || true; (exit "$ps_rc"); ps_cleanup' EXIT INT TERM

hogs=$(nproc)
if [ "${1:-}" = --hogs ]; then hogs=$2; shift 2; fi
filter=${1:-'package(pairscale-stack) | package(pairscale-cli) | (package(pairscale-freeswitch) & binary(drain)) | package(pairscale-sandbox) | (package(pairscale-lambdas) & binary(drain))'}

apt_ensure stress-ng
for step in tests/setup/*.sh; do
  section "$(basename "$step" .sh)"
  # shellcheck disable=SC1090
  source "$step"
done
section "build"
cargo build --workspace --all-targets --locked --quiet

section "tests under load"
stress-ng --cpu "$hogs" --timeout 2h --quiet &
ps_stress_pid=$!
sleep 2
log "stress-ng: $hogs CPU hog(s) on $(nproc) core(s); load average $(cut -d' ' -f1-3 /proc/loadavg)"
rc=0
cargo nextest run --workspace --no-fail-fast -E "$filter" || rc=$?
log "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
exit "$rc"
