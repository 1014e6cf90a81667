# Every Rust test in the workspace: unit, property, and integration tests against the local
# services started by tests/setup (their addresses are in the environment).
# A whole-workspace run builds every package's binaries once, with one feature set; tests that
# run another package's binary (the router's echo handler, the end-to-end tests' handlers) take
# it from the target dir rather than building it again.
export PAIRSCALE_WORKSPACE_TEST_RUN=1
# Every binary first, as ./sandbox builds them: a test builds only its own package's binaries,
# and the local stack runs the handlers and the local CodeBuild (pairscale-local-build, a
# package without tests of its own) from the target dir. On a machine whose target dir holds
# them from an earlier run this costs nothing; on a new one, without it, the stack's tests fail.
run_check "cargo build (every binary and test)" cargo build --workspace --all-targets --locked
# The tests that drain a real FreeSWITCH need this run's build of it (tests/setup/40-freeswitch.sh).
if declare -F ps_fs_wait >/dev/null; then ps_fs_wait; fi
if command -v cargo-nextest >/dev/null 2>&1; then
  run_check "cargo nextest" cargo nextest run --workspace --locked --no-fail-fast
else
  run_check "cargo test" cargo test --workspace --locked --no-fail-fast
fi
run_check "cargo doc tests" cargo test --workspace --locked --doc
