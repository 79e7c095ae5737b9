//! `portwatch demo-client` (hidden): the client process of `portwatch demo`, which re-executes
//! portwatch as this inside the demo's network namespace. See `crate::demo::client`.

use std::{net::SocketAddr, process::ExitCode, time::Duration};

use crate::demo::client::{self, ClientOptions};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[arg(long)]
    pub dst: SocketAddr,
    /// New connections per second.
    #[arg(long)]
    pub rate: f64,
    #[arg(long, value_parser = super::parse_duration)]
    pub duration: Option<Duration>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    client::run_client(&ClientOptions {
        dst: args.dst,
        rate: args.rate,
        duration: args.duration,
    })?;
    Ok(ExitCode::SUCCESS)
}
