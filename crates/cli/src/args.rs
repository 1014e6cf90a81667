//! The command line, as clap reads it. Only shapes are checked here (a number is a number);
//! what a value may be (a fleet name, a count within limits) is checked by the same core
//! code the state machine runs, so the CLI never accepts what a run would refuse.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::time::Duration;

const AFTER_HELP: &str = "\
AWS settings are read as the AWS CLI reads them: AWS_REGION / AWS_DEFAULT_REGION, AWS_PROFILE,
the credential chain, and AWS_ENDPOINT_URL (for a local emulator). --region, --profile and
--endpoint-url override them.

Exit codes: 0 done; 1 failed (a run failed, a lock could not be broken, an AWS call failed);
2 bad usage or input; 3 timed out waiting (the run or drain goes on); 4 drift found (validate).";

/// pairscale: scale FreeSWITCH media-server pairs behind Kamailio.
#[derive(Debug, Parser)]
#[command(name = "pairscale", version, after_help = AFTER_HELP)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// Aligned tables for humans.
    Table,
    /// One JSON document on stdout, for scripts.
    Json,
}

#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// How results are printed.
    #[arg(long, global = true, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
    /// The scaling state machine (terraform output state_machine_arn).
    #[arg(long, global = true, env = "PAIRSCALE_STATE_MACHINE_ARN")]
    pub state_machine_arn: Option<String>,
    /// The fleet state table (terraform output table_name).
    #[arg(long, global = true, env = "PAIRSCALE_TABLE")]
    pub table: Option<String>,
    /// Root of the fleets' SSM parameters.
    #[arg(
        long,
        global = true,
        env = "PAIRSCALE_SSM_PREFIX",
        default_value = "/pairscale"
    )]
    pub ssm_prefix: String,
    /// The ECS cluster of the pairs' ESL clients (terraform output ecs_cluster_arn).
    #[arg(long, global = true, env = "PAIRSCALE_ECS_CLUSTER")]
    pub ecs_cluster: Option<String>,
    /// The drain function's name or ARN (terraform output function_arns, key "drain").
    #[arg(long, global = true, env = "PAIRSCALE_DRAIN_FUNCTION")]
    pub drain_function: Option<String>,
    /// The policy function's name or ARN (terraform output function_arns, key "policy").
    #[arg(long, global = true, env = "PAIRSCALE_POLICY_FUNCTION")]
    pub policy_function: Option<String>,
    /// Who you are, for lock owners (cli:<user>) and requested_by. Default: $USER.
    #[arg(long, global = true, env = "PAIRSCALE_USER")]
    pub user: Option<String>,
    /// AWS region (default: as the AWS CLI finds it).
    #[arg(long, global = true)]
    pub region: Option<String>,
    /// AWS profile (default: AWS_PROFILE, else "default").
    #[arg(long, global = true)]
    pub profile: Option<String>,
    /// Send every AWS call to this endpoint (default: AWS_ENDPOINT_URL).
    #[arg(long, global = true)]
    pub endpoint_url: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start a scaling run (an execution of the state machine); --wait follows it to the end.
    Scale(ScaleArgs),
    /// The fleet now: desired count, every pair, the lock, the last runs.
    Status(StatusArgs),
    /// What a request would do, from the fleet's real state. Changes nothing.
    Plan(PlanArgs),
    /// Show or break the fleet's scaling lock.
    Lock(LockArgs),
    /// The drift report: records against the EC2 instances and ECS services, pair by pair.
    Validate(FleetArg),
    /// Take one node out of rotation and wait for its calls to end (maintenance).
    #[command(long_about = DRAIN_ABOUT)]
    Drain(DrainArgs),
    /// Put a node drained with `pairscale drain` back into rotation.
    #[command(long_about = UNDRAIN_ABOUT)]
    Undrain(PairArgs),
    /// The scaling policy: explain a decision, suspend it, resume it.
    Policy(PolicyArgs),
}

#[derive(Debug, Clone, Args)]
pub struct PolicyArgs {
    #[command(subcommand)]
    pub command: PolicyCommand,
}

#[derive(Debug, Clone, Subcommand)]
pub enum PolicyCommand {
    /// The policy's inputs, each rule's recommendation and the decision, now or at --at.
    /// Never starts a run, never writes.
    Explain(ExplainArgs),
    /// Stop the policy starting runs (it goes on deciding and logging). Kept until resume.
    Suspend(SuspendArgs),
    /// Let the policy start runs again.
    Resume(FleetArg),
}

#[derive(Debug, Clone, Args)]
pub struct ExplainArgs {
    #[command(flatten)]
    pub fleet: FleetArg,
    /// The instant to decide at, RFC 3339 (e.g. 2026-12-05T08:00:00Z), within 15 minutes
    /// of now: a schedule's window is judged at it. Default: now.
    #[arg(long)]
    pub at: Option<String>,
}

#[derive(Debug, Clone, Args)]
pub struct SuspendArgs {
    #[command(flatten)]
    pub fleet: FleetArg,
    /// Why, kept with who and when.
    #[arg(long)]
    pub reason: String,
}

const DRAIN_ABOUT: &str = "\
Take one node out of rotation and wait for its calls to end, for maintenance.

Node level only: the node is disabled in the dispatcher and paused in FreeSWITCH (the drain
function's quiesce), then its channels are counted until none is left or the deadline passes.
The pair record is not changed: it stays `active`, so validation and scaling runs still count
the pair. The fleet's scaling lock is held (owner cli:<user>) while the command runs, so no run
works on the fleet meanwhile; it is released when the command ends, and the node stays out of
rotation until `pairscale undrain`. A scale-in started while the node is drained may choose it
(it has no calls) and remove it.";

const UNDRAIN_ABOUT: &str = "\
Put a node drained with `pairscale drain` back into rotation: resume FreeSWITCH both ways, then
enable it in the dispatcher (the drain function's resume). Holds the fleet's lock (cli:<user>)
while it works; the pair record is not changed.";

#[derive(Debug, Clone, Args)]
pub struct FleetArg {
    /// The fleet (1-40 characters of a-z, 0-9 and '-').
    #[arg(long)]
    pub fleet: String,
}

/// `--to N` or `--by ±K`, exactly one.
#[derive(Debug, Clone, Args)]
#[group(required = true, multiple = false)]
pub struct Target {
    /// Scale to exactly N pairs.
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub to: Option<i64>,
    /// Add (+K) or remove (-K) pairs.
    #[arg(long, value_name = "±K", allow_negative_numbers = true, value_parser = parse_signed)]
    pub by: Option<i64>,
}

#[derive(Debug, Clone, Args)]
pub struct ScaleArgs {
    #[command(flatten)]
    pub fleet: FleetArg,
    #[command(flatten)]
    pub target: Target,
    /// Why: shown in the execution's input and the lock record.
    #[arg(long)]
    pub reason: Option<String>,
    /// Plan and report only: the run takes the lock, validates and plans, and changes nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Follow the run to its end, showing progress; the exit code says how it ended.
    #[arg(long)]
    pub wait: bool,
    /// With --wait: give up waiting after this long (the run goes on). E.g. 90s, 30m, 2h.
    #[arg(long, default_value = "2h", value_parser = parse_duration)]
    pub timeout: Duration,
    /// With --wait: how often to look at the run.
    #[arg(long, default_value = "2s", value_parser = parse_duration, hide = true)]
    pub poll_interval: Duration,
    /// Who asks (default: --user).
    #[arg(long)]
    pub requested_by: Option<String>,
}

#[derive(Debug, Clone, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub fleet: FleetArg,
    /// Ask the nodes for their live channel counts (through the drain function), instead of
    /// showing the last count recorded.
    #[arg(long)]
    pub live: bool,
}

#[derive(Debug, Clone, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub fleet: FleetArg,
    #[command(flatten)]
    pub target: Target,
    /// Plan as a request with ignore_cooldown would.
    #[arg(long)]
    pub ignore_cooldown: bool,
}

#[derive(Debug, Clone, Args)]
pub struct LockArgs {
    #[command(subcommand)]
    pub command: LockCommand,
}

#[derive(Debug, Clone, Subcommand)]
pub enum LockCommand {
    /// The lock record: holder, token, age, expiry, and how it was last released or broken.
    Show(FleetArg),
    /// Break the lock when its holder is gone (expired, or its execution is no longer RUNNING).
    #[command(long_about = BREAK_ABOUT)]
    Break(BreakArgs),
}

const BREAK_ABOUT: &str = "\
Break the fleet's scaling lock.

Without --force, only a stale lock is broken: expired, or held by an execution that is no
longer RUNNING (DescribeExecution). With --force --reason, a lock held by anyone else (an
operator's cli:<who>, or an execution whose status cannot be read) is broken too. Never the
lock of a RUNNING execution: stop the execution first (aws stepfunctions stop-execution),
then break its lock without --force. Who broke it, when and why is kept on the lock item.";

#[derive(Debug, Clone, Args)]
pub struct BreakArgs {
    #[command(flatten)]
    pub fleet: FleetArg,
    /// Break a lock whose holder cannot be shown to be gone. Requires --reason.
    #[arg(long, requires = "reason")]
    pub force: bool,
    /// Why, kept on the lock item.
    #[arg(long)]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Args)]
pub struct PairArgs {
    #[command(flatten)]
    pub fleet: FleetArg,
    /// The pair, e.g. pair-0003.
    #[arg(long)]
    pub pair: String,
}

#[derive(Debug, Clone, Args)]
pub struct DrainArgs {
    #[command(flatten)]
    pub pair: PairArgs,
    /// Stop waiting after this long (default: the fleet's drain deadline). E.g. 90s, 30m, 2h.
    #[arg(long, value_parser = parse_duration)]
    pub deadline: Option<Duration>,
}

/// `+2`, `-1`, `3`: a signed whole number.
pub fn parse_signed(s: &str) -> Result<i64, String> {
    s.trim()
        .parse::<i64>()
        .map_err(|_| format!("'{s}' is not a whole number (e.g. +2 or -1)"))
}

/// `90`, `90s`, `30m`, `2h`, `1h30m`: a duration of whole seconds, at least one second.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let bad = || format!("'{s}' is not a duration (e.g. 90s, 30m, 2h, 1h30m)");
    let t = s.trim();
    if t.is_empty() {
        return Err(bad());
    }
    if let Ok(secs) = t.parse::<u64>() {
        return (secs > 0)
            .then(|| Duration::from_secs(secs))
            .ok_or_else(bad);
    }
    let mut total: u64 = 0;
    let mut digits = String::new();
    for c in t.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit = match c {
            'h' => 3600,
            'm' => 60,
            's' => 1,
            _ => return Err(bad()),
        };
        let n: u64 = digits.parse().map_err(|_| bad())?;
        total = n
            .checked_mul(unit)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(bad)?;
        digits.clear();
    }
    if !digits.is_empty() || total == 0 {
        return Err(bad());
    }
    Ok(Duration::from_secs(total))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use clap::error::ErrorKind;
    use clap::CommandFactory;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("pairscale").chain(args.iter().copied()))
    }

    #[test]
    fn the_command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn scale_takes_exactly_one_of_to_and_by() {
        let c = parse(&["scale", "--fleet", "voice", "--to", "4"]).unwrap();
        match c.command {
            Command::Scale(s) => {
                assert_eq!((s.target.to, s.target.by), (Some(4), None));
                assert_eq!(s.timeout, Duration::from_secs(7200));
            }
            other => panic!("{other:?}"),
        }
        for by in ["-1", "+2", "3"] {
            let c = parse(&["scale", "--fleet", "voice", "--by", by]).unwrap();
            let Command::Scale(s) = c.command else {
                panic!("scale")
            };
            assert_eq!(s.target.by, Some(by.parse::<i64>().unwrap()));
        }
        let e = parse(&["scale", "--fleet", "voice"]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::MissingRequiredArgument);
        let e = parse(&["scale", "--fleet", "voice", "--to", "3", "--by", "1"]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::ArgumentConflict);
        let e = parse(&["scale", "--fleet", "voice", "--to", "three"]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::ValueValidation);
        assert!(e.to_string().contains("--to"), "{e}");
    }

    #[test]
    fn usage_errors_exit_with_2() {
        let e = parse(&["scale", "--fleet", "voice"]).unwrap_err();
        assert_eq!(e.exit_code(), 2);
    }

    #[test]
    fn a_forced_break_needs_a_reason() {
        let e = parse(&["lock", "break", "--fleet", "voice", "--force"]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::MissingRequiredArgument);
        assert!(e.to_string().contains("--reason"), "{e}");
        let c = parse(&[
            "lock", "break", "--fleet", "voice", "--force", "--reason", "crashed",
        ])
        .unwrap();
        let Command::Lock(LockArgs {
            command: LockCommand::Break(b),
        }) = c.command
        else {
            panic!("break")
        };
        assert!(b.force);
        assert_eq!(b.reason.as_deref(), Some("crashed"));
    }

    #[test]
    fn global_options_go_anywhere() {
        let c = parse(&["status", "--fleet", "voice", "--output", "json"]).unwrap();
        assert_eq!(c.global.output, OutputFormat::Json);
        let c = parse(&["--output", "json", "validate", "--fleet", "voice"]).unwrap();
        assert_eq!(c.global.output, OutputFormat::Json);
        assert!(parse(&["status", "--fleet", "voice", "--output", "yaml"]).is_err());
    }

    #[test]
    fn durations_read_as_people_write_them() {
        assert_eq!(parse_duration("90").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("90s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("30m").unwrap(), Duration::from_secs(1800));
        assert_eq!(parse_duration("2h").unwrap(), Duration::from_secs(7200));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        for bad in ["", "0", "0s", "m", "10x", "1.5h", "-3m", "3m5", "h1"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
