//! The pieces of the cause tests (`tests/causes.rs`): the `portwatch report` binary running
//! live on one namespace, a scenario process (`pw-scenario`) that misbehaves in it, and test
//! servers on the namespace's loopback.

use std::{
    io::{self, BufRead, BufReader, Read, Write},
    net::{SocketAddr, TcpListener, TcpStream},
    os::fd::AsRawFd,
    process::{Child, ChildStdin, Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
        mpsc,
    },
    thread,
    time::{Duration, Instant},
};

use serde_json::Value;

use crate::{Netns, require_root};

/// The portwatch binary under test: `PORTWATCH_BIN` (set by `cargo xtask test`). Panics
/// without it: these tests never skip.
pub fn portwatch_bin() -> String {
    let bin = std::env::var("PORTWATCH_BIN")
        .expect("PORTWATCH_BIN must name the portwatch binary (cargo xtask test sets it)");
    assert!(
        std::path::Path::new(&bin).exists(),
        "PORTWATCH_BIN={bin} does not exist"
    );
    bin
}

/// The release build of the binary under test: `PORTWATCH_RELEASE_BIN` (set by `cargo xtask
/// test`), for the tests that measure whether portwatch keeps up with a load, as users run it.
/// Panics without it: these tests never skip, nor fall back to a debug build that could not keep
/// up.
pub fn portwatch_release_bin() -> String {
    let bin = std::env::var("PORTWATCH_RELEASE_BIN").expect(
        "PORTWATCH_RELEASE_BIN must name a release build of portwatch (cargo xtask test sets it; \
         by hand: cargo build --release -p portwatch)",
    );
    assert!(
        std::path::Path::new(&bin).exists(),
        "PORTWATCH_RELEASE_BIN={bin} does not exist"
    );
    bin
}

/// CLOCK_MONOTONIC now, in ns: the clock of events and of a report's window.
pub fn mono_ns() -> u64 {
    portwatch::collect::monotonic_now_ns()
}

/// Sleeps until `CLOCK_MONOTONIC` reaches `t_ns` (at once if it has).
pub fn sleep_until_ns(t_ns: u64) {
    let now = mono_ns();
    if t_ns > now {
        thread::sleep(Duration::from_nanos(t_ns - now));
    }
}

/// Reads a child's stream line by line on a thread, so that waits can time out.
pub(crate) fn lines(r: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(r).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// `portwatch report --json --netns INODE`, started and tracing; [`LiveReport::finish`] ends
/// its window (SIGTERM, as Ctrl-C would) and returns the report.
pub struct LiveReport {
    child: Option<Child>,
    stderr: mpsc::Receiver<String>,
    /// What it printed on stderr so far.
    log: Vec<String>,
}

impl LiveReport {
    /// Starts it and waits until it says it is tracing. `max` is its `--duration`: a bound in
    /// case the test never ends the window.
    pub fn start(netns: u32, max: Duration) -> LiveReport {
        LiveReport::start_with_env(netns, max, &[])
    }

    /// Like [`LiveReport::start`], with these environment variables set for portwatch (e.g.
    /// `CONTAINER_HOST`, the runtime API socket it asks for container names).
    pub fn start_with_env(netns: u32, max: Duration, env: &[(&str, &str)]) -> LiveReport {
        LiveReport::start_with(netns, max, env, &[])
    }

    /// Like [`LiveReport::start_with_env`], with more arguments for `portwatch report` (e.g.
    /// `--record FILE`).
    pub fn start_with(
        netns: u32,
        max: Duration,
        env: &[(&str, &str)],
        args: &[&str],
    ) -> LiveReport {
        LiveReport::start_full(&["--netns", &netns.to_string()], max, env, args)
    }

    /// Like [`LiveReport::start`], tracing every namespace (`args` are more arguments).
    pub fn start_all(args: &[&str], max: Duration) -> LiveReport {
        LiveReport::start_full(&[], max, &[], args)
    }

    /// Like [`LiveReport::start`], running `bin` (e.g. [`portwatch_release_bin`]).
    pub fn start_bin(bin: &str, netns: u32, max: Duration) -> LiveReport {
        LiveReport::start_full_bin(bin, &["--netns", &netns.to_string()], max, &[], &[])
    }

    fn start_full(
        scope: &[&str],
        max: Duration,
        env: &[(&str, &str)],
        args: &[&str],
    ) -> LiveReport {
        LiveReport::start_full_bin(&portwatch_bin(), scope, max, env, args)
    }

    fn start_full_bin(
        bin: &str,
        scope: &[&str],
        max: Duration,
        env: &[(&str, &str)],
        args: &[&str],
    ) -> LiveReport {
        require_root();
        let mut child = Command::new(bin)
            .envs(env.iter().copied())
            .args(["report", "--json"])
            .args(scope)
            .args(["--duration", &format!("{}s", max.as_secs().max(1))])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn portwatch report");
        let stderr = lines(child.stderr.take().unwrap());
        let mut me = LiveReport {
            child: Some(child),
            stderr,
            log: Vec::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match me.stderr.recv_timeout(left) {
                Ok(l) => {
                    let tracing = l.contains("tracing");
                    me.log.push(l);
                    if tracing {
                        return me;
                    }
                }
                Err(_) => panic!(
                    "portwatch report did not start tracing: {}",
                    me.log.join("\n")
                ),
            }
        }
    }

    /// Ends the window now and returns the report (the JSON document).
    pub fn finish(self) -> Value {
        self.finish_with_log().0
    }

    /// Like [`LiveReport::finish`], with every line portwatch printed on stderr.
    pub fn finish_with_log(mut self) -> (Value, Vec<String>) {
        let mut child = self.child.take().unwrap();
        // SAFETY: a signal to the child we started and have not reaped yet.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let mut out = String::new();
        child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        let status = child.wait().unwrap();
        self.log.extend(self.stderr.try_iter());
        assert!(
            status.success(),
            "portwatch report: {status}\n{}",
            self.log.join("\n")
        );
        let report =
            serde_json::from_str(&out).unwrap_or_else(|e| panic!("report JSON: {e}\n{out}"));
        (report, std::mem::take(&mut self.log))
    }
}

impl Drop for LiveReport {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// One line a scenario printed: what happened, when (CLOCK_MONOTONIC ns), and its details.
#[derive(Clone, Debug)]
pub struct Said {
    pub what: String,
    pub at_ns: u64,
    pub kv: Vec<(String, String)>,
}

impl Said {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.kv
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub fn num(&self, key: &str) -> u64 {
        self.get(key)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{key} in {self:?}"))
    }
}

fn parse(line: &str) -> Said {
    let mut f = line.split_whitespace();
    Said {
        what: f.next().unwrap_or_default().to_string(),
        at_ns: f.next().and_then(|t| t.parse().ok()).unwrap_or(0),
        kv: f
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}

/// A `pw-scenario` process in a namespace, with the name (`comm`) it gave itself. It runs
/// until [`Scenario::stop`] (or drop) closes its stdin, or its own time limit.
pub struct Scenario {
    pub pid: u32,
    pub comm: String,
    child: Option<Child>,
    stdin: Option<ChildStdin>,
    out: mpsc::Receiver<String>,
    /// Every line read so far.
    pub said: Vec<Said>,
}

impl Scenario {
    /// `bin`: the pw-scenario binary (`env!("CARGO_BIN_EXE_pw-scenario")` in a test).
    pub fn start(bin: &str, ns: &Netns, comm: &str, args: &[&str]) -> Scenario {
        assert!(comm.len() <= 15, "comm is at most 15 bytes: {comm}");
        let mut cmd = Command::new(bin);
        cmd.args([
            "--netns",
            &format!("/run/netns/{}", ns.name),
            "--comm",
            comm,
        ])
        .args(args);
        Scenario::spawn(cmd, comm)
    }

    /// Any program that speaks the same line protocol on stdout and ends when its stdin
    /// closes (a real program, or a script for one: `tests/programs/`), with the `comm` the
    /// kernel will give it. Its pid is the spawned process's: enter a namespace with
    /// `ip netns exec` (which execs, keeping the pid), not a shell.
    pub fn spawn(mut cmd: Command, comm: &str) -> Scenario {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
        let out = lines(child.stdout.take().unwrap());
        Scenario {
            pid: child.id(),
            comm: comm.to_string(),
            stdin: child.stdin.take(),
            child: Some(child),
            out,
            said: Vec::new(),
        }
    }

    /// Waits for the first line saying `what` (and `errno`, for `fail`); panics after
    /// `timeout` with everything it said.
    pub fn wait(&mut self, what: &str, errno: Option<&str>, timeout: Duration) -> Said {
        let matches = |s: &Said| s.what == what && errno.is_none_or(|e| s.get("errno") == Some(e));
        if let Some(s) = self.said.iter().find(|s| matches(s)) {
            return s.clone();
        }
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self.out.recv_timeout(left).unwrap_or_else(|_| {
                panic!(
                    "{} (pid {}) never said {what} {errno:?}: {:#?}",
                    self.comm, self.pid, self.said
                )
            });
            let said = parse(&line);
            self.said.push(said.clone());
            if matches(&said) {
                return said;
            }
        }
    }

    /// Writes one line to its stdin (for programs driven step by step).
    pub fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        writeln!(stdin, "{line}")
            .and_then(|()| stdin.flush())
            .unwrap_or_else(|e| panic!("write to {} (pid {}): {e}", self.comm, self.pid));
    }

    /// The next line it says (after every line read so far); panics after `timeout`.
    pub fn next(&mut self, timeout: Duration) -> Said {
        let line = self.out.recv_timeout(timeout).unwrap_or_else(|_| {
            panic!(
                "{} (pid {}) said nothing more: {:#?}",
                self.comm, self.pid, self.said
            )
        });
        let said = parse(&line);
        self.said.push(said.clone());
        said
    }

    /// Whether it has said `what` (among the lines read so far, after reading what is
    /// waiting).
    pub fn has_said(&mut self, what: &str) -> bool {
        while let Ok(line) = self.out.try_recv() {
            self.said.push(parse(&line));
        }
        self.said.iter().any(|s| s.what == what)
    }

    /// Closes its stdin (it then releases its sockets and exits) and reaps it.
    pub fn stop(mut self) {
        self.end();
    }

    fn end(&mut self) {
        drop(self.stdin.take());
        if let Some(mut c) = self.child.take() {
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Scenario {
    fn drop(&mut self) {
        self.end();
    }
}

/// What a [`TestServer`] does with each connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Serve {
    /// Reads until the client's FIN, then closes: the client closed first.
    CloseAfterClient,
    /// Closes at once: the server closes first.
    CloseFirst,
    /// Keeps every connection open until the server stops.
    Keep,
    /// Never accepts, with the smallest backlog: once one connection waits in its accept
    /// queue, the kernel drops every further SYN (an overloaded server).
    NeverAccept,
}

/// A listener of the test process (so its pid differs from the scenario's) on a namespace's
/// loopback, served by one thread until dropped.
pub struct TestServer {
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl TestServer {
    pub fn start(ns: &Netns, addr: SocketAddr, how: Serve) -> TestServer {
        let backlog = if how == Serve::NeverAccept { 0 } else { 1024 };
        let listener = ns.run(move || -> io::Result<TcpListener> {
            let s = socket2::Socket::new(
                socket2::Domain::for_address(addr),
                socket2::Type::STREAM,
                None,
            )?;
            s.set_reuse_address(true)?;
            s.bind(&addr.into())?;
            s.listen(backlog)?;
            Ok(s.into())
        });
        let listener = listener.unwrap_or_else(|e| panic!("listen on {addr}: {e}"));
        listener.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = thread::spawn(move || {
            let mut kept = Vec::new();
            while !flag.load(Ordering::Relaxed) {
                if how == Serve::NeverAccept {
                    thread::sleep(Duration::from_millis(20));
                    continue;
                }
                match listener.accept() {
                    Ok((s, _)) => match how {
                        Serve::CloseAfterClient => {
                            let _ = s.set_nonblocking(false);
                            let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
                            let mut s = s;
                            let mut buf = [0u8; 64];
                            while matches!(s.read(&mut buf), Ok(n) if n > 0) {}
                        }
                        Serve::CloseFirst => drop(s),
                        Serve::Keep => kept.push(s),
                        Serve::NeverAccept => unreachable!(),
                    },
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        portwatch_lab::churn::poll_readable(listener.as_raw_fd(), 20);
                    }
                    Err(_) => thread::sleep(Duration::from_millis(1)),
                }
            }
            drop(kept);
        });
        TestServer {
            addr,
            stop,
            thread: Some(thread),
        }
    }

    /// Fills a [`Serve::NeverAccept`] server's accept queue (one connection of the test
    /// process), so that every later SYN is dropped. Returns that connection: keep it.
    pub fn fill_accept_queue(&self, ns: &Netns) -> TcpStream {
        let addr = self.addr;
        ns.run(move || TcpStream::connect_timeout(&addr, Duration::from_secs(2)))
            .expect("the first connection fills the accept queue")
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

pub use crate::findings::{assert_remedy, describe, finding, findings, remedies, top};
