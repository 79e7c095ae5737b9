//! The HTTP side of `portwatch serve` (hyper 1 on the session's tokio runtime): `/metrics`,
//! `/report.json`, `/healthz`. Every response is bytes rendered at the last refresh
//! ([`Pages`]), so a scrape costs a copy of a reference, never a look at the model: a scrape
//! storm cannot slow the model down or make it allocate.
//!
//! Connections are bounded ([`MAX_CONNECTIONS`]; more wait in the kernel's backlog), a client
//! has [`HEADER_TIMEOUT`] to send its request headers, and shutdown stops accepting, then gives
//! open connections [`DRAIN_TIMEOUT`] to finish.

use std::{
    convert::Infallible,
    future::Future,
    net::SocketAddr,
    sync::Arc,
    time::{Duration, Instant},
};

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Method, Request, Response, StatusCode, body::Incoming, header, service::service_fn};
use hyper_util::{
    rt::{TokioIo, TokioTimer},
    server::graceful::GracefulShutdown,
};
use tokio::{net::TcpListener, sync::watch};

use super::metrics::{OPENMETRICS, TEXT_0_0_4, wants_openmetrics};

/// At most this many open connections; the next accept waits for one to close.
pub const MAX_CONNECTIONS: usize = 64;
/// Time a client has to send its request headers.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// Time open connections get to finish at shutdown.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);

/// What the endpoints serve, rendered once per refresh.
#[derive(Debug, Clone)]
pub struct Pages {
    /// `/metrics` in the OpenMetrics text format (what Prometheus asks for).
    pub openmetrics: Bytes,
    /// `/metrics` in the Prometheus text format 0.0.4 (everyone else).
    pub text: Bytes,
    /// `/report.json`.
    pub report_json: Bytes,
    /// When these were rendered: `/healthz` fails once they are older than the stale limit.
    pub at: Instant,
}

/// The shared, latest pages (`None` until the first refresh).
pub type Latest = watch::Receiver<Option<Arc<Pages>>>;

type Body = Full<Bytes>;

fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<Body> {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .body(Full::new(body.into()))
        .expect("a static response")
}

fn bytes(content_type: &'static str, body: &Bytes) -> Response<Body> {
    Response::builder()
        .header(header::CONTENT_TYPE, content_type)
        .body(Full::new(body.clone()))
        .expect("a static response")
}

const INDEX: &str = "portwatch serve: /metrics (Prometheus), /report.json (the report), /healthz\n";

/// The answer to one request, from the latest pages.
pub fn respond(
    method: &Method,
    path: &str,
    accept: Option<&str>,
    latest: Option<&Pages>,
    stale_after: Duration,
) -> Response<Body> {
    if method != Method::GET && method != Method::HEAD {
        return text(StatusCode::METHOD_NOT_ALLOWED, "GET only\n");
    }
    match (path, latest) {
        ("/", _) => text(StatusCode::OK, INDEX),
        ("/metrics" | "/report.json" | "/healthz", None) => text(
            StatusCode::SERVICE_UNAVAILABLE,
            "starting: no refresh yet\n",
        ),
        ("/metrics", Some(p)) if wants_openmetrics(accept) => bytes(OPENMETRICS, &p.openmetrics),
        ("/metrics", Some(p)) => bytes(TEXT_0_0_4, &p.text),
        ("/report.json", Some(p)) => bytes("application/json", &p.report_json),
        ("/healthz", Some(p)) => {
            let age = p.at.elapsed();
            if age <= stale_after {
                text(StatusCode::OK, "ok\n")
            } else {
                text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("stale: last refresh {:.1} s ago\n", age.as_secs_f64()),
                )
            }
        }
        _ => text(StatusCode::NOT_FOUND, "not found; try /metrics\n"),
    }
}

/// Serves `latest` on `listener` until `shutdown` resolves, then drains.
pub async fn run(
    listener: TcpListener,
    latest: Latest,
    stale_after: Duration,
    shutdown: impl Future<Output = ()>,
) {
    let graceful = GracefulShutdown::new();
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => p.expect("the semaphore is never closed"),
            _ = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            a = listener.accept() => match a {
                Ok(a) => a,
                Err(e) => {
                    // EMFILE and the like: back off instead of spinning.
                    log::warn!("accept: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let latest = latest.clone();
        let service = service_fn(move |req: Request<Incoming>| {
            let pages = latest.borrow().clone();
            let accept = req
                .headers()
                .get(header::ACCEPT)
                .and_then(|v| v.to_str().ok());
            let resp = respond(
                req.method(),
                req.uri().path(),
                accept,
                pages.as_deref(),
                stale_after,
            );
            log_request(&peer, &req, resp.status());
            async move { Ok::<_, Infallible>(resp) }
        });
        let conn = http.serve_connection(TokioIo::new(stream), service);
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                log::debug!("connection from {peer}: {e}");
            }
            drop(permit);
        });
    }
    drop(listener);
    tokio::select! {
        _ = graceful.shutdown() => log::debug!("connections drained"),
        _ = tokio::time::sleep(DRAIN_TIMEOUT) => {
            log::warn!("connections still open after {DRAIN_TIMEOUT:?}; closing them")
        }
    }
}

fn log_request(peer: &SocketAddr, req: &Request<Incoming>, status: StatusCode) {
    if status.is_client_error() {
        log::info!("{peer} {} {} -> {status}", req.method(), req.uri().path());
    } else {
        log::debug!("{peer} {} {} -> {status}", req.method(), req.uri().path());
    }
}
