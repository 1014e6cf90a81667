# Formatting and lints, warnings denied, over the whole workspace.
if [ "$NO_LINT" = 1 ]; then
  skip lint "--no-lint given"
else
  run_check "cargo fmt --check" cargo fmt --all -- --check
  run_check "cargo clippy -D warnings" cargo clippy --workspace --all-targets --locked -- -D warnings
fi
