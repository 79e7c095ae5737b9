//! Many concurrent connections held open on loopback: both ends of each, in the calling
//! thread's network namespace, spread over destination addresses 127.0.0.1, 127.0.0.2, … so
//! that no (source IP, destination) pool runs out of ports. For measuring what portwatch
//! costs with hundreds of thousands of live sockets (snapshot time, model memory).
//!
//! One process may hold only `RLIMIT_NOFILE` files, and without CAP_SYS_RESOURCE that cannot
//! go past its hard limit: [`per_process`] says how many connections fit, and `lab hold`
//! ([`crate::cli`]) spreads larger counts over child processes.

use std::{
    io,
    net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream},
    time::Instant,
};

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug)]
pub struct HoldOpts {
    /// Connections to open (each is two sockets and two file descriptors).
    pub connections: u64,
    /// The listener's port (on 0.0.0.0).
    pub port: u16,
    /// Connections per destination address; needs `ip_local_port_range` at least this wide.
    pub per_address: u64,
}

impl HoldOpts {
    pub fn new(connections: u64) -> HoldOpts {
        HoldOpts {
            connections,
            port: 5001,
            per_address: 40_000,
        }
    }
}

/// What [`hold`] opened.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct HoldReport {
    pub connections: u64,
    /// Sockets in the namespace: both ends of every connection, and the listener.
    pub sockets: u64,
    /// Destination addresses used (127.0.0.1 …).
    pub addresses: u64,
    /// Processes holding them (see [`per_process`]).
    pub processes: u64,
    pub elapsed_s: f64,
}

/// The connections, open until dropped.
pub struct Held {
    pub report: HoldReport,
    _listener: TcpListener,
    _streams: Vec<TcpStream>,
}

/// Accepts queue up to this many connections between accepts (under the listen backlog, or
/// connect() would stall on a dropped SYN).
const BATCH: u64 = 1000;

/// Opens `opts.connections` connections in the calling thread's namespace and keeps both
/// ends. Raises `RLIMIT_NOFILE` as needed (root can raise it up to `fs.nr_open`).
pub fn hold(opts: &HoldOpts) -> anyhow::Result<Held> {
    let start = Instant::now();
    raise_nofile(2 * opts.connections + 64)?;
    let listener = {
        let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
        s.set_reuse_address(true)?;
        let addr = SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), opts.port);
        s.bind(&addr.into())
            .with_context(|| format!("bind {addr}"))?;
        s.listen(4096)?;
        TcpListener::from(s)
    };
    let mut streams = Vec::with_capacity(2 * opts.connections as usize);
    let per = opts.per_address.max(1);
    let mut made = 0;
    while made < opts.connections {
        let batch = BATCH.min(opts.connections - made);
        for i in made..made + batch {
            let ip = Ipv4Addr::from(u32::from(Ipv4Addr::LOCALHOST) + (i / per) as u32);
            let dst = SocketAddr::new(ip.into(), opts.port);
            let c = TcpStream::connect(dst)
                .with_context(|| format!("connect #{i} to {dst} (ports or memory exhausted?)"))?;
            streams.push(c);
        }
        for _ in 0..batch {
            streams.push(listener.accept().context("accept")?.0);
        }
        made += batch;
    }
    Ok(Held {
        report: HoldReport {
            connections: made,
            sockets: 2 * made + 1,
            addresses: made.div_ceil(per),
            processes: 1,
            elapsed_s: start.elapsed().as_secs_f64(),
        },
        _listener: listener,
        _streams: streams,
    })
}

/// Connections one process can hold: its file limit raised as far as it can go, less a
/// margin, halved (two ends each).
pub fn per_process() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: lim is a valid out-pointer.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return 0;
    }
    let nr_open = std::fs::read_to_string("/proc/sys/fs/nr_open")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .unwrap_or(lim.rlim_max);
    let has_sys_resource = raise_nofile(nr_open).is_ok();
    let max = if has_sys_resource {
        nr_open
    } else {
        lim.rlim_max
    };
    max.saturating_sub(64) / 2
}

/// Makes sure this process may have `need` open files.
pub fn raise_nofile(need: u64) -> io::Result<()> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: lim is a valid out-pointer.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(io::Error::last_os_error());
    }
    if lim.rlim_cur >= need {
        return Ok(());
    }
    lim.rlim_cur = need;
    lim.rlim_max = lim.rlim_max.max(need);
    // SAFETY: lim is a valid rlimit.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) } != 0 {
        let e = io::Error::last_os_error();
        return Err(io::Error::new(
            e.kind(),
            format!(
                "raise RLIMIT_NOFILE to {need}: {e} (root may go up to fs.nr_open = {})",
                std::fs::read_to_string("/proc/sys/fs/nr_open")
                    .unwrap_or_default()
                    .trim()
            ),
        ));
    }
    Ok(())
}
