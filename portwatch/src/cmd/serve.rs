//! `portwatch serve`: the long-running agent. Traces like the TUI, and once per refresh renders
//! the picture that `/metrics`, `/report.json` and `/healthz` serve. Logs go to stderr with
//! levels (`RUST_LOG` overrides the default `info`); SIGTERM or Ctrl-C stop it cleanly.

use std::{net::SocketAddr, process::ExitCode, sync::Arc, time::Duration};

use crate::{
    collect::monotonic_now_ns,
    model::{Input, Model},
    record::Host,
    report::Source,
    serve::{self, Pages, Picture},
    session::{self, Flow, Live, LiveOptions, Pumped, Sink},
};
use anyhow::Context as _;
use tokio::{
    net::TcpListener,
    signal::unix::{SignalKind, signal},
    sync::{oneshot, watch},
    time::MissedTickBehavior,
};

use super::TraceArgs;

#[derive(clap::Args, Debug)]
#[command(after_help = "\
Endpoints: /metrics (Prometheus, OpenMetrics text), /report.json (the `report --json` object
for the window since start), /healthz (200 while refreshes happen, 503 before the first one
or when they stall). The metric families are listed in the README (\"Metrics\").

Examples:
  sudo portwatch serve                              # http://127.0.0.1:19150/metrics
  sudo portwatch serve --listen 0.0.0.0:19150 --top 50
  sudo RUST_LOG=debug portwatch serve               # one log line per request")]
pub struct Args {
    /// Address to listen on. Loopback by default: expose it on purpose (the Kubernetes
    /// manifest passes the pod's IP).
    #[arg(long, value_name = "ADDR", default_value_t = default_listen())]
    listen: SocketAddr,
    /// Pools with their own series: the N most urgent (cardinality stays bounded).
    #[arg(long, value_name = "N", default_value_t = 20)]
    top: usize,
    /// Only this network namespace (inode, as in `ls -lL /proc/PID/ns/net`), filtered in the
    /// kernel.
    #[arg(long, value_name = "INODE")]
    netns: Option<u32>,
    /// How often the picture is rebuilt (scrapes in between get the same values).
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = super::parse_duration)]
    refresh: Duration,
    #[command(flatten)]
    trace: TraceArgs,
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], serve::DEFAULT_PORT))
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        args.refresh >= Duration::from_millis(100),
        "--refresh must be at least 100ms"
    );
    session::traced(agent(args))?;
    Ok(ExitCode::SUCCESS)
}

async fn agent(args: Args) -> anyhow::Result<()> {
    // Bind first: a taken port fails before anything is attached.
    let listener = std::net::TcpListener::bind(args.listen)
        .with_context(|| format!("listen on {}", args.listen))?;
    listener
        .set_nonblocking(true)
        .context("make the listener non-blocking")?;
    let mut opts = LiveOptions {
        trace: args.trace.options(),
        ..Default::default()
    };
    opts.trace.netns = args.netns;
    let host = Host::current();
    let mut live = Live::start(opts).await?;
    let (pages_tx, pages_rx) = watch::channel(None);
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let stale_after = (args.refresh * 3).max(Duration::from_secs(5));
    let server = http_thread(listener, pages_rx, stale_after, stop_rx)?;
    log::info!(
        "serving http://{}/metrics (top {} pools, refresh every {})",
        args.listen,
        args.top,
        humantime::format_duration(args.refresh)
    );

    let mut sigterm = signal(SignalKind::terminate()).context("install SIGTERM handler")?;
    let mut sigint = signal(SignalKind::interrupt()).context("install SIGINT handler")?;
    let mut refresh = tokio::time::interval(args.refresh);
    refresh.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut lost = 0;
    let mut warnings = LogWarnings;
    let mut sinks: [&mut dyn Sink; 1] = [&mut warnings];
    let result = loop {
        tokio::select! {
            r = live.pump(&mut sinks) => match r {
                Ok(Pumped::More) => {}
                Ok(Pumped::SinkStopped | Pumped::Ended) => break Ok(()),
                Err(e) => break Err(e),
            },
            _ = refresh.tick() => {
                let pages = refresh_pages(&live, &host, args.top, &mut lost);
                pages_tx.send_replace(Some(Arc::new(pages)));
            }
            _ = sigterm.recv() => { log::info!("SIGTERM: stopping"); break Ok(()) }
            _ = sigint.recv() => { log::info!("SIGINT: stopping"); break Ok(()) }
        }
    };
    let _ = stop_tx.send(());
    if server.join().is_err() {
        log::error!("the HTTP thread panicked");
    }
    live.finish(&mut sinks).await?;
    log::info!("stopped after {} events", live.model.counters().events);
    result
}

/// Serves the pages on a thread (and runtime) of its own, so that a scrape never waits for
/// the model: applying a burst of events or building a picture on a busy node takes the
/// session's thread for tens of milliseconds, and scrapes answered there waited that long.
fn http_thread(
    listener: std::net::TcpListener,
    pages: serve::http::Latest,
    stale_after: Duration,
    stop: oneshot::Receiver<()>,
) -> anyhow::Result<std::thread::JoinHandle<()>> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("build the HTTP runtime")?;
    std::thread::Builder::new()
        .name("http".into())
        .spawn(move || {
            rt.block_on(async move {
                match TcpListener::from_std(listener) {
                    Ok(l) => {
                        serve::http::run(l, pages, stale_after, async {
                            let _ = stop.await;
                        })
                        .await
                    }
                    Err(e) => log::error!("register the listener: {e}"),
                }
            })
        })
        .context("start the HTTP thread")
}

/// Builds this refresh's picture and renders it; logs newly lost events.
fn refresh_pages(live: &Live, host: &Host, top: usize, lost: &mut u64) -> Pages {
    let started = std::time::Instant::now();
    let counters = live.counters();
    let now = monotonic_now_ns().max(live.model.now_ns());
    let (start, _) = live.model.window_ns(host.start_mono_ns);
    let ctx = super::report::context(host, Source::Live, None, start, now.max(start));
    let picture = Picture::build(&live.model, ctx, &counters, top);
    let pages = Pages::render(&picture);
    let total = picture.report.lost_events.total;
    if total > *lost {
        log::warn!(
            "{} events lost since the last refresh ({total} in all): counts may be low until \
             the next reconciliation",
            total - *lost
        );
        *lost = total;
    }
    log::debug!(
        "refresh: {} pools, {} bytes of metrics in {:.1} ms",
        picture.pools_total,
        pages.openmetrics.len(),
        started.elapsed().as_secs_f64() * 1e3
    );
    pages
}

/// Logs each warning as it arrives (a hook not attached, a failed reconciliation, …).
struct LogWarnings;

impl Sink for LogWarnings {
    fn feed(&mut self, input: &Input, _model: &Model) -> anyhow::Result<Flow> {
        if let Input::Warning(w) = input {
            log::warn!("{}", w.value);
        }
        Ok(Flow::Continue)
    }
}
