#!/usr/bin/env bash
# Drain benchmark: the drain handler's `check` over a thousand simulated FreeSWITCH nodes in
# one invocation, then the same nodes one after another. See docs/benchmarks.md.
#
#   tests/bench/drain.sh [nodes (1000)] [concurrency (64)]
set -euo pipefail

export PAIRSCALE_ROOT=${PAIRSCALE_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
cd "$PAIRSCALE_ROOT"
# shellcheck source=../lib/common.sh
source tests/lib/common.sh
trap ps_cleanup EXIT

section "build (release)"
cargo build --release -p pairscale-lambdas --example drain-check-bench

section "benchmark"
# The program raises its own open-file limit to the hard limit: a thousand nodes on loopback
# hold both ends of every connection in this one process.
"$CARGO_TARGET_DIR/release/examples/drain-check-bench" "$@"
