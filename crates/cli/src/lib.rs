//! `pairscale`, the operator's command line: start and follow scaling runs (executions of the
//! one state machine), and look at a fleet the way the handlers do, through the same adapters
//! and the same core code (request parsing, planner, validation, lock rules). Nothing here
//! changes fleet records: every change goes through a run, except the lock (`lock break`,
//! held by `drain`/`undrain` while they work) and a node's rotation (`drain`/`undrain`,
//! through the drain function).
//!
//! Layout:
//! - [`args`]: the command line (clap).
//! - [`settings`]: flags and environment → settings, and the adapters (`pairscale-aws`).
//! - [`commands`]: one module per command, each returning a view and an exit code; `runs`
//!   holds what a run shows, for `scale` and `status`.
//! - [`progress`]: a run's progress read from its execution history.
//! - [`render`]: tables, colour, times; [`render::View`] is what commands print.
//! - [`status_line`]: the progress line on stderr while a command waits (live on a terminal,
//!   plain in a log).
//! - [`error`]: failures, their exit codes and what to do next.

pub mod args;
pub mod commands;
pub mod error;
pub mod progress;
pub mod render;
pub mod settings;
pub mod status_line;

use args::{Cli, Command, LockCommand, OutputFormat, PolicyCommand};
use commands::{Ctx, Outcome};
use error::{exit, CliError, Result};
use render::{render, use_color, Style};
use serde_json::json;
use settings::{Aws, Settings};
use std::io::{IsTerminal, Write};

/// Run one command line to its end and print what it shows; returns the exit code.
pub async fn run(cli: Cli) -> u8 {
    let style = Style {
        color: use_color(
            std::io::stdout().is_terminal(),
            std::env::var("NO_COLOR").ok().as_deref(),
            cli.global.output,
        ),
    };
    let format = cli.global.output;
    match execute(cli, style).await {
        Ok(out) => {
            let text = render(out.view.as_ref(), format, &style);
            let mut stdout = std::io::stdout();
            let _ = stdout.write_all(text.as_bytes());
            let _ = stdout.flush();
            out.code
        }
        Err(e) => {
            report(&e, format, &style);
            e.exit_code()
        }
    }
}

async fn execute(cli: Cli, style: Style) -> Result<Outcome> {
    let settings = Settings::from_args(&cli.global, style)?;
    let aws = Aws::load(&cli.global).await?;
    let ctx = Ctx { settings, aws };
    match &cli.command {
        Command::Scale(a) => commands::scale::run(&ctx, a).await,
        Command::Status(a) => commands::status::run(&ctx, a).await,
        Command::Plan(a) => commands::plan::run(&ctx, a).await,
        Command::Lock(l) => match &l.command {
            LockCommand::Show(a) => commands::lock::show(&ctx, a).await,
            LockCommand::Break(a) => commands::lock::brk(&ctx, a).await,
        },
        Command::Validate(a) => commands::validate::run(&ctx, a).await,
        Command::Drain(a) => commands::drain::drain(&ctx, a).await,
        Command::Undrain(a) => commands::drain::undrain(&ctx, a).await,
        Command::Policy(p) => match &p.command {
            PolicyCommand::Explain(a) => commands::policy::explain(&ctx, a).await,
            PolicyCommand::Suspend(a) => commands::policy::suspend(&ctx, a).await,
            PolicyCommand::Resume(a) => commands::policy::resume(&ctx, a).await,
        },
    }
}

/// An error on stderr, with what to do next; for `--output json` also as JSON on stdout.
/// Whether the command line asks for JSON output (`--output json` or `--output=json`), read
/// from the raw arguments: used when clap itself refused them.
pub fn wants_json(args: &[String]) -> bool {
    args.iter().enumerate().any(|(i, a)| {
        a == "--output=json" || (a == "--output" && args.get(i + 1).is_some_and(|v| v == "json"))
    })
}

/// The JSON document a usage error prints on stdout under `--output json`.
pub fn usage_error_json(e: &clap::Error) -> serde_json::Value {
    let text = e.to_string();
    let message = text
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or_default()
        .trim_start_matches("error: ")
        .to_string();
    json!({"error": {"message": message, "hint": "pairscale --help lists the commands and their options",
                     "exit_code": exit::USAGE}})
}

/// A command line clap refused: its message and exit code 2, and under `--output json` the
/// error as a JSON document on stdout too, as every other failure prints it. Help and version
/// are printed as clap prints them.
pub fn usage_error(e: clap::Error, args: Vec<String>) -> ! {
    use clap::error::ErrorKind;
    let shown = matches!(
        e.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    );
    if !shown && wants_json(&args) {
        let _ = e.print();
        println!(
            "{}",
            serde_json::to_string_pretty(&usage_error_json(&e)).unwrap_or_default()
        );
        std::process::exit(i32::from(exit::USAGE));
    }
    e.exit()
}

fn report(e: &CliError, format: OutputFormat, style: &Style) {
    let err_style = Style {
        color: style.color && std::io::stderr().is_terminal(),
    };
    let mut text = format!("{} {e}\n", err_style.bad("error:"));
    if let Some(h) = e.hint() {
        text.push_str(&format!("  {} {h}\n", err_style.bold("next:")));
    }
    let _ = std::io::stderr().write_all(text.as_bytes());
    if format == OutputFormat::Json {
        let v = json!({"error": {"message": e.to_string(), "hint": e.hint(), "exit_code": e.exit_code()}});
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
    }
}
