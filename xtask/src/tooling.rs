//! The project's Python tooling, each set pinned in its own requirements file and installed into its
//! own git-ignored virtualenv at the repository root when missing or when the pins change: moto
//! (`.venv`), the template linters (`.venv-infra`), the packaging tools (`.venv-package`). Separate
//! environments, because their dependency pins conflict.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

/// A set of pinned Python tools and the virtualenv it lives in.
pub struct Tools {
    pub venv: &'static str,
    pub requirements: &'static str,
}

pub const MOTO: Tools = Tools {
    venv: ".venv",
    requirements: include_str!("../requirements.txt"),
};
pub const INFRA: Tools = Tools {
    venv: ".venv-infra",
    requirements: include_str!("../requirements-infra.txt"),
};
pub const PACKAGE: Tools = Tools {
    venv: ".venv-package",
    requirements: include_str!("../requirements-package.txt"),
};

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the repository")
        .to_path_buf()
}

/// The virtualenv, created and filled with the pinned tools if needed; returns its `bin` directory.
pub fn ensure_venv(tools: &Tools) -> Result<PathBuf> {
    let venv = repo_root().join(tools.venv);
    let bin = venv.join("bin");
    let stamp = venv.join(".requirements-installed");
    if std::fs::read_to_string(&stamp).is_ok_and(|s| s == tools.requirements)
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
    std::fs::write(&requirements, tools.requirements)?;
    run(Command::new(bin.join("pip"))
        .args(["install", "--quiet", "--disable-pip-version-check", "-r"])
        .arg(&requirements))
    .context("pip install of the pinned tooling")?;
    std::fs::write(&stamp, tools.requirements)?;
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
