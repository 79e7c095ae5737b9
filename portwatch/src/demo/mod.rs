//! `portwatch demo`: a port exhaustion staged in a throwaway network namespace, so a newcomer
//! can watch portwatch explain one within seconds.
//!
//! - an anonymous namespace ([`Netns::create`]): the kernel removes it when its last process and
//!   file descriptor are gone, however portwatch ends;
//! - a small port range (`40000 40049` by default: ends of opposite parity, so every port is
//!   usable) and `tcp_tw_reuse = 0` (on loopback the default, 2, would let the client reuse
//!   its TIME_WAIT ports and nothing would run out);
//! - a server in this process ([`server`], threads named `demo-server`) that waits for the
//!   client's FIN before closing, so the client closes first and keeps each port in TIME_WAIT
//!   for 60 s;
//! - a client in a child process named `demo-client` ([`client`]: portwatch re-executed as
//!   the hidden `portwatch demo-client …`) that connects at a steady rate, and on
//!   `EADDRNOTAVAIL` backs off and tries again. The child dies with the thread that started
//!   it (`PR_SET_PDEATHSIG`), and with portwatch.
//!
//! Only what the demo needs lives here; the load generators of the benchmarks and tests are
//! in the `portwatch-lab` crate.

pub mod client;
pub mod server;

use std::{
    io::{self, Write},
    net::{IpAddr, Ipv4Addr, SocketAddr},
    os::{fd::OwnedFd, unix::process::CommandExt},
    process::{ChildStdin, Command, Stdio},
    sync::mpsc,
    thread,
    time::Duration,
};

use anyhow::Context as _;
use rustix::process::{Pid, PidfdFlags, Signal};

use self::server::Server;
use crate::netns::Netns;

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
    /// `portwatch demo-client --dst … --rate …`) inside the namespace, waiting for [`Demo::go`]:
    /// started first, it lets the start-up snapshot find the namespace through
    /// `/proc/PID/ns/net` and read its sysctls.
    pub fn start(opts: &DemoOptions, client: Command) -> anyhow::Result<Demo> {
        let ns = Netns::create().context("create the demo's network namespace")?;
        let range = opts.port_range();
        ns.sysctl(
            "net/ipv4/ip_local_port_range",
            &format!("{} {}", range.0, range.1),
        )?;
        ns.sysctl("net/ipv4/tcp_tw_reuse", "0")?;
        // Threads take their command name from the thread that spawns them: started from a
        // thread named `demo-server`, the thread that listens is `demo-server` too (the
        // listener's owner in the views), and so are the acceptors.
        let server = thread::scope(|s| {
            thread::Builder::new()
                .name(SERVER_COMM.into())
                .spawn_scoped(s, || Server::start(&ns, SERVER, 2, SERVER_COMM))?
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })
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
        let parent = rustix::process::getpid().as_raw_nonzero();
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // SAFETY: the closure makes two system calls (prctl, getppid) and allocates nothing
        // but the error of the parent-gone case, which only happens when the child exits.
        unsafe {
            cmd.pre_exec(move || {
                rustix::process::set_parent_process_death_signal(Some(Signal::KILL))?;
                if rustix::process::getppid().map(Pid::as_raw_nonzero) != Some(parent) {
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
            // An exited client gives ESRCH, which is fine.
            let _ = rustix::process::pidfd_send_signal(&fd, Signal::KILL);
        }
        self.client_stdin = None;
        if let Some(t) = self.supervisor.take() {
            let _ = t.join();
        }
        if let Some(mut s) = self.server.take() {
            s.stop();
        }
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A pidfd on a child that nobody has reaped yet (so that `pid` still names it).
fn pidfd_open(pid: u32) -> io::Result<OwnedFd> {
    let pid = i32::try_from(pid)
        .ok()
        .and_then(Pid::from_raw)
        .ok_or_else(|| io::Error::other(format!("not a process id: {pid}")))?;
    Ok(rustix::process::pidfd_open(pid, PidfdFlags::empty())?)
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
