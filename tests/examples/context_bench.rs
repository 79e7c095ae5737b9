//! How long the context readers take with many sockets, next to `ss`. Prints figures, asserts
//! nothing. Root; run in release:
//!
//! ```text
//! cargo run --release -p portwatch-tests --example context_bench -- [ESTABLISHED_PAIRS] [TIME_WAIT]
//! ```
//!
//! Defaults: 35,000 established pairs (70,000 sockets with a file each) and 30,000 TIME_WAIT
//! sockets: 100,000 sockets in a fresh namespace, on its loopback. The established pairs are
//! held by child processes (copies of this program) of at most 9,000 pairs each, to stay
//! under the file limit without CAP_SYS_RESOURCE.

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::{TcpListener, TcpStream},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use portwatch::{
    context::{self, Options, owners},
    netns::Netns,
};
use portwatch_tests::netns::NetnsGuard;

fn arg(n: usize, default: usize) -> usize {
    std::env::args()
        .nth(n)
        .map_or(default, |a| a.parse().expect("a number"))
}

const PAIRS_PER_CHILD: usize = 9_000;

/// Child: enter the namespace, make `pairs` connections to a listener of its own on `port`,
/// say "ready", hold them until stdin closes.
fn hold(netns: &str, port: u16, pairs: usize) {
    // This process is still single-threaded: it moves as a whole.
    Netns::open(std::path::Path::new(netns))
        .and_then(|ns| ns.enter())
        .unwrap();
    let addr = format!("127.0.0.1:{port}");
    let l = TcpListener::bind(&addr).unwrap();
    let mut keep = Vec::with_capacity(2 * pairs);
    for _ in 0..pairs {
        let c = TcpStream::connect(&addr).unwrap();
        keep.push(l.accept().unwrap().0);
        keep.push(c);
    }
    println!("ready");
    std::io::stdout().flush().unwrap();
    let _ = std::io::stdin().read(&mut [0u8; 1]);
}

fn spawn_holders(ns: &NetnsGuard, pairs: usize) -> Vec<Child> {
    let me = std::env::current_exe().unwrap();
    let mut children = Vec::new();
    let mut left = pairs;
    let mut port = 6000u16;
    while left > 0 {
        let n = left.min(PAIRS_PER_CHILD);
        let child = Command::new(&me)
            .args(["--hold", &ns.path(), &port.to_string(), &n.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        children.push(child);
        left -= n;
        port += 1;
    }
    for c in &mut children {
        let mut line = String::new();
        BufReader::new(c.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "ready", "a holder failed");
    }
    children
}

/// CPU time (user + system) of this process and its waited-for children.
fn cpu_now() -> Duration {
    let mut total = Duration::ZERO;
    for who in [libc::RUSAGE_SELF, libc::RUSAGE_CHILDREN] {
        // SAFETY: all-zero is a valid rusage, and getrusage fills it.
        let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: ru is a valid out-pointer.
        unsafe { libc::getrusage(who, &mut ru) };
        for tv in [ru.ru_utime, ru.ru_stime] {
            total += Duration::new(tv.tv_sec as u64, tv.tv_usec as u32 * 1000);
        }
    }
    total
}

/// Best wall-clock and best CPU time of `runs` runs of `f` (the machine may be shared: CPU
/// time is the steadier figure).
#[derive(Clone, Copy)]
struct Timing {
    wall: Duration,
    cpu: Duration,
}

fn best<T>(runs: usize, mut f: impl FnMut() -> T) -> (Timing, T) {
    let mut best = Timing {
        wall: Duration::MAX,
        cpu: Duration::MAX,
    };
    let mut last = None;
    for _ in 0..runs {
        let (t, c) = (Instant::now(), cpu_now());
        let out = f();
        best.wall = best.wall.min(t.elapsed());
        best.cpu = best.cpu.min(cpu_now().saturating_sub(c));
        last = Some(out);
    }
    (best, last.unwrap())
}

impl std::fmt::Display for Timing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:8.1} ms wall {:8.1} ms cpu",
            self.wall.as_secs_f64() * 1e3,
            self.cpu.as_secs_f64() * 1e3
        )
    }
}

impl std::ops::Sub for Timing {
    type Output = Timing;
    fn sub(self, o: Timing) -> Timing {
        Timing {
            wall: self.wall.saturating_sub(o.wall),
            cpu: self.cpu.saturating_sub(o.cpu),
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--hold") {
        return hold(&args[2], args[3].parse().unwrap(), args[4].parse().unwrap());
    }
    let pairs = arg(1, 35_000);
    let time_wait = arg(2, 30_000);
    let ns = NetnsGuard::new("pw-ctx-bench");
    ns.set_sysctl("net/ipv4/ip_local_port_range", "1024 65535");
    ns.set_sysctl("net/ipv4/tcp_max_tw_buckets", "1000000");
    // No TIME_WAIT reuse on loopback (the default, 2): every close leaves one.
    ns.set_sysctl("net/ipv4/tcp_tw_reuse", "0");
    let empty = NetnsGuard::new("pw-ctx-bench");

    let t = Instant::now();
    let holders = spawn_holders(&ns, pairs);
    let listener = ns.enter(|| {
        let tw = TcpListener::bind("127.0.0.1:5001").unwrap();
        for _ in 0..time_wait {
            let c = TcpStream::connect("127.0.0.1:5001").unwrap();
            let (mut a, _) = tw.accept().unwrap();
            drop(c);
            assert_eq!(a.read(&mut [0u8; 1]).unwrap(), 0);
        }
        tw
    });
    eprintln!(
        "built {} established + {time_wait} TIME_WAIT sockets in {:.1} s",
        2 * pairs,
        t.elapsed().as_secs_f64()
    );
    std::thread::sleep(Duration::from_millis(500)); // let the last FINs settle

    let runs = 5;
    let null = || Stdio::from(std::fs::File::create("/dev/null").unwrap());
    let exec = |args: &[&str]| {
        let st = Command::new("ip")
            .args(["netns", "exec", &ns.name])
            .args(args)
            .stdout(null())
            .status()
            .unwrap();
        assert!(st.success());
    };
    let (exec_only, ()) = best(runs, || exec(&["true"]));
    let (ss_tan, ()) = best(runs, || exec(&["ss", "-tan"]));
    let (ss_tanp, ()) = best(runs, || exec(&["ss", "-tanp"]));

    let only = Options {
        only_netns: Some(vec![ns.inode]),
        ..Options::default()
    };
    let no_owners = Options {
        owners: false,
        ..only.clone()
    };
    let (snap_all, report) = best(runs, || context::take(&Options::default()).unwrap());
    let (snap_only, one) = best(runs, || context::take(&only).unwrap());
    let (snap_no_owners, _) = best(runs, || context::take(&no_owners).unwrap());
    let (counts, (c, _)) = best(runs, || context::take_counts(&only).unwrap());
    let only_empty = Options {
        only_netns: Some(vec![empty.inode]),
        ..Options::default()
    };
    let (counts_empty, _) = best(runs, || context::take_counts(&only_empty).unwrap());
    let pids = context::netns::pids().unwrap();
    let workers = Options::default().workers;
    let (walk, o) = best(runs, || owners::walk(&pids, workers));
    let (walk1, _) = best(runs, || owners::walk(&pids, 1));

    let sockets = one.snapshot.namespaces[0].sockets.len();
    let owned = one.snapshot.namespaces[0]
        .sockets
        .iter()
        .filter(|s| s.owner.is_some())
        .count();
    let total: usize = report
        .snapshot
        .namespaces
        .iter()
        .map(|n| n.sockets.len())
        .sum();
    println!("best of {runs}, {workers} workers");
    println!(
        "test netns: {sockets} sockets ({owned} with an owner); whole system: {total} sockets in {} namespaces, {} processes",
        report.snapshot.namespaces.len(),
        pids.len()
    );
    println!("ip netns exec true         {exec_only}  (subtracted below)");
    println!("ss -tan                    {}", ss_tan - exec_only);
    println!("ss -tanp                   {}", ss_tanp - exec_only);
    println!("snapshot, all namespaces   {snap_all}");
    println!("snapshot, test netns       {snap_only}");
    println!("  without owners           {snap_no_owners}");
    println!(
        "owner walk, {workers} threads      {walk}  ({} socket fds)",
        o.stats.socket_fds
    );
    println!("owner walk, 1 thread       {walk1}");
    println!(
        "counts, test netns         {counts}  ({} pools)",
        c[0].pools.len()
    );
    println!("counts, an empty netns     {counts_empty}");
    drop(listener);
    for mut c in holders {
        drop(c.stdin.take());
        c.wait().unwrap();
    }
}
