//! `cargo xtask package`: each function built for Lambda (arm64, provided.al2023) with cargo-lambda and
//! zipped, as `target/lambda/<function>/bootstrap.zip`. cargo-lambda and zig come from PyPI into
//! `.venv-package`; the Rust target is added with rustup when missing.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result};

use crate::tooling::{self, PACKAGE};

/// The Lambda functions, by binary name.
pub const FUNCTIONS: [&str; 6] = [
    "webhook-ingest",
    "ai-reply",
    "data-deletion",
    "retention-sweep",
    "channel-connect",
    "console-api",
];
const TARGET: &str = "aarch64-unknown-linux-gnu";

/// Builds every function's zip and returns (function, zip path, size in bytes).
pub fn package() -> Result<Vec<(&'static str, PathBuf, u64)>> {
    let bin = tooling::ensure_venv(&PACKAGE)?;
    ensure_rust_target()?;
    let root = tooling::repo_root();
    // cargo-lambda finds zig through the virtualenv's python (the `ziglang` package).
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut build = Command::new(bin.join("cargo-lambda"));
    build.current_dir(&root).env("PATH", path).args([
        "lambda",
        "build",
        "--release",
        "--arm64",
        "--output-format",
        "zip",
    ]);
    for function in FUNCTIONS {
        build.args(["--package", function]);
    }
    eprintln!("xtask: cargo lambda build --release --arm64 (the first build takes minutes)");
    tooling::run(&mut build).context("cargo lambda build")?;
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    FUNCTIONS
        .iter()
        .map(|function| {
            let zip = target_dir
                .join("lambda")
                .join(function)
                .join("bootstrap.zip");
            let size = std::fs::metadata(&zip)
                .with_context(|| format!("{} was not built", zip.display()))?
                .len();
            Ok((*function, zip, size))
        })
        .collect()
}

fn ensure_rust_target() -> Result<()> {
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .context("rustup (needed to add the arm64 target)")?;
    if String::from_utf8_lossy(&installed.stdout)
        .lines()
        .any(|t| t.trim() == TARGET)
    {
        return Ok(());
    }
    tooling::run(Command::new("rustup").args(["target", "add", TARGET]))
}

pub fn run() -> Result<std::process::ExitCode> {
    let zips = package()?;
    println!("{:18} {:>10}  zip", "function", "size");
    for (function, zip, size) in zips {
        println!(
            "{function:18} {:>7.2} MB  {}",
            size as f64 / 1_000_000.0,
            zip.display()
        );
    }
    Ok(std::process::ExitCode::SUCCESS)
}
