//! Dev tooling: `cargo xtask test`, `cargo xtask serve`, `cargo xtask demo`, `cargo xtask package`,
//! `cargo xtask bench`.

mod bench;
mod demo;
mod demo_tenant;
mod http;
mod infra;
mod moto;
mod package;
mod serve;
mod tooling;

use std::process::{Command, ExitCode};

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(about = "Project tooling for the inbox backend")]
struct Cli {
    #[command(subcommand)]
    command: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Install the pinned tooling, start moto, run every test of the workspace, stop moto, then lint the
    /// SAM template (cfn-lint, checkov).
    Test {
        /// Extra arguments for `cargo test` (after `--`), e.g. a test name filter.
        #[arg(last = true)]
        cargo_args: Vec<String>,
    },
    /// Run the local stack: moto (unless AWS_ENDPOINT_URL is set), provisioning, and the functions on
    /// 127.0.0.1:${PORT:-3000}.
    Serve,
    /// The whole product in one scripted story, offline: signed webhooks, AI replies, a human takeover,
    /// a draft approval, a Meta deletion callback and a year-later retention sweep.
    Demo,
    /// The performance report: each function's start time, peak RSS and invocation times under a local
    /// Lambda Runtime API, AWS calls per message, KMS calls per 1,000 replies, criterion figures, zip
    /// sizes, and the cost per million messages.
    Bench,
    /// Build every function for Lambda (arm64, provided.al2023) with cargo-lambda, zipped, and print
    /// each zip's size.
    Package,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Task::Test { cargo_args } => test(&cargo_args),
        Task::Serve => serve::run(),
        Task::Package => package::run(),
        Task::Demo => demo::run(),
        Task::Bench => bench::run(),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("xtask: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn test(cargo_args: &[String]) -> Result<ExitCode> {
    let moto = moto::Moto::start()?;
    eprintln!("xtask: moto at {}", moto.url);
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .current_dir(tooling::repo_root())
        .args(["test", "--workspace", "--no-fail-fast"])
        .args(cargo_args)
        .envs(moto.env())
        .status()?;
    drop(moto);
    let linted = infra::lint();
    if let Err(err) = &linted {
        eprintln!("xtask: {err:#}");
    }
    Ok(if status.success() && linted.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
