//! The demo itself: the `pairscale` CLI scaling the deployed fleet, and what each run did
//! (the builds it started, Kamailio's dispatcher set afterwards, the nodes it left).

use crate::media::{self, Nodes};
use anyhow::{bail, Context as _, Result};
use pairscale_stack::{binary, Stack, REGION};
use std::collections::BTreeSet;
use std::process::Command;

pub fn heading(text: &str) {
    println!("\n=== {text}");
}

/// The CLI, pointed at this stack.
pub fn cli(s: &Stack, args: &[&str]) -> Result<Command> {
    let mut cmd = Command::new(binary("pairscale")?);
    cmd.args(args)
        .env("PAIRSCALE_STATE_MACHINE_ARN", &s.state_machine)
        .env("PAIRSCALE_TABLE", &s.table)
        .env("PAIRSCALE_SSM_PREFIX", &s.prefix)
        .env("PAIRSCALE_ECS_CLUSTER", &s.cluster)
        .env("PAIRSCALE_DRAIN_FUNCTION", s.function("drain"))
        .env("PAIRSCALE_USER", "sandbox")
        .env("AWS_REGION", REGION);
    Ok(cmd)
}

fn run_cli(s: &Stack, args: &[&str]) -> Result<()> {
    println!("$ pairscale {}", args.join(" "));
    let status = cli(s, args)?.status().context("could not run pairscale")?;
    if !status.success() {
        bail!("pairscale {} ended with {status}", args.join(" "));
    }
    Ok(())
}

/// The builds a run started (the router ran them on this machine): project, number, how they
/// ended, whether each was the real tool or the stand-in, and the line that says what it did.
async fn show_builds(s: &Stack, seen: &mut BTreeSet<String>) -> Result<()> {
    let mut builds = s.try_builds(&s.tf_project).await?;
    builds.extend(s.try_builds(&s.an_project).await?);
    builds.sort_by(|a, b| {
        a["start_time"]
            .as_f64()
            .partial_cmp(&b["start_time"].as_f64())
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    println!("Builds this run started (run here by the local CodeBuild):");
    for b in builds {
        let id = b["id"].as_str().unwrap_or_default().to_string();
        if !seen.insert(id) {
            continue;
        }
        let log = b["log_path"]
            .as_str()
            .and_then(|p| std::fs::read_to_string(p).ok())
            .unwrap_or_default();
        let (kind, summary) = what_it_did(&log);
        println!(
            "  {} #{:<2} {:<10} {kind:<15} {summary}",
            b["project"].as_str().unwrap_or_default(),
            b["build_number"],
            b["status"].as_str().unwrap_or_default(),
        );
    }
    Ok(())
}

/// From a build's log: whether it was the real tool or the stand-in, and the line that says
/// what it did.
fn what_it_did(log: &str) -> (&'static str, String) {
    let kind = if log.starts_with("LOCAL BUILD of the terraform") {
        "real terraform"
    } else if log.starts_with("LOCAL BUILD of the ansible") {
        "real ansible"
    } else if log.starts_with("LOCAL STAND-IN") {
        "stand-in"
    } else {
        "?"
    };
    let summary = log
        .lines()
        .rev()
        .find(|l| {
            l.starts_with("Apply complete!")
                || (l.starts_with("localhost ") && l.contains("changed="))
                || l.starts_with("playbook ")
                || l.starts_with("apply complete")
                || l.starts_with("build failed")
        })
        .unwrap_or("");
    (
        kind,
        summary.split_whitespace().collect::<Vec<_>>().join(" "),
    )
}

async fn show_dispatcher(s: &Stack) -> Result<()> {
    let rows = s.try_dispatcher_rows().await?;
    println!("Kamailio dispatcher set {}:", s.set_id);
    for (pair, (uri, flags)) in &rows {
        let state = if flags & 4 != 0 {
            "disabled: no new calls"
        } else {
            "in rotation"
        };
        println!("  {pair}  {uri:<28} {state}");
    }
    if rows.is_empty() {
        println!("  (no destinations)");
    }
    Ok(())
}

/// `pairscale scale --fleet F --to N --reason R --wait`.
fn scale_to(s: &Stack, to: &str, reason: &str) -> Result<()> {
    run_cli(
        s,
        &[
            "scale", "--fleet", &s.fleet, "--to", to, "--reason", reason, "--wait",
        ],
    )
}

/// Bring the fleet to 2 pairs, scale it out to 4 and in to 2 with the CLI, showing the builds
/// each run started and Kamailio's dispatcher set after it (and, at 4, what each node is); on
/// real FreeSWITCH, SIP calls up while the scale-in runs; end with `pairscale status`.
pub async fn run(s: &Stack, nodes: &Nodes) -> Result<()> {
    let mut seen = BTreeSet::new();
    heading("Bringing the fleet to 2 pairs (a scale-out run from nothing)");
    scale_to(s, "2", "sandbox: initial fleet")?;
    show_builds(s, &mut seen).await?;
    show_dispatcher(s).await?;

    heading("Scale-out 2 → 4");
    scale_to(s, "4", "sandbox: calls per pair high")?;
    show_builds(s, &mut seen).await?;
    show_dispatcher(s).await?;
    media::show(s).await?;

    heading("Scale-in 4 → 2 (the drained pairs' calls end before they are removed)");
    let calls = if nodes.is_real() {
        Some(media::place_calls(s).await?)
    } else {
        None
    };
    scale_to(s, "2", "sandbox: calls per pair low")?;
    if let Some(calls) = calls {
        media::finish(calls).await?;
    }
    show_builds(s, &mut seen).await?;
    println!("The removed pairs are gone from the dispatcher; the rest take calls:");
    show_dispatcher(s).await?;

    heading("pairscale status");
    run_cli(s, &["status", "--fleet", &s.fleet, "--live"])?;
    Ok(())
}
