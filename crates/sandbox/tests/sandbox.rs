//! The README's first command, non-interactively: `pairscale-sandbox` runs the whole
//! scale-out and scale-in against the local stack the test command started, through the CLI.
#![allow(clippy::unwrap_used)]

use std::process::Command;

#[test]
fn the_sandbox_scales_out_and_in_and_exits_0() {
    let out = Command::new(env!("CARGO_BIN_EXE_pairscale-sandbox"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "exit {:?}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        out.status
    );
    for needle in [
        "Scale-out 2 → 4",
        "Scale-in 4 → 2",
        "$ pairscale status --fleet",
        "Done: scaled out 2 → 4 and in 4 → 2",
    ] {
        assert!(stdout.contains(needle), "{needle:?} not in:\n{stdout}");
    }
    // Two pairs stay in rotation at the end, and two were removed from the dispatcher.
    let last = stdout.rsplit("Kamailio dispatcher set").next().unwrap();
    assert_eq!(last.matches("in rotation").count(), 2, "{last}");
    assert!(!last.contains("disabled"), "{last}");
}
