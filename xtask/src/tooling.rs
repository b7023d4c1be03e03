//! The project's Python tooling (moto, and the template linters): installed from `requirements.txt`
//! into the git-ignored `.venv` at the repository root when missing or when the pins change.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

const REQUIREMENTS: &str = include_str!("../requirements.txt");

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the repository")
        .to_path_buf()
}

/// The virtualenv, created and filled with the pinned tools if needed; returns its `bin` directory.
pub fn ensure_venv() -> Result<PathBuf> {
    let venv = repo_root().join(".venv");
    let bin = venv.join("bin");
    let stamp = venv.join(".requirements-installed");
    if std::fs::read_to_string(&stamp).is_ok_and(|s| s == REQUIREMENTS)
        && bin.join("python").exists()
    {
        return Ok(bin);
    }
    eprintln!(
        "xtask: installing pinned Python tooling into {} (once)",
        venv.display()
    );
    if !bin.join("python").exists() {
        run(Command::new("python3").args(["-m", "venv"]).arg(&venv))
            .context("python3 -m venv (is python3 installed?)")?;
    }
    let requirements = venv.join("requirements.txt");
    std::fs::write(&requirements, REQUIREMENTS)?;
    run(Command::new(bin.join("pip"))
        .args(["install", "--quiet", "--disable-pip-version-check", "-r"])
        .arg(&requirements))
    .context("pip install of the pinned tooling")?;
    std::fs::write(&stamp, REQUIREMENTS)?;
    Ok(bin)
}

pub fn run(command: &mut Command) -> Result<()> {
    let status = command
        .status()
        .with_context(|| format!("starting {command:?}"))?;
    if !status.success() {
        bail!("{command:?} failed with {status}");
    }
    Ok(())
}
