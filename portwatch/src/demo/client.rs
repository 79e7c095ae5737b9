//! The demo's client: the body of the hidden `portwatch demo-client` process that
//! [`Demo`](super::Demo) starts inside its namespace. It names itself
//! [`CLIENT_COMM`](super::CLIENT_COMM), waits for the go line, then connects at a steady rate
//! and closes each connection first.

use std::{
    ffi::CString,
    io::{self, BufRead},
    net::{SocketAddr, TcpStream},
    thread,
    time::{Duration, Instant},
};

use super::{BACKOFF, CLIENT_COMM};

/// What the client process does.
#[derive(Clone, Debug)]
pub struct ClientOptions {
    pub dst: SocketAddr,
    /// New connections per second.
    pub rate: f64,
    /// Stop after this long (`None`: when killed).
    pub duration: Option<Duration>,
}

/// Names the process [`CLIENT_COMM`], waits for a line on stdin (end of file: portwatch is
/// gone, exit), then opens and closes connections to `dst` at `rate` per second, closing
/// first, backing off [`BACKOFF`] after each failure. Returns (connections, failures).
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

/// Sets the calling thread's command name (what the kernel reports as `comm`, at most 15
/// bytes; threads spawned afterwards inherit it).
pub fn set_comm(name: &str) -> io::Result<()> {
    let short = &name.as_bytes()[..name.len().min(15)];
    let name = CString::new(short).map_err(|_| io::Error::other("a NUL in a command name"))?;
    rustix::thread::set_name(&name)?;
    Ok(())
}
