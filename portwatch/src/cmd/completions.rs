//! `portwatch completions SHELL`: the shell completion script, generated from the same clap
//! definitions that parse the command line (install it where the shell looks, e.g.
//! `/usr/share/bash-completion/completions/portwatch`).

use std::process::ExitCode;

use clap_complete::Shell;

#[derive(clap::Args, Debug)]
#[command(after_help = "\
Examples:
  portwatch completions bash > /usr/share/bash-completion/completions/portwatch
  portwatch completions zsh > /usr/share/zsh/vendor-completions/_portwatch
  portwatch completions fish > /usr/share/fish/vendor_completions.d/portwatch.fish")]
pub struct Args {
    /// The shell to complete for.
    shell: Shell,
}

pub fn run(args: Args, mut cli: clap::Command) -> anyhow::Result<ExitCode> {
    let name = cli.get_name().to_string();
    clap_complete::generate(args.shell, &mut cli, name, &mut std::io::stdout());
    Ok(ExitCode::SUCCESS)
}
