# Every Rust test in the workspace: unit, property, and integration tests against the local
# services started by tests/setup (their addresses are in the environment).
if command -v cargo-nextest >/dev/null 2>&1; then
  run_check "cargo nextest" cargo nextest run --workspace --locked --no-fail-fast
else
  run_check "cargo test" cargo test --workspace --locked --no-fail-fast
fi
run_check "cargo doc tests" cargo test --workspace --locked --doc
