//! `pw-scenario`: the misbehaving client or server of the cause tests (`tests/causes.rs`), run
//! as a process of its own so that its pid and command name are distinct from the test's and
//! checkable in portwatch's findings.
//!
//! ```text
//! pw-scenario --netns /run/netns/NAME --comm NAME [--max-s S] SCENARIO ARGS…
//!   churn DST [--rate R] [--count N]   connect and close first (TIME_WAIT here), R per second
//!                                      (0: as fast as possible), until N made or it fails
//!   hold DST [--count N] [--bind IP:0] [--nonblocking]
//!                                      open connections and keep them (bind first; do not wait
//!                                      for the handshake), until N or it fails; then retry
//!                                      every 200 ms
//!   listen ADDR [--accept]             listen (and accept, never closing anything)
//!   bind ADDR [--tries N]              bind() ADDR N times, 200 ms apart
//!   healthy DST [--keepalive K] [--rate R]
//!                                      K kept-alive connections, plus R per second that the
//!                                      server closes first (no TIME_WAIT here)
//! ```
//!
//! It enters the namespace, names itself (`prctl(PR_SET_NAME)`, what the kernel's `comm` is),
//! does its work on its main thread, and reports on stdout, one line each:
//! `<what> <CLOCK_MONOTONIC ns> [key=value…]` — `start` (first connection made), `reached`
//! (the count reached), `fail` (first failure of an errno, `errno=NAME`), `recovered` (churn:
//! a connection made after a failure), `ready` (listening).
//! Then it holds its sockets until stdin closes or `--max-s` (default 30) passes: every loop
//! here is bounded.

use std::{
    collections::BTreeSet,
    ffi::CString,
    io::{self, Read},
    net::{SocketAddr, TcpListener, TcpStream},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    thread,
    time::{Duration, Instant},
};

use portwatch::netns::Netns;
use socket2::{Domain, Socket, Type};

fn mono_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid timespec to write into.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// One report line on stdout (line-buffered: the test reads it at once).
fn say(what: &str, kv: &[(&str, String)]) {
    let mut line = format!("{what} {}", mono_ns());
    for (k, v) in kv {
        line.push_str(&format!(" {k}={v}"));
    }
    println!("{line}");
}

fn errno_name(e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(libc::EADDRNOTAVAIL) => "EADDRNOTAVAIL".into(),
        Some(libc::EADDRINUSE) => "EADDRINUSE".into(),
        Some(libc::ECONNREFUSED) => "ECONNREFUSED".into(),
        Some(libc::ETIMEDOUT) => "ETIMEDOUT".into(),
        Some(n) => format!("E{n}"),
        None => e.kind().to_string(),
    }
}

struct Args {
    pos: Vec<String>,
    opts: Vec<(String, Option<String>)>,
}

impl Args {
    fn parse() -> Args {
        const FLAGS: [&str; 2] = ["--accept", "--nonblocking"];
        let mut it = std::env::args().skip(1);
        let (mut pos, mut opts) = (Vec::new(), Vec::new());
        while let Some(a) = it.next() {
            if FLAGS.contains(&a.as_str()) {
                opts.push((a, None));
            } else if a.starts_with("--") {
                let v = it
                    .next()
                    .unwrap_or_else(|| usage(&format!("{a} needs a value")));
                opts.push((a, Some(v)));
            } else {
                pos.push(a);
            }
        }
        Args { pos, opts }
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.opts
            .iter()
            .find(|(k, _)| k == name)
            .and_then(|(_, v)| v.as_deref())
    }

    fn flag(&self, name: &str) -> bool {
        self.opts.iter().any(|(k, _)| k == name)
    }

    fn num<T: std::str::FromStr>(&self, name: &str, default: T) -> T {
        self.get(name).map_or(default, |v| {
            v.parse()
                .unwrap_or_else(|_| usage(&format!("{name}: not a number: {v}")))
        })
    }

    fn addr(&self, i: usize) -> SocketAddr {
        let v = self
            .pos
            .get(i)
            .unwrap_or_else(|| usage("missing an address"));
        v.parse()
            .unwrap_or_else(|_| usage(&format!("not an address: {v}")))
    }
}

fn usage(why: &str) -> ! {
    eprintln!("pw-scenario: {why} (see the doc comment of tests/src/bin/pw-scenario.rs)");
    std::process::exit(2)
}

/// Moves this (still single-threaded) process into the namespace at `path`.
fn enter(path: &str) {
    let ns = Netns::open(std::path::Path::new(path))
        .unwrap_or_else(|e| usage(&format!("open {path}: {e}")));
    if let Err(e) = ns.enter() {
        usage(&format!("{path}: {e}"));
    }
}

fn set_comm(name: &str) {
    let c = CString::new(name).unwrap_or_else(|_| usage("bad --comm"));
    // SAFETY: PR_SET_NAME reads a NUL-terminated string (truncated to 15 bytes).
    unsafe { libc::prctl(libc::PR_SET_NAME, c.as_ptr() as libc::c_ulong, 0, 0, 0) };
}

/// When the scenario must stop: stdin closed (the test is done) or the deadline passed.
#[derive(Clone)]
struct Stop {
    eof: Arc<AtomicBool>,
    deadline: Instant,
}

impl Stop {
    fn new(max: Duration) -> Stop {
        let eof = Arc::new(AtomicBool::new(false));
        let flag = eof.clone();
        thread::spawn(move || {
            let mut buf = [0u8; 64];
            while matches!(io::stdin().read(&mut buf), Ok(n) if n > 0) {}
            flag.store(true, Ordering::Relaxed);
        });
        Stop {
            eof,
            deadline: Instant::now() + max,
        }
    }

    fn now(&self) -> bool {
        self.eof.load(Ordering::Relaxed) || Instant::now() >= self.deadline
    }

    /// Sleeps up to `d`, waking early when it is time to stop; true when it is.
    fn sleep(&self, d: Duration) -> bool {
        let end = Instant::now() + d;
        while Instant::now() < end {
            if self.now() {
                return true;
            }
            thread::sleep((end - Instant::now()).min(Duration::from_millis(20)));
        }
        self.now()
    }

    fn hold(&self) {
        while !self.sleep(Duration::from_millis(100)) {}
    }
}

/// Reports the first failure of each errno.
#[derive(Default)]
struct Failures {
    seen: BTreeSet<String>,
}

impl Failures {
    fn note(&mut self, e: &io::Error, kv: &[(&str, String)]) {
        let name = errno_name(e);
        if self.seen.insert(name.clone()) {
            let mut all = vec![("errno", name)];
            all.extend_from_slice(kv);
            say("fail", &all);
        }
    }
}

/// Paces a loop at `rate` per second (0: no pacing).
struct Pace {
    start: Instant,
    rate: f64,
    n: u64,
}

impl Pace {
    fn new(rate: f64) -> Pace {
        Pace {
            start: Instant::now(),
            rate,
            n: 0,
        }
    }

    fn wait(&mut self, stop: &Stop) -> bool {
        if self.rate > 0.0 {
            let at = self.start + Duration::from_secs_f64(self.n as f64 / self.rate);
            let now = Instant::now();
            if at > now && stop.sleep(at - now) {
                return true;
            }
        }
        self.n += 1;
        stop.now()
    }
}

/// Connect, close first (this side gets the TIME_WAIT).
fn churn(a: &Args, stop: &Stop) {
    let dst = a.addr(1);
    let count: u64 = a.num("--count", u64::MAX);
    let mut pace = Pace::new(a.num("--rate", 0.0));
    let mut fails = Failures::default();
    let (mut made, mut lo, mut hi) = (0u64, u16::MAX, 0u16);
    let mut recovered = false;
    while made < count && !pace.wait(stop) {
        match TcpStream::connect(dst) {
            Ok(s) => {
                let port = s.local_addr().map_or(0, |l| l.port());
                (lo, hi) = (lo.min(port), hi.max(port));
                made += 1;
                if made == 1 {
                    say("start", &[]);
                }
                if !fails.seen.is_empty() && !recovered {
                    recovered = true;
                    say("recovered", &[("made", made.to_string())]);
                }
                drop(s);
            }
            Err(e) => {
                let kv = [
                    ("made", made.to_string()),
                    ("min_port", lo.to_string()),
                    ("max_port", hi.to_string()),
                ];
                fails.note(&e, &kv);
                // An exhausted pool fails at once: retry as a client would, not in a spin.
                if stop.sleep(Duration::from_millis(100)) {
                    break;
                }
            }
        }
    }
    if made == count {
        say("reached", &[("made", made.to_string())]);
    }
    stop.hold();
}

/// Open connections and keep them: ESTABLISHED (concurrency), bound first
/// (bind-before-connect), not waiting for the handshake (SYN_SENT), or closed by the server
/// and never by us (CLOSE_WAIT).
fn hold(a: &Args, stop: &Stop) {
    let dst = a.addr(1);
    let count: usize = a.num("--count", usize::MAX);
    let bind: Option<SocketAddr> = a.get("--bind").map(|b| {
        b.parse()
            .unwrap_or_else(|_| usage("--bind: not an address"))
    });
    let nonblocking = a.flag("--nonblocking");
    let mut kept: Vec<Socket> = Vec::new();
    let mut fails = Failures::default();
    while !stop.now() {
        if kept.len() >= count {
            say("reached", &[("kept", kept.len().to_string())]);
            break;
        }
        match open(dst, bind, nonblocking) {
            Ok(s) => {
                kept.push(s);
                if kept.len() == 1 {
                    say("start", &[]);
                }
            }
            Err(e) => {
                fails.note(&e, &[("kept", kept.len().to_string())]);
                if stop.sleep(Duration::from_millis(200)) {
                    break;
                }
            }
        }
    }
    stop.hold();
}

fn open(dst: SocketAddr, bind: Option<SocketAddr>, nonblocking: bool) -> io::Result<Socket> {
    let s = Socket::new(Domain::for_address(dst), Type::STREAM, None)?;
    if let Some(b) = bind {
        s.bind(&b.into())?;
    }
    if nonblocking {
        s.set_nonblocking(true)?;
        match s.connect(&dst.into()) {
            Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
            r => r?,
        }
    } else {
        s.connect(&dst.into())?;
    }
    Ok(s)
}

/// Listen (the holder of a port), and with `--accept` accept everything and close nothing
/// (a server that leaks CLOSE_WAIT).
fn listen(a: &Args, stop: &Stop) {
    let addr = a.addr(1);
    let l = TcpListener::bind(addr).unwrap_or_else(|e| usage(&format!("listen {addr}: {e}")));
    say("ready", &[("addr", addr.to_string())]);
    if !a.flag("--accept") {
        return stop.hold();
    }
    l.set_nonblocking(true).expect("nonblocking listener");
    let mut kept = Vec::new();
    while !stop.now() {
        match l.accept() {
            Ok((s, _)) => kept.push(s),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                stop.sleep(Duration::from_millis(5));
            }
            Err(e) => usage(&format!("accept: {e}")),
        }
    }
}

/// bind() an address someone else holds, as a restarting service would.
fn bind(a: &Args, stop: &Stop) {
    let addr = a.addr(1);
    let tries: u32 = a.num("--tries", 3);
    let mut fails = Failures::default();
    let mut kept = None;
    for i in 0..tries {
        let s = Socket::new(Domain::for_address(addr), Type::STREAM, None).expect("socket");
        match s.bind(&addr.into()) {
            Ok(()) => {
                say("bound", &[]);
                kept = Some(s);
                break;
            }
            Err(e) => fails.note(&e, &[("try", (i + 1).to_string())]),
        }
        if stop.sleep(Duration::from_millis(200)) {
            break;
        }
    }
    say("done", &[]);
    stop.hold();
    drop(kept);
}

/// A healthy client: kept-alive connections, and short ones the server closes first.
fn healthy(a: &Args, stop: &Stop) {
    let dst = a.addr(1);
    let keep: usize = a.num("--keepalive", 20);
    let mut pace = Pace::new(a.num("--rate", 50.0));
    let mut kept = Vec::new();
    for _ in 0..keep {
        kept.push(TcpStream::connect(dst).expect("keep-alive connection"));
    }
    say("start", &[("kept", kept.len().to_string())]);
    let mut fails = Failures::default();
    let mut made = 0u64;
    while !pace.wait(stop) {
        match TcpStream::connect(dst) {
            Ok(mut s) => {
                // The server closes first; we close once we have read its FIN.
                let mut buf = [0u8; 64];
                while matches!(s.read(&mut buf), Ok(n) if n > 0) {}
                made += 1;
            }
            Err(e) => fails.note(&e, &[("made", made.to_string())]),
        }
    }
    say("done", &[("made", made.to_string())]);
}

fn main() {
    let a = Args::parse();
    let path = a
        .get("--netns")
        .unwrap_or_else(|| usage("--netns is required"));
    enter(path);
    set_comm(a.get("--comm").unwrap_or("pw-scenario"));
    let stop = Stop::new(Duration::from_secs_f64(a.num("--max-s", 30.0)));
    match a.pos.first().map(String::as_str) {
        Some("churn") => churn(&a, &stop),
        Some("hold") => hold(&a, &stop),
        Some("listen") => listen(&a, &stop),
        Some("bind") => bind(&a, &stop),
        Some("healthy") => healthy(&a, &stop),
        _ => usage("unknown scenario"),
    }
}
