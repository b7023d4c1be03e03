//! Lints of `infra/template.yaml`: cfn-lint (CloudFormation and SAM rules) and checkov (security
//! policies). A checkov skip is allowed only where the template states it with its reason.

use std::process::Command;

use anyhow::{Context, Result};

use crate::tooling::{self, INFRA};

pub const TEMPLATE: &str = "infra/template.yaml";

pub fn lint() -> Result<()> {
    let bin = tooling::ensure_venv(&INFRA)?;
    let root = tooling::repo_root();
    eprintln!("xtask: cfn-lint {TEMPLATE}");
    tooling::run(
        Command::new(bin.join("cfn-lint"))
            .current_dir(&root)
            .arg(TEMPLATE),
    )
    .context("cfn-lint found problems in the template")?;
    eprintln!("xtask: checkov {TEMPLATE}");
    tooling::run(
        Command::new(bin.join("checkov"))
            .current_dir(&root)
            .args([
                "-f",
                TEMPLATE,
                "--framework",
                "cloudformation",
                "--compact",
                "--quiet",
                "--skip-download",
            ])
            .env("BC_SKIP_MAPPING", "TRUE"),
    )
    .context("checkov found failing checks in the template")?;
    Ok(())
}
