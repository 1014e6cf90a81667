//! `scale` (with and without `--wait`), and the reads that follow a run: `status`, `plan`,
//! `validate`; usage errors first.

use crate::common::{assert_code, command, pairscale, two_pairs, USER};
use pairscale_stack::{stack, Options};
use pairscale_testkit as kit;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_exits_2_and_names_the_field() {
    for (args, names) in [
        (
            vec!["scale", "--fleet", "Voice_EU", "--to", "2"],
            vec!["fleet", "--fleet"],
        ),
        (
            vec!["scale", "--fleet", "voice", "--to", "5000"],
            vec!["target_pair_count", "--to"],
        ),
        (
            vec!["scale", "--fleet", "voice", "--by", "0"],
            vec!["delta", "--by"],
        ),
        (vec!["scale", "--fleet", "voice"], vec!["--to", "--by"]),
        (
            vec!["scale", "--fleet", "voice", "--to", "two"],
            vec!["--to"],
        ),
        (
            vec!["plan", "--fleet", "voice", "--to", "-3"],
            vec!["target_pair_count"],
        ),
        (
            vec!["lock", "break", "--fleet", "voice", "--force"],
            vec!["--reason"],
        ),
        (
            vec!["drain", "--fleet", "voice", "--pair", "p1"],
            vec!["pair_id", "--pair"],
        ),
    ] {
        let r = pairscale(None, &args).await;
        assert_code(&r, 2);
        for n in names {
            assert!(r.stderr.contains(n), "{args:?}: no '{n}' in {}", r.stderr);
        }
    }
    // A valid request with nowhere to go: the message says where the setting comes from.
    let r = pairscale(None, &["scale", "--fleet", "voice", "--to", "2"]).await;
    assert_code(&r, 2);
    assert!(
        r.stderr.contains("PAIRSCALE_STATE_MACHINE_ARN")
            && r.stderr.contains("terraform output state_machine_arn"),
        "{}",
        r.stderr
    );
    let r = pairscale(None, &["status", "--fleet", "voice", "--output", "json"]).await;
    assert_code(&r, 2);
    assert!(r.stderr.contains("PAIRSCALE_TABLE"), "{}", r.stderr);
    assert_eq!(r.json()["error"]["exit_code"], 2);
    // Arguments the parser itself refuses: under --output json, a JSON error on stdout too.
    for args in [
        vec![
            "--output", "json", "scale", "--fleet", "voice", "--to", "two",
        ],
        vec![
            "scale",
            "--output=json",
            "--fleet",
            "voice",
            "--no-such-flag",
        ],
        vec!["--output", "json", "frobnicate"],
    ] {
        let r = pairscale(None, &args).await;
        assert_code(&r, 2);
        let e = &r.json()["error"];
        assert_eq!(e["exit_code"], 2, "{args:?}: {}", r.stdout);
        assert!(!e["message"].as_str().unwrap().is_empty(), "{}", r.stdout);
        assert!(r.stderr.contains("error:"), "{}", r.stderr);
    }
    let r = pairscale(None, &["scale", "--fleet", "voice", "--to", "two"]).await;
    assert_code(&r, 2);
    assert!(
        r.stdout.is_empty(),
        "table output keeps usage errors off stdout: {}",
        r.stdout
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_while_waiting_says_the_run_goes_on() {
    let s = two_pairs(Options {
        policy: "wait",
        deadline_seconds: 300,
        initial_calls: 1,
        ..Options::default()
    })
    .await;
    let mut cmd = command(
        Some(&s),
        &[
            "scale", "--fleet", &s.fleet, "--by", "-1", "--wait", "--reason", "night",
        ],
    );
    cmd.stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let child = cmd.spawn().unwrap();
    let pid = child.id().unwrap().to_string();
    // Interrupt once the drain is waiting on the call (bounded: the deadline is 300 s).
    let mut ran = false;
    for _ in 0..120 {
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        let (_, shown) = s
            .invoke("lock", json!({"action": "show", "fleet": s.fleet}))
            .await;
        if shown["held"] == true {
            ran = true;
            break;
        }
    }
    assert!(ran, "the run never took the lock");
    let kill = tokio::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .await
        .unwrap();
    assert!(kill.success());
    let out = tokio::time::timeout(std::time::Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("pairscale ended after Ctrl-C")
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("the run goes on"), "{stderr}");
    assert!(
        stderr.contains("stop-execution --execution-arn arn:"),
        "{stderr}"
    );
    // It does go on: still running, lock held.
    let (_, shown) = s
        .invoke("lock", json!({"action": "show", "fleet": s.fleet}))
        .await;
    assert_eq!(shown["held"], true, "{shown}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_goes_through_the_state_machine_and_changes_nothing() {
    let s = stack(Options::default()).await;
    let r = pairscale(
        Some(&s),
        &[
            "scale",
            "--fleet",
            &s.fleet,
            "--to",
            "2",
            "--dry-run",
            "--wait",
            "--reason",
            "test",
            "--output",
            "json",
        ],
    )
    .await;
    assert_code(&r, 0);
    let v = r.json();
    assert_eq!(v["status"], "SUCCEEDED", "{v}");
    assert_eq!(v["output"]["outcome"], "dry_run", "{v}");
    assert_eq!(v["output"]["plan"]["action"], "scale_out", "{v}");
    assert_eq!(v["request"]["requested_by"], USER);
    let name = v["name"].as_str().unwrap();
    assert!(
        name.starts_with(&format!("{}-to-2-dry-{USER}-", s.fleet)),
        "{name}"
    );
    assert!(
        v["console_url"]
            .as_str()
            .unwrap()
            .ends_with(v["execution_arn"].as_str().unwrap()),
        "{v}"
    );
    // Progress goes to stderr, never into the JSON.
    // (Lines start with the seconds since the run started: `[0s] `, or later on a loaded
    // machine.)
    let first = r.stderr.lines().next().unwrap_or_default();
    let secs = first
        .strip_prefix('[')
        .and_then(|l| l.split_once("s] "))
        .map(|(n, _)| n);
    assert!(
        secs.is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit())),
        "{}",
        r.stderr
    );
    assert_eq!(s.pair_count().await, "0");
    assert!(s.records().await.is_empty());
    assert!(s.instances().await.is_empty());
    assert!(!s.lock_held().await);

    // For a person: what started, where to see it, how it ended.
    let r = pairscale(
        Some(&s),
        &[
            "scale",
            "--fleet",
            &s.fleet,
            "--by",
            "+1",
            "--dry-run",
            "--wait",
        ],
    )
    .await;
    assert_code(&r, 0);
    assert!(r.stdout.starts_with("Started "), "{}", r.stdout);
    assert!(r.stdout.contains("console:   https://us-east-1.console.aws.amazon.com/states/home?region=us-east-1#/v2/executions/details/arn:aws:states:"), "{}", r.stdout);
    assert!(r.stdout.contains("SUCCEEDED"), "{}", r.stdout);
    assert!(
        r.stdout
            .contains("dry run, nothing changed; the plan: scale out 0 → 1"),
        "{}",
        r.stdout
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scale_out_then_status_plan_and_validate_read_the_real_fleet() {
    let s = stack(Options::default()).await;
    let r = pairscale(
        Some(&s),
        &[
            "scale", "--fleet", &s.fleet, "--to", "2", "--wait", "--output", "json",
        ],
    )
    .await;
    assert_code(&r, 0);
    let v = r.json();
    assert_eq!(v["output"]["outcome"], "scaled", "{v}");
    let added: Vec<String> = serde_json::from_value(v["output"]["pairs_added"].clone()).unwrap();
    assert_eq!(added.len(), 2);
    // Progress: the states the run went through, one line each time it moved on.
    assert!(r.stderr.contains("] Out: "), "{}", r.stderr);
    assert_eq!(s.pair_count().await, "2");

    // status
    let r = pairscale(
        Some(&s),
        &["status", "--fleet", &s.fleet, "--output", "json"],
    )
    .await;
    assert_code(&r, 0);
    let st = r.json();
    assert_eq!(st["desired_count"], 2, "{st}");
    assert_eq!(st["active_count"], 2, "{st}");
    let instances = s.instances().await;
    for (i, pair) in added.iter().enumerate() {
        assert_eq!(st["pairs"][i]["pair_id"], *pair);
        assert_eq!(st["pairs"][i]["status"], "active");
        assert_eq!(st["pairs"][i]["address"], instances[pair].as_str());
    }
    assert_eq!(st["lock"]["held"], false, "{st}");
    assert_eq!(st["executions"][0]["name"], v["name"], "{st}");
    assert_eq!(st["executions"][0]["status"], "SUCCEEDED", "{st}");
    let r = pairscale(Some(&s), &["status", "--fleet", &s.fleet]).await;
    assert_code(&r, 0);
    assert!(
        r.stdout
            .contains(&format!("Fleet {}: 2 desired, 2 active", s.fleet)),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("Lock: free (last released"),
        "{}",
        r.stdout
    );
    assert!(!r.stdout.contains('\x1b'), "no colour when not a terminal");
    // Live counts, through the drain function.
    let r = pairscale(
        Some(&s),
        &["status", "--fleet", &s.fleet, "--live", "--output", "json"],
    )
    .await;
    assert_code(&r, 0);
    let st = r.json();
    for i in 0..2 {
        assert_eq!(st["pairs"][i]["channels_source"], "live", "{st}");
        assert_eq!(st["pairs"][i]["channels"], 0, "{st}");
    }

    // plan: a scale-in names the eligible pairs; nothing changes.
    let r = pairscale(
        Some(&s),
        &[
            "plan", "--fleet", &s.fleet, "--by", "-1", "--output", "json",
        ],
    )
    .await;
    assert_code(&r, 0);
    let p = r.json();
    assert_eq!(p["outcome"]["plan"]["action"], "scale_in", "{p}");
    assert_eq!(p["outcome"]["plan"]["remove"], 1, "{p}");
    assert_eq!(p["outcome"]["plan"]["eligible"], json!(added), "{p}");
    assert_eq!(p["pairs"][0]["eligible"], true, "{p}");
    let r = pairscale(Some(&s), &["plan", "--fleet", &s.fleet, "--to", "5"]).await;
    assert_code(&r, 0);
    assert!(
        r.stdout.contains("Plan: scale out 2 → 5: add 3 pair(s)"),
        "{}",
        r.stdout
    );
    assert_eq!(s.pair_count().await, "2");
    assert_eq!(s.records().await.len(), 2);

    // validate: valid now; an instance nobody recorded is drift, exit 4.
    let r = pairscale(Some(&s), &["validate", "--fleet", &s.fleet]).await;
    assert_code(&r, 0);
    assert!(r.stdout.contains(": valid"), "{}", r.stdout);
    kit::run_instance(&s.sdk, &s.fleet, Some("pair-0042")).await;
    let r = pairscale(
        Some(&s),
        &["validate", "--fleet", &s.fleet, "--output", "json"],
    )
    .await;
    assert_code(&r, 4);
    let d = r.json();
    assert_eq!(d["valid"], false);
    let stray = d["pairs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["pair_id"] == "pair-0042")
        .unwrap();
    assert_eq!(stray["findings"], json!(["orphan_instance"]), "{d}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_on_a_scale_in_shows_the_channels_left_per_pair_and_the_deadline() {
    let s = two_pairs(Options {
        policy: "abort",
        deadline_seconds: 4,
        initial_calls: 1,
        ..Options::default()
    })
    .await;
    let r = pairscale(
        Some(&s),
        &[
            "scale", "--fleet", &s.fleet, "--by", "-1", "--wait", "--reason", "night",
        ],
    )
    .await;
    // Under policy abort the calls outlast the deadline: the run fails and says why.
    assert_code(&r, 1);
    assert!(r.stdout.contains("FAILED"), "{}", r.stdout);
    assert!(
        r.stdout.contains("error: Pairscale.DrainDeadline"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("cause: "), "{}", r.stdout);
    // One candidate (a spare would leave no pair serving), its call still up.
    let pairs: Vec<String> = s.instances().await.into_keys().collect();
    assert!(
        r.stderr.contains("] In: drain")
            && pairs
                .iter()
                .any(|p| r.stderr.contains(&format!("channels left: {p} 1 ch"))),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("deadline in ") || r.stderr.contains("deadline passed"),
        "{}",
        r.stderr
    );
    assert_eq!(s.pair_count().await, "2");
}
