//! `inboxctl`: the operator CLI. Works against AWS, or the emulator through `AWS_ENDPOINT_URL`.

mod commands;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    inbox_shared::telemetry::init_cli_logs();
    let cli = commands::Cli::parse();
    let json = cli.json;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    match runtime.block_on(commands::run(cli)) {
        Ok(output) => {
            output.print(json);
            ExitCode::SUCCESS
        }
        Err(err) => {
            if json {
                println!("{}", serde_json::json!({ "error": format!("{err:#}") }));
            }
            eprintln!(
                "inboxctl: error: {}",
                commands::terminal_safe(&format!("{err:#}"))
            );
            ExitCode::FAILURE
        }
    }
}
