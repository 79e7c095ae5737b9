//! `portwatch demo`: a port exhaustion staged in a throwaway network namespace, so a newcomer
//! can watch portwatch explain one within seconds.
//!
//! - an anonymous namespace ([`Netns::new`]): the kernel removes it when its last process and
//!   file descriptor are gone, however portwatch ends;
//! - a small port range (`40000 40049` by default: ends of opposite parity, so every port is
//!   usable) and `tcp_tw_reuse = 0` (on loopback the default, 2, would let the client reuse
//!   its TIME_WAIT ports and nothing would run out);
//! - a server in this process (threads named `demo-server`) that waits for the client's FIN
//!   before closing, so the client closes first and keeps each port in TIME_WAIT for 60 s;
//! - a client in a child process named `demo-client` (`portwatch lab-client …`) that
//!   connects at a steady rate, and on `EADDRNOTAVAIL` backs off and tries again. The child
//!   dies with the thread that started it (`PR_SET_PDEATHSIG`), and with portwatch.

use std::{
    io::{self, BufRead, Write},
    net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream},
    os::{
        fd::{AsRawFd, FromRawFd, OwnedFd},
        unix::process::CommandExt,
    },
    process::{ChildStdin, Command, Stdio},
    sync::mpsc,
    thread,
    time::{Duration, Instant},
};

use anyhow::Context as _;

use super::{
    churn::{Closer, Server},
    netns::Netns,
};

/// First port of the demo's range.
pub const PORT_LO: u16 = 40000;
/// Where the demo server listens (outside the range, on the namespace's loopback).
pub const SERVER: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 8080);
/// The client's and the server's command names, as findings show them.
pub const CLIENT_COMM: &str = "demo-client";
pub const SERVER_COMM: &str = "demo-server";
/// Pause after a failed connect(): an exhausted pool fails at once.
pub const BACKOFF: Duration = Duration::from_millis(100);

#[derive(Clone, Debug)]
pub struct DemoOptions {
    /// Ports in the range (rounded up to an even number: ends of opposite parity).
    pub ports: u16,
    /// New connections per second.
    pub rate: f64,
    /// The client stops after this long (`None`: when portwatch stops).
    pub duration: Option<Duration>,
}

impl DemoOptions {
    /// `ip_local_port_range` for these options.
    pub fn port_range(&self) -> (u16, u16) {
        let n = self.ports.max(2).next_multiple_of(2).min(20_000);
        (PORT_LO, PORT_LO + n - 1)
    }
}

/// The demo's namespace, server and client; dropping it stops them.
pub struct Demo {
    pub ns: Netns,
    pub range: (u16, u16),
    pub dst: SocketAddr,
    server: Option<Server>,
    client_pid: u32,
    /// A pidfd on the client: signals through it never reach a recycled pid.
    client: Option<OwnedFd>,
    client_stdin: Option<ChildStdin>,
    supervisor: Option<thread::JoinHandle<()>>,
}

impl Demo {
    /// Sets up the namespace and the server, and starts the client process (`client`, e.g.
    /// `portwatch lab-client --dst … --rate …`) inside the namespace, waiting for [`Demo::go`]:
    /// started first, it lets the start-up snapshot find the namespace through
    /// `/proc/PID/ns/net` and read its sysctls.
    pub fn start(opts: &DemoOptions, client: Command) -> anyhow::Result<Demo> {
        let ns = Netns::new()?;
        let range = opts.port_range();
        ns.sysctl(
            "net/ipv4/ip_local_port_range",
            &format!("{} {}", range.0, range.1),
        )?;
        ns.sysctl("net/ipv4/tcp_tw_reuse", "0")?;
        let server_ns = ns.try_clone()?;
        // Threads take their command name from the thread that spawns them: the listener and
        // acceptor threads started from here are all `demo-server`.
        let server = thread::Builder::new()
            .name(SERVER_COMM.into())
            .spawn(move || Server::start(&server_ns, SERVER, Closer::Client, 2))?
            .join()
            .expect("demo server thread panicked")
            .context("start the demo server")?;
        let mut demo = Demo {
            dst: server.addr,
            ns,
            range,
            server: Some(server),
            client_pid: 0,
            client: None,
            client_stdin: None,
            supervisor: None,
        };
        demo.spawn_client(client)?;
        Ok(demo)
    }

    /// Starts the child from a thread inside the namespace that waits for it: the child
    /// inherits the namespace, and `PR_SET_PDEATHSIG` (which fires when the spawning
    /// *thread* ends) kills it if portwatch ends without stopping it.
    fn spawn_client(&mut self, mut cmd: Command) -> anyhow::Result<()> {
        let ns = self.ns.try_clone()?;
        let parent = std::process::id() as libc::pid_t;
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // SAFETY: prctl and getppid are async-signal-safe; nothing is allocated.
        unsafe {
            cmd.pre_exec(move || {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) != 0 {
                    return Err(io::Error::last_os_error());
                }
                if libc::getppid() != parent {
                    return Err(io::Error::other("portwatch exited"));
                }
                Ok(())
            });
        }
        let (tx, rx) = mpsc::channel();
        let supervisor = thread::Builder::new()
            .name("demo-supervisor".into())
            .spawn(move || {
                if let Err(e) = ns.enter() {
                    let _ = tx.send(Err(e));
                    return;
                }
                match cmd.spawn() {
                    Ok(mut child) => {
                        // Opened before anyone can reap the child: it names this process.
                        let pidfd = pidfd_open(child.id());
                        let stdin = child.stdin.take();
                        let _ = tx.send(pidfd.map(|fd| (child.id(), fd, stdin)));
                        let _ = child.wait();
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e));
                    }
                }
            })?;
        let (pid, pidfd, stdin) = rx
            .recv()
            .context("demo supervisor thread")?
            .context("start the demo client")?;
        self.client_pid = pid;
        self.client = Some(pidfd);
        self.client_stdin = stdin;
        self.supervisor = Some(supervisor);
        Ok(())
    }

    /// The client's process id.
    pub fn client_pid(&self) -> u32 {
        self.client_pid
    }

    /// Lets the client start connecting.
    pub fn go(&mut self) -> anyhow::Result<()> {
        let stdin = self.client_stdin.as_mut().context("demo client stdin")?;
        stdin
            .write_all(b"go\n")
            .and_then(|()| stdin.flush())
            .context("start the demo client")
    }

    /// Stops the client and the server. Idempotent; also done on drop.
    pub fn stop(&mut self) {
        if let Some(fd) = self.client.take() {
            // SAFETY: pidfd_send_signal on a pidfd we own; no siginfo. An exited client
            // gives ESRCH, which is fine.
            unsafe {
                libc::syscall(
                    libc::SYS_pidfd_send_signal,
                    fd.as_raw_fd(),
                    libc::SIGKILL,
                    std::ptr::null::<libc::siginfo_t>(),
                    0,
                )
            };
        }
        self.client_stdin = None;
        if let Some(t) = self.supervisor.take() {
            let _ = t.join();
        }
        if let Some(s) = self.server.take() {
            s.stop_after(0, Duration::ZERO);
        }
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        self.stop();
    }
}

fn pidfd_open(pid: u32) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// What the client child does (`portwatch lab-client`).
#[derive(Clone, Debug)]
pub struct ClientOptions {
    pub dst: SocketAddr,
    pub rate: f64,
    pub duration: Option<Duration>,
}

/// The client process: names itself [`CLIENT_COMM`], waits for a line on stdin (end of file:
/// portwatch is gone, exit), then opens and closes connections to `dst` at `rate` per second,
/// closing first, backing off [`BACKOFF`] after each failure. Returns (connections, failures).
pub fn run_client(opts: &ClientOptions) -> io::Result<(u64, u64)> {
    set_comm(CLIENT_COMM)?;
    let mut line = String::new();
    if io::stdin().lock().read_line(&mut line)? == 0 {
        return Ok((0, 0));
    }
    let start = Instant::now();
    let period = Duration::from_secs_f64(1.0 / opts.rate.max(0.1));
    let (mut made, mut failed) = (0u64, 0u64);
    let mut next = start;
    while opts.duration.is_none_or(|d| start.elapsed() < d) {
        let now = Instant::now();
        if next > now {
            thread::sleep(next - now);
        }
        match TcpStream::connect(opts.dst) {
            // Dropping it closes first: this side's port goes to TIME_WAIT.
            Ok(s) => {
                drop(s);
                made += 1;
                next += period;
            }
            Err(_) => {
                failed += 1;
                thread::sleep(BACKOFF);
                next = Instant::now().max(next + period);
            }
        }
    }
    Ok((made, failed))
}

/// Sets the calling thread's command name (what the kernel reports as `comm`; threads
/// spawned afterwards inherit it).
pub fn set_comm(name: &str) -> io::Result<()> {
    let mut buf = [0u8; 16];
    let n = name.len().min(15);
    buf[..n].copy_from_slice(&name.as_bytes()[..n]);
    // SAFETY: PR_SET_NAME reads a NUL-terminated string of at most 16 bytes.
    if unsafe { libc::prctl(libc::PR_SET_NAME, buf.as_ptr() as libc::c_ulong, 0, 0, 0) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_range_has_ends_of_opposite_parity() {
        let o = |ports| DemoOptions {
            ports,
            rate: 1.0,
            duration: None,
        };
        assert_eq!(o(50).port_range(), (40000, 40049));
        assert_eq!(o(7).port_range(), (40000, 40007));
        assert_eq!(o(0).port_range(), (40000, 40001));
    }
}
