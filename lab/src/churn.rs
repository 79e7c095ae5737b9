//! Connection churn on loopback: a server and client threads that open and close
//! connections as fast as they can, counting what they did, so that the transitions they
//! caused are known exactly. Used by the benchmarks and the tests.

use std::{
    collections::BTreeMap,
    io::{self, Read},
    net::{SocketAddr, TcpListener, TcpStream},
    os::fd::AsRawFd,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    thread,
    time::{Duration, Instant},
};

use serde::Serialize;

use portwatch::{event::Errno, netns::Netns};

/// Which side closes first, and so which side's port goes to TIME_WAIT.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Closer {
    /// The client closes first: TIME_WAIT on the client's ephemeral ports (the classic
    /// exhaustion pattern).
    Client,
    /// The server closes first: TIME_WAIT on the server side, none on the client.
    Server,
}

/// A loopback server that accepts and handles connections until stopped.
pub struct Server {
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    served: Arc<AtomicU64>,
    threads: Vec<thread::JoinHandle<()>>,
}

/// Waits up to `ms` for `fd` to be readable.
pub fn poll_readable(fd: i32, ms: i32) -> bool {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    unsafe { libc::poll(&mut p, 1, ms) > 0 }
}

impl Server {
    /// Listens on `addr` inside `ns` (backlog 4096: an overflowing accept queue drops SYNs and
    /// stalls clients for a second, which would measure the queue, not the kernel) and
    /// serves with `acceptors` threads.
    pub fn start(
        ns: &Netns,
        addr: SocketAddr,
        closer: Closer,
        acceptors: usize,
    ) -> io::Result<Server> {
        let listener = ns.run(|| -> io::Result<TcpListener> {
            let domain = if addr.is_ipv4() {
                socket2::Domain::IPV4
            } else {
                socket2::Domain::IPV6
            };
            let s = socket2::Socket::new(domain, socket2::Type::STREAM, None)?;
            s.set_reuse_address(true)?;
            s.bind(&addr.into())?;
            s.listen(4096)?;
            Ok(s.into())
        })??;
        let addr = listener.local_addr()?;
        listener.set_nonblocking(true)?;
        let listener = Arc::new(listener);
        let stop = Arc::new(AtomicBool::new(false));
        let served = Arc::new(AtomicU64::new(0));
        let threads = (0..acceptors.max(1))
            .map(|_| {
                let (listener, stop, served) = (listener.clone(), stop.clone(), served.clone());
                thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        match listener.accept() {
                            Ok((s, _)) => {
                                handle(s, closer);
                                served.fetch_add(1, Ordering::Relaxed);
                            }
                            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                                poll_readable(listener.as_raw_fd(), 50);
                            }
                            Err(_) => thread::sleep(Duration::from_millis(1)),
                        }
                    }
                })
            })
            .collect();
        Ok(Server {
            addr,
            stop,
            served,
            threads,
        })
    }

    /// Connections handled so far.
    pub fn served(&self) -> u64 {
        self.served.load(Ordering::Relaxed)
    }

    /// Waits until `n` connections were handled (or `timeout`), then stops; returns the count.
    pub fn stop_after(self, n: u64, timeout: Duration) -> u64 {
        let deadline = Instant::now() + timeout;
        while self.served() < n && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(1));
        }
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            let _ = t.join();
        }
        self.served.load(Ordering::Relaxed)
    }
}

fn handle(mut s: TcpStream, closer: Closer) {
    let _ = s.set_nonblocking(false);
    if closer == Closer::Client {
        // Wait for the client's FIN, then close: the client closed first.
        let mut buf = [0u8; 64];
        while matches!(s.read(&mut buf), Ok(n) if n > 0) {}
    }
    // Closer::Server: close right away.
}

/// What a churn run should do.
#[derive(Clone, Debug)]
pub struct ChurnOpts {
    pub dst: SocketAddr,
    pub threads: usize,
    pub duration: Duration,
    /// Stop after this many successful connections in total.
    pub max_connections: Option<u64>,
    pub closer: Closer,
    /// Pause after a failed connect (an exhausted pool fails instantly; spinning on it would
    /// only burn CPU).
    pub backoff_on_error: Duration,
}

/// What a churn run did.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct ChurnReport {
    /// Connections opened and closed.
    pub connections: u64,
    /// Failed connect()s by errno name.
    pub failures: BTreeMap<String, u64>,
    pub elapsed_s: f64,
    pub connections_per_s: f64,
}

/// Runs client threads in `ns` against `opts.dst` until the duration or the count is reached.
pub fn churn(ns: &Netns, opts: &ChurnOpts) -> io::Result<ChurnReport> {
    churn_to(ns, opts, &[opts.dst])
}

/// Like [`churn`], cycling through `dsts` instead of `opts.dst` (see [`spread`]).
pub fn churn_to(ns: &Netns, opts: &ChurnOpts, dsts: &[SocketAddr]) -> io::Result<ChurnReport> {
    let made = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let deadline = start + opts.duration;
    let dsts: Arc<[SocketAddr]> = dsts.into();
    let handles = (0..opts.threads.max(1))
        .map(|_| {
            let (made, opts, dsts) = (made.clone(), opts.clone(), dsts.clone());
            ns.spawn(move || client(&opts, &dsts, &made, deadline))
        })
        .collect::<io::Result<Vec<_>>>()?;
    let mut failures = BTreeMap::new();
    for h in handles {
        for (k, v) in h.join().expect("client thread panicked")? {
            *failures.entry(k).or_insert(0) += v;
        }
    }
    let elapsed_s = start.elapsed().as_secs_f64();
    let connections = made.load(Ordering::SeqCst);
    Ok(ChurnReport {
        connections,
        failures,
        elapsed_s,
        connections_per_s: connections as f64 / elapsed_s,
    })
}

/// Waits until no socket of `ns` is in a state that will still change on its own
/// (SYN_SENT, SYN_RECV, FIN_WAIT1/2, CLOSE_WAIT, LAST_ACK, CLOSING), or `timeout`; returns
/// whether it settled. After a churn run this means every transition it caused has happened
/// (TIME_WAIT and listeners remain; they change no TCP state until torn down).
pub fn settle(ns: &Netns, timeout: Duration) -> anyhow::Result<bool> {
    use portwatch::{context::diag::Dumper, event::TcpState::*};
    let deadline = Instant::now() + timeout;
    let inode = ns.inode;
    loop {
        let busy = ns.run(|| -> anyhow::Result<u64> {
            let mut busy = 0;
            Dumper::new(inode)?.dump_tcp(|s| {
                if matches!(
                    s.state,
                    SynSent | SynRecv | FinWait1 | FinWait2 | CloseWait | LastAck | Closing
                ) {
                    busy += 1;
                }
            })?;
            Ok(busy)
        })??;
        if busy == 0 {
            return Ok(true);
        }
        if Instant::now() >= deadline {
            return Ok(false);
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// `n` destinations: `dst`'s IPv4 address plus 0, 1, … (127.0.0.1 … 127.0.0.16 for a server
/// listening on 0.0.0.0), one port pool each, so that a long run does not run out of ports.
pub fn spread(dst: SocketAddr, n: u32) -> Vec<SocketAddr> {
    match dst {
        SocketAddr::V4(v4) if n > 1 => (0..n)
            .map(|k| {
                let ip = std::net::Ipv4Addr::from(u32::from(*v4.ip()).wrapping_add(k));
                SocketAddr::new(ip.into(), v4.port())
            })
            .collect(),
        dst => vec![dst],
    }
}

fn client(
    opts: &ChurnOpts,
    dsts: &[SocketAddr],
    made: &AtomicU64,
    deadline: Instant,
) -> BTreeMap<String, u64> {
    let mut failures = BTreeMap::new();
    let max = opts.max_connections.unwrap_or(u64::MAX);
    let mut next = 0;
    while Instant::now() < deadline {
        // Claim a connection before making it, so the total never overshoots `max`.
        if made.fetch_add(1, Ordering::SeqCst) >= max {
            made.fetch_sub(1, Ordering::SeqCst);
            break;
        }
        let dst = dsts[next % dsts.len()];
        next += 1;
        match TcpStream::connect(dst) {
            Ok(mut s) => {
                if opts.closer == Closer::Server {
                    let mut buf = [0u8; 64];
                    while matches!(s.read(&mut buf), Ok(n) if n > 0) {}
                }
                drop(s);
            }
            Err(e) => {
                made.fetch_sub(1, Ordering::SeqCst);
                let name = e
                    .raw_os_error()
                    .map_or_else(|| e.kind().to_string(), |n| Errno(n).name());
                *failures.entry(name).or_insert(0) += 1;
                thread::sleep(opts.backoff_on_error);
            }
        }
    }
    failures
}
