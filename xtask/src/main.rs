//! Dev tooling: `cargo xtask test`, `cargo xtask serve`.

mod moto;
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
    /// Install the pinned tooling, start moto, run every test of the workspace, stop moto.
    Test {
        /// Extra arguments for `cargo test` (after `--`), e.g. a test name filter.
        #[arg(last = true)]
        cargo_args: Vec<String>,
    },
    /// Run the local stack: moto (unless AWS_ENDPOINT_URL is set), provisioning, and the functions on
    /// 127.0.0.1:${PORT:-3000}.
    Serve,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Task::Test { cargo_args } => test(&cargo_args),
        Task::Serve => serve::run(),
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
    Ok(if status.success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
