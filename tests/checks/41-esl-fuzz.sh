# Fuzzes the ESL frame parser for a bounded time with cargo-fuzz (crates/esl/fuzz). Needs
# cargo-fuzz and a nightly toolchain; without them it is skipped (the bounded random-input
# property tests in crates/esl/tests/split.rs still run with the other cargo tests).
esl_fuzz() {
  local secs=${ESL_FUZZ_SECONDS:-60}
  if ! command -v cargo-fuzz >/dev/null 2>&1; then
    skip "esl fuzz" "cargo-fuzz is not installed (cargo install cargo-fuzz)"
    return 0
  fi
  if ! rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    skip "esl fuzz" "no nightly toolchain (rustup toolchain install nightly)"
    return 0
  fi
  run_check "esl fuzz (frame, ${secs}s)" \
    bash -c 'cd "$1/crates/esl" && mkdir -p fuzz/corpus/frame && cargo +nightly fuzz run frame fuzz/corpus/frame tests/fixtures -- -max_total_time="$2"' \
    _ "$PAIRSCALE_ROOT" "$secs"
}
esl_fuzz
