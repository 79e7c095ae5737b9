//! The pieces of the agent tests (`tests/serve.rs`, `tests/prometheus.rs`): `portwatch serve`
//! running live on one namespace, a plain HTTP/1.1 GET to scrape it, reading samples out of
//! the text format, and a real Prometheus server (Debian's `prometheus`) on loopback.

use std::{
    io::{Read, Write},
    net::{SocketAddr, TcpListener, TcpStream},
    path::PathBuf,
    process::{Child, Command, ExitStatus, Stdio},
    sync::mpsc,
    thread,
    time::{Duration, Instant},
};

use serde_json::Value;

use crate::{
    Netns,
    live::{lines, portwatch_bin},
    require_root, ss,
};

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind a probe port")
        .port()
}

fn stderr_lines(child: &mut Child) -> mpsc::Receiver<String> {
    lines(child.stderr.take().expect("piped stderr"))
}

/// `portwatch serve --netns INODE` on a loopback port, started and serving.
pub struct Agent {
    pub addr: SocketAddr,
    child: Option<Child>,
    stderr: mpsc::Receiver<String>,
    /// What it logged so far.
    pub log: Vec<String>,
}

impl Agent {
    /// Starts it and waits until it logs that it serves (it has attached by then).
    pub fn start(netns: u32, extra: &[&str]) -> Agent {
        Agent::start_as(&[], &portwatch_bin(), netns, extra)
    }

    /// The same, with `wrapper` before the binary (`setpriv …`, `podman run …`), and the
    /// binary at `bin` as the wrapper sees it.
    pub fn start_as(wrapper: &[&str], bin: &str, netns: u32, extra: &[&str]) -> Agent {
        require_root();
        let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let mut cmd = match wrapper.split_first() {
            Some((first, rest)) => {
                let mut c = Command::new(first);
                c.args(rest).arg(bin);
                c
            }
            None => Command::new(bin),
        };
        let mut child = cmd
            .args(["serve", "--netns", &netns.to_string()])
            .args(["--listen", &addr.to_string()])
            .args(extra)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn portwatch serve");
        let stderr = stderr_lines(&mut child);
        let mut me = Agent {
            addr,
            child: Some(child),
            stderr,
            log: Vec::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match me.stderr.recv_timeout(left) {
                Ok(l) => {
                    let serving = l.contains("serving http://");
                    me.log.push(l);
                    if serving {
                        break;
                    }
                }
                Err(_) => {
                    panic!("portwatch serve did not start: {}", me.log.join("\n"))
                }
            }
        }
        // The first refresh follows at once; wait for it.
        let deadline = Instant::now() + Duration::from_secs(10);
        while get(addr, "/healthz").0 != 200 {
            assert!(Instant::now() < deadline, "/healthz never became 200");
            thread::sleep(Duration::from_millis(50));
        }
        me
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// `/metrics` in the Prometheus text format.
    pub fn metrics(&self) -> String {
        let (status, body) = get(self.addr, "/metrics");
        assert_eq!(status, 200, "/metrics: {body}");
        body
    }

    /// Its resident memory (VmRSS), KiB.
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .expect("read the agent's /proc status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .expect("VmRSS")
    }

    /// CPU time it used so far (user + system), seconds.
    pub fn cpu_s(&self) -> f64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid()))
            .expect("read the agent's /proc stat");
        // Fields after the command name (which may hold spaces) in parentheses.
        let rest = &stat[stat.rfind(')').expect("comm") + 2..];
        let f: Vec<&str> = rest.split(' ').collect();
        // utime and stime are fields 14 and 15 of the whole line: 12 and 13 here.
        let ticks: u64 = f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap();
        // SAFETY: sysconf has no preconditions.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
        ticks as f64 / hz
    }

    /// SIGTERM; returns how it exited, how long that took, and everything it logged.
    pub fn terminate(mut self) -> (ExitStatus, Duration, Vec<String>) {
        let mut child = self.child.take().unwrap();
        let t = Instant::now();
        // SAFETY: a signal to the child we started and have not reaped yet.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let deadline = t + Duration::from_secs(10);
        let status = loop {
            if let Some(s) = child.try_wait().expect("wait for portwatch serve") {
                break s;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("portwatch serve ignored SIGTERM for 10 s");
            }
            thread::sleep(Duration::from_millis(20));
        };
        let took = t.elapsed();
        // The stderr thread ends when the pipe closes.
        while let Ok(l) = self.stderr.recv_timeout(Duration::from_secs(2)) {
            self.log.push(l);
        }
        (status, took, std::mem::take(&mut self.log))
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A plain HTTP/1.1 GET (`Connection: close`): the status and the body.
pub fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let timeout = Duration::from_secs(10);
    let mut s = TcpStream::connect_timeout(&addr, timeout)
        .unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
    s.set_read_timeout(Some(timeout)).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .expect("send the request");
    let mut raw = String::new();
    s.read_to_string(&mut raw)
        .unwrap_or_else(|e| panic!("read the response to {path}: {e}"));
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {head}"));
    (status, body.to_string())
}

/// The value of `name{labels…}` in the text format, where `labels` are `k="v"` pairs that
/// must all be among the series' labels.
pub fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let (n, rest) = series.split_once('{').unwrap_or((series, "}"));
            (n == name).then_some((rest.trim_end_matches('}'), value))
        })
        .find(|(ls, _)| {
            labels
                .iter()
                .all(|(k, v)| ls.split(',').any(|kv| kv == format!("{k}=\"{v}\"")))
        })
        .and_then(|(_, v)| v.parse().ok())
}

/// How many local ports of `range` `ss` shows toward `dst` in `ns`: the pool's ports in use.
pub fn ss_in_use(ns: &Netns, dst: SocketAddr, range: (u16, u16)) -> usize {
    ss::parse(&ns.exec(&["ss", "-tanH"]))
        .iter()
        .filter(|(_, local, peer)| *peer == dst && (range.0..=range.1).contains(&local.port()))
        .map(|(_, local, _)| local.port())
        .collect::<std::collections::HashSet<u16>>()
        .len()
}

/// Debian's `prometheus` server on a loopback port, with a temporary data directory, scraping
/// one target every second and evaluating `rules` every second. Killed on drop.
pub struct Prometheus {
    pub addr: SocketAddr,
    dir: PathBuf,
    child: Option<Child>,
}

impl Prometheus {
    pub fn start(target: SocketAddr, rules: &str) -> Prometheus {
        let dir = std::env::temp_dir().join(format!("pw-prometheus-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("data")).expect("make the Prometheus directory");
        std::fs::write(dir.join("rules.yaml"), rules).expect("write the rules");
        let config = format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
             rule_files:\n  - {rules}\n\
             scrape_configs:\n  - job_name: portwatch\n    static_configs:\n      - targets: ['{target}']\n",
            rules = dir.join("rules.yaml").display()
        );
        std::fs::write(dir.join("prometheus.yml"), config).expect("write the config");
        let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let log = std::fs::File::create(dir.join("prometheus.log")).expect("create the log");
        let child = Command::new("prometheus")
            .arg(format!(
                "--config.file={}",
                dir.join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn prometheus (Debian package `prometheus`, installed by .ci/run)");
        let me = Prometheus {
            addr,
            dir,
            child: Some(child),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if TcpStream::connect(addr).is_ok() && get(addr, "/-/ready").0 == 200 {
                return me;
            }
            assert!(
                Instant::now() < deadline,
                "prometheus not ready after 60 s: {}",
                me.log()
            );
            thread::sleep(Duration::from_millis(200));
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("prometheus.log")).unwrap_or_default()
    }

    /// `GET /api/v1/PATH?query=Q` (or without a query): the `data` of a successful answer.
    pub fn api(&self, path: &str, query: Option<&str>) -> Value {
        let url = match query {
            Some(q) => format!("/api/v1/{path}?query={}", url_encode(q)),
            None => format!("/api/v1/{path}"),
        };
        let (status, body) = get(self.addr, &url);
        assert_eq!(status, 200, "{url}: {body}");
        let v: Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{url}: {e}"));
        assert_eq!(v["status"], "success", "{url}: {v}");
        v["data"].clone()
    }

    /// An instant query's single value, if it has exactly one series.
    pub fn value(&self, q: &str) -> Option<f64> {
        let d = self.api("query", Some(q));
        let r = d["result"].as_array()?;
        if r.len() != 1 {
            return None;
        }
        r[0]["value"][1].as_str()?.parse().ok()
    }

    /// The alerts in state `firing` named `name`.
    pub fn firing(&self, name: &str) -> Vec<Value> {
        let d = self.api("alerts", None);
        d["alerts"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter(|x| x["labels"]["alertname"] == name && x["state"] == "firing")
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
