# Fuzzes the ESL frame parser for a bounded time with cargo-fuzz (crates/esl/fuzz, libFuzzer
# with AddressSanitizer). cargo-fuzz is installed into the cache on first use. It needs
# nightly-only compiler flags: with no nightly toolchain on the machine, the stable compiler is
# allowed them with RUSTC_BOOTSTRAP=1 (for this fuzz build only). The bounded random-input
# property tests in crates/esl/tests/split.rs run with the other cargo tests as well.
#   ESL_FUZZ_SECONDS   how long to fuzz (default 30)
esl_fuzz() {
  local secs=${ESL_FUZZ_SECONDS:-30} tools="$PS_CACHE/tools" toolchain=()
  if ! command -v cargo-fuzz >/dev/null 2>&1 && [ ! -x "$tools/bin/cargo-fuzz" ]; then
    log "installing cargo-fuzz into $tools"
    cargo install --locked --quiet --root "$tools" cargo-fuzz@0.13.2 || { fail "esl fuzz (installing cargo-fuzz)"; return 0; }
  fi
  export PATH="$tools/bin:$PATH"
  if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    toolchain=(+nightly)
  fi
  run_check "esl fuzz (frame, ${secs}s)" \
    env RUSTC_BOOTSTRAP=1 bash -c 'cd "$1/crates/esl" && mkdir -p fuzz/corpus/frame && cargo "${@:3}" fuzz run frame fuzz/corpus/frame tests/fixtures -- -max_total_time="$2" 2>&1 | tail -3; exit "${PIPESTATUS[0]}"' \
    _ "$PAIRSCALE_ROOT" "$secs" "${toolchain[@]+"${toolchain[@]}"}"
}
esl_fuzz
