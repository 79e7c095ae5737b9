//! `portwatch man [--out-dir DIR]`: manual pages (roff), generated from the same clap
//! definitions that parse the command line: `portwatch.1`, and with `--out-dir` one page per
//! subcommand too (`portwatch-report.1`, …), as packages install them.

use std::{path::PathBuf, process::ExitCode};

use anyhow::Context as _;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Write portwatch.1 and portwatch-SUBCOMMAND.1 for every visible subcommand into this
    /// directory, instead of portwatch.1 to standard output.
    #[arg(long, value_name = "DIR")]
    out_dir: Option<PathBuf>,
}

pub fn run(args: Args, cli: clap::Command) -> anyhow::Result<ExitCode> {
    let Some(dir) = args.out_dir else {
        clap_mangen::Man::new(cli)
            .render(&mut std::io::stdout())
            .context("write the manual page")?;
        return Ok(ExitCode::SUCCESS);
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
    clap_mangen::generate_to(cli, &dir)
        .with_context(|| format!("write pages into {}", dir.display()))?;
    Ok(ExitCode::SUCCESS)
}
