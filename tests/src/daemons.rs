//! The proxies of the incident tests, as operators run them: Debian's nginx and HAProxy in a
//! test's namespace with a configuration written for the test, their log in a file the test
//! waits on, stopped (SIGTERM, then SIGKILL) when the guard drops — also when the test panics.

use std::{
    net::SocketAddr,
    path::PathBuf,
    process::{Child, Stdio},
    time::{Duration, Instant},
};

use crate::{Netns, incident::in_netns, require_root};

/// How long a daemon may take to start listening.
const START: Duration = Duration::from_secs(20);

/// A daemon started by a test: its process, its directory (configuration, log, pid file),
/// and the file it logs to.
struct Daemon {
    what: &'static str,
    child: Child,
    pid: u32,
    dir: PathBuf,
    log: PathBuf,
}

impl Daemon {
    /// Writes `conf(dir)` as `WHAT.conf` into a fresh directory and spawns `bin` in `ns`
    /// with the arguments `args(conf path, log path)`. A daemon that logs to stderr has its
    /// stderr in the log file; one that writes the log file itself keeps the test's stderr.
    fn spawn(
        ns: &Netns,
        what: &'static str,
        bin: &str,
        conf: impl FnOnce(&str) -> String,
        args: impl FnOnce(&str, &str) -> Vec<String>,
        logs_to_stderr: bool,
    ) -> Daemon {
        require_root();
        let dir =
            std::env::temp_dir().join(format!("pw-{what}-{}-{}", ns.name, std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let d = dir.to_str().unwrap().to_string();
        let conf_path = dir.join(format!("{what}.conf"));
        std::fs::write(&conf_path, conf(&d)).unwrap();
        let log = dir.join(format!("{what}.log"));
        let stderr = if logs_to_stderr {
            Stdio::from(std::fs::File::create(&log).unwrap())
        } else {
            Stdio::inherit()
        };
        let argv = args(conf_path.to_str().unwrap(), log.to_str().unwrap());
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        let child = in_netns(ns, bin, &argv)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {bin} (apt-get install {what}): {e}"));
        let pid = child.id();
        Daemon {
            what,
            child,
            pid,
            dir,
            log,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until `ready(self)` says yes and `listen` accepts a connection from inside
    /// `ns`; panics with the log if the daemon exits or takes longer than [`START`].
    fn wait_ready<T>(
        &mut self,
        ns: &Netns,
        listen: SocketAddr,
        ready: impl Fn(&Daemon) -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + START;
        loop {
            let up = ns.run(|| std::net::TcpStream::connect(listen).is_ok());
            if let (Some(t), true) = (ready(self), up) {
                return t;
            }
            if let Ok(Some(st)) = self.child.try_wait() {
                panic!("{} exited ({st}): {}", self.what, self.log());
            }
            assert!(
                Instant::now() < deadline,
                "{} did not start: {}",
                self.what,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until the log contains `what`; returns CLOCK_MONOTONIC ns when it was seen.
    fn wait_log(&self, what: &str, timeout: Duration) -> u64 {
        let deadline = Instant::now() + timeout;
        loop {
            if self.log().contains(what) {
                return crate::live::mono_ns();
            }
            assert!(
                Instant::now() < deadline,
                "{} never logged {what:?}: {}",
                self.what,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        // SAFETY: a signal to the process we started and have not reaped yet.
        unsafe { libc::kill(self.pid as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                let _ = std::fs::remove_dir_all(&self.dir);
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Debian's nginx (`/usr/sbin/nginx`, one worker) in a namespace, proxying `listen` to
/// `upstream` with the configuration people start from: a bare `proxy_pass`, no upstream
/// keep-alive.
pub struct Nginx {
    daemon: Daemon,
    /// The worker's pid: the process that connects to the upstream.
    pub worker: u32,
    pub master_pid: u32,
}

impl Nginx {
    pub fn start(ns: &Netns, listen: &str, upstream: &str) -> Nginx {
        let conf = |d: &str| {
            format!(
                "worker_processes 1;\ndaemon off;\npid {d}/nginx.pid;\n\
                 error_log {d}/nginx.log;\nevents {{ worker_connections 4096; }}\n\
                 http {{\n  access_log off;\n  client_body_temp_path {d}/body;\n  \
                 proxy_temp_path {d}/proxy;\n  server {{\n    listen {listen};\n    \
                 location / {{ proxy_pass http://{upstream}; }}\n  }}\n}}\n"
            )
        };
        // `-e` sends the messages of start-up to the same log as error_log.
        let args = |conf: &str, log: &str| vec!["-c".into(), conf.into(), "-e".into(), log.into()];
        let mut daemon = Daemon::spawn(ns, "nginx", "/usr/sbin/nginx", conf, args, false);
        let master_pid = daemon.pid;
        let worker = daemon.wait_ready(ns, listen.parse().unwrap(), |d| {
            let children =
                std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", d.pid)).ok()?;
            children.split_whitespace().next()?.parse().ok()
        });
        Nginx {
            daemon,
            worker,
            master_pid,
        }
    }

    pub fn error_log(&self) -> String {
        self.daemon.log()
    }

    /// Waits until the error log contains `what`; returns CLOCK_MONOTONIC ns when it was seen.
    pub fn wait_log(&self, what: &str, timeout: Duration) -> u64 {
        self.daemon.wait_log(what, timeout)
    }
}

/// Debian's HAProxy (`/usr/sbin/haproxy -db`: one process, in the foreground, logging to
/// stderr) in a namespace, relaying TCP from `listen` to one `server` at `upstream`, with the
/// defaults people start from (no `source` ranges, no `maxconn` on the server line).
pub struct Haproxy {
    daemon: Daemon,
    /// The process that connects to the upstream.
    pub pid: u32,
}

impl Haproxy {
    pub fn start(ns: &Netns, listen: &str, upstream: &str) -> Haproxy {
        let conf = |_: &str| {
            format!(
                "global\n    maxconn 2000\n    log stderr format short local0 info\n\
                 defaults\n    mode tcp\n    log global\n    timeout connect 5s\n    \
                 timeout client 60s\n    timeout server 60s\n    retries 3\n\
                 frontend fe\n    bind {listen}\n    default_backend be\n\
                 backend be\n    server up {upstream}\n"
            )
        };
        let args = |conf: &str, _: &str| vec!["-db".into(), "-f".into(), conf.into()];
        let mut daemon = Daemon::spawn(ns, "haproxy", "/usr/sbin/haproxy", conf, args, true);
        let pid = daemon.pid;
        // The readiness probe is relayed like any connection: one upstream connection more.
        daemon.wait_ready(ns, listen.parse().unwrap(), |_| Some(()));
        Haproxy { daemon, pid }
    }

    pub fn log(&self) -> String {
        self.daemon.log()
    }

    /// Waits until HAProxy logged `what`; returns CLOCK_MONOTONIC ns when it was seen.
    pub fn wait_log(&self, what: &str, timeout: Duration) -> u64 {
        self.daemon.wait_log(what, timeout)
    }
}
