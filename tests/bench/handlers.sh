#!/usr/bin/env bash
# Handler benchmark: release binary size, cold start and warm overhead of pairscale-lock and
# pairscale-state, under the local Lambda Runtime API against moto. See docs/benchmarks.md.
#
#   tests/bench/handlers.sh [--cold-starts N] [--warm N]
set -euo pipefail

export PAIRSCALE_ROOT=${PAIRSCALE_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
cd "$PAIRSCALE_ROOT"
# shellcheck source=../lib/common.sh
source tests/lib/common.sh
trap ps_cleanup EXIT

section "build (release)"
# Two builds, not one: built together, the bench's HTTP server would switch on hyper's server
# half for the SDK too, and the handler binaries would no longer be the ones deployed.
cargo build --release -p pairscale-lambdas
cargo build --release -p pairscale-bench

section "local AWS emulator"
# shellcheck source=../setup/10-moto.sh
source tests/setup/10-moto.sh

section "benchmark"
"$CARGO_TARGET_DIR/release/pairscale-bench-handlers" "$CARGO_TARGET_DIR/release" "$@"
