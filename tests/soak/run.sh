#!/usr/bin/env bash
# Fault-injection soak: CYCLES randomized scale cycles against the local stack, one fault each
# (crates/localstack/stack/tests/soak.rs), then a table of the outcome by fault kind. It goes on
# after a violation, to count them, and exits 1 if there was any. See docs/benchmarks.md.
#
#   tests/soak/run.sh CYCLES [SEED]     (no SEED: a fresh one from the clock, printed)
#   tests/soak/run.sh --table REPORT    the table of a report, of a soak cut short too
#
# Each cycle appends a JSON line to $PAIRSCALE_SOAK_REPORT (default
# /tmp/pairscale-soak-SEED.jsonl).
set -euo pipefail

# table REPORT: by fault kind, the cycles, those with violations, how the cycle's (first) run
# ended, the repair runs, and how the calls that did not end by themselves ended.
table() {
  python3 - "$1" <<'PY'
import json, sys
from collections import defaultdict
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
cols = ["cycles", "violations", "succeeded", "failed", "aborted", "repairs",
        "forced", "lost_by_fault", "never_routed", "secs"]
by = defaultdict(lambda: defaultdict(float))
for r in rows:
    for key in (r["fault"], "all"):
        b = by[key]
        b["cycles"] += 1
        b["violations"] += 1 if r["violations"] else 0
        b[r["outcome"]] += 1
        b["repairs"] += r["repairs"]
        for c in ("forced", "lost_by_fault", "never_routed"):
            b[c] += r["calls"][c]
        b["secs"] += r["secs"]
print("| fault | " + " | ".join(cols) + " |")
print("|---|" + "---:|" * len(cols))
for key in sorted(k for k in by if k != "all") + ["all"]:
    b = by[key]
    cells = [str(int(b[c])) if c != "secs" else f"{b[c] / b['cycles']:.1f}" for c in cols]
    print(f"| {key} | " + " | ".join(cells) + " |")
print("\n(violations: cycles with at least one; forced, lost_by_fault, never_routed: calls;"
      " secs: mean seconds per cycle)")
for r in rows:
    for v in r["violations"]:
        print(f"seed {r['seed']} cycle {r['cycle']} {r['fault']} [{r['detail']}]: {v}")
PY
}

if [ "${1:-}" = --table ]; then
  [ $# = 2 ] || { echo "usage: $0 --table REPORT" >&2; exit 2; }
  table "$2"
  exit 0
fi
[ $# -ge 1 ] && [ $# -le 2 ] || { echo "usage: $0 CYCLES [SEED]" >&2; exit 2; }
cycles=$1
seed=${2:-$(date +%s%N)}

export PAIRSCALE_ROOT=${PAIRSCALE_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
cd "$PAIRSCALE_ROOT"
# shellcheck source=../lib/common.sh
source tests/lib/common.sh
trap ps_cleanup EXIT INT TERM
# The soak deploys through the SDK with the build stand-in and simulated nodes: neither
# Terraform, Ansible nor FreeSWITCH is needed.
for step in tests/setup/10-moto.sh tests/setup/15-router.sh tests/setup/30-kamailio.sh; do
  section "$(basename "$step")"
  # shellcheck disable=SC1090
  source "$step"
done

section "build"
cargo build --locked --workspace --all-targets

# Outside the work folder, which goes with the services: a soak cut short keeps its report.
report=${PAIRSCALE_SOAK_REPORT:-/tmp/pairscale-soak-$seed.jsonl}
section "soak: $cycles cycles, seed $seed (report $report)"
started=$(date +%s)
status=0
PAIRSCALE_SOAK_CYCLES=$cycles PAIRSCALE_SOAK_SEED=$seed PAIRSCALE_SOAK_REPORT=$report \
  PAIRSCALE_SOAK_KEEP_GOING=1 \
  cargo nextest run --locked --workspace --profile soak --no-capture \
    -E 'binary(soak) & test(the_soak_keeps_every_invariant_through_random_faults)' || status=$?
echo "soak: seed $seed, $(( $(date +%s) - started )) s"

section "outcome by fault kind"
table "$report"
exit $status
