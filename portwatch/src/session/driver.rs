//! The session loop shared by `report`, `record` and `events`: pump inputs into the model and
//! the sinks until a deadline, Ctrl-C, SIGTERM or a sink that is done; then stop the
//! collector and feed what is left. And the one place a runtime is built.

use std::time::Duration;

use anyhow::Context as _;
use tokio::signal::unix::{SignalKind, signal};

use super::{
    live::{Live, Pumped},
    sink::Sink,
};

/// When a session ends (besides Ctrl-C and SIGTERM, which always end it).
#[derive(Debug, Clone, Copy, Default)]
pub struct Until {
    /// `None`: only a signal (or a sink) ends it.
    pub duration: Option<Duration>,
}

/// Runs `live` into `sinks` until the end, then finishes it (the last events, the final loss
/// counters and tick reach the model and every sink).
pub async fn run(live: &mut Live, sinks: &mut [&mut dyn Sink], until: Until) -> anyhow::Result<()> {
    let deadline = until.duration.map(|d| tokio::time::Instant::now() + d);
    let mut sigterm = signal(SignalKind::terminate()).context("install SIGTERM handler")?;
    // One listener for the whole session. A `tokio::signal::ctrl_c()` made anew in each turn
    // of the loop listens only from its first poll, and under load most turns end on a ready
    // batch before it is polled: a Ctrl-C or SIGINT that came then was lost, and the session
    // ran on until a second one (seen: `events --json` during a churn flood, one SIGINT in
    // three).
    let mut sigint = signal(SignalKind::interrupt()).context("install SIGINT handler")?;
    loop {
        let until_deadline = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            r = live.pump(sinks) => match r? {
                Pumped::More => {}
                Pumped::SinkStopped | Pumped::Ended => break,
            },
            _ = until_deadline => break,
            _ = sigint.recv() => break,
            _ = sigterm.recv() => break,
        }
    }
    live.finish(sinks).await
}

/// Checks privileges, then runs a tracing command's future on the runtime.
pub fn traced<T>(fut: impl std::future::Future<Output = anyhow::Result<T>>) -> anyhow::Result<T> {
    crate::privileges::check().map_err(|e| anyhow::anyhow!("{e}"))?;
    block_on(fut)
}

/// Runs a future on a single-threaded runtime (collector and model share one thread; dumps
/// run on blocking threads).
pub fn block_on<T>(fut: impl std::future::Future<Output = anyhow::Result<T>>) -> anyhow::Result<T> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("build the tokio runtime")?
        .block_on(fut)
}
