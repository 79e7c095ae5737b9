//! `portwatch demo`: a port exhaustion staged in a throwaway network namespace, watched live
//! by the TUI (see `crate::demo` for what it sets up).

use std::{process::Command, process::ExitCode, time::Duration};

use crate::{
    console::LiveSource,
    demo::{Demo, DemoOptions},
    session::{self, Live, LiveOptions},
};
use anyhow::Context as _;

use super::{
    TraceArgs,
    tui::{FrameArgs, need_terminal, run_console},
};

#[derive(clap::Args, Debug)]
#[command(after_help = "\
What it does: in a new network namespace (removed by the kernel when portwatch exits), with
ip_local_port_range 40000 40049 and tcp_tw_reuse 0, a process named demo-client connects to
a server on 127.0.0.1:8080 and closes each connection first. Every port it used stays in
TIME_WAIT for 60 s; at 20 connections per second the 50 ports run out in under 3 s and
connect() fails with EADDRNOTAVAIL. portwatch traces only that namespace. Press q to quit;
everything the demo made goes away with it.")]
pub struct Args {
    /// Ports in the demo's ip_local_port_range (rounded up to an even number).
    #[arg(long, value_name = "N", default_value_t = 50)]
    pub ports: u16,
    /// New connections per second from the demo client.
    #[arg(long, value_name = "PER_S", default_value_t = 20.0)]
    pub rate: f64,
    /// Stop the client after this long, in seconds or with a unit (`2m`); the TUI stays:
    /// watch TIME_WAIT drain. Default: until you quit.
    #[arg(long, value_parser = super::parse_duration)]
    pub duration: Option<Duration>,
    #[command(flatten)]
    pub frame: FrameArgs,
    #[command(flatten)]
    pub trace: TraceArgs,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    need_terminal()?;
    anyhow::ensure!(
        args.rate > 0.0 && args.rate.is_finite(),
        "--rate must be a positive number"
    );
    let opts = DemoOptions {
        ports: args.ports,
        rate: args.rate,
        duration: args.duration,
    };
    let exe = std::env::current_exe().context("find the portwatch binary")?;
    let mut client = Command::new(exe);
    client.args([
        "demo-client",
        "--dst",
        &crate::demo::SERVER.to_string(),
        "--rate",
        &args.rate.to_string(),
    ]);
    if let Some(d) = args.duration {
        client.args(["--duration", &humantime::format_duration(d).to_string()]);
    }
    // Dropped on every way out of this function (return, error, panic unwinding): the client
    // is killed and the server stopped; the namespace goes with the last of them.
    session::traced(async {
        let mut demo = Demo::start(&opts, client)?;
        let out = async {
            let mut trace = args.trace.options();
            trace.netns = Some(demo.ns.inode);
            let live = Live::start(LiveOptions {
                trace,
                ..Default::default()
            })
            .await?;
            demo.go()?;
            let mut src = LiveSource::new(live);
            let out = run_console(&mut src, args.frame.fps).await;
            src.live.finish(&mut []).await?;
            out
        }
        .await;
        demo.stop();
        out
    })
}
