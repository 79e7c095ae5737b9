//! A fresh, named network namespace per test, deleted when the guard drops (also when the
//! test panics), and a way to run code inside it.

use std::{
    os::{fd::AsRawFd, unix::fs::MetadataExt},
    process::Command,
    sync::atomic::{AtomicU32, Ordering},
};

/// Panics unless we are root: privileged tests fail loudly, never skip.
pub fn require_root() {
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(
        euid, 0,
        "this test creates network namespaces and must run as root (sudo -E cargo xtask test)"
    );
}

/// Runs a command, panics with its output if it fails, returns its stdout.
pub fn run(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run {program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {}: {}\n{}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

/// A network namespace named `PREFIX-PID-N` with loopback up.
pub struct NetnsGuard {
    pub name: String,
    /// Its inode: the netns id events and snapshots carry.
    pub inode: u32,
}

impl NetnsGuard {
    pub fn new(prefix: &str) -> NetnsGuard {
        require_root();
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "{prefix}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        run("ip", &["netns", "add", &name]);
        // From here on, Drop deletes it.
        let mut guard = NetnsGuard { name, inode: 0 };
        run("ip", &["-n", &guard.name, "link", "set", "lo", "up"]);
        guard.inode = std::fs::metadata(guard.path())
            .expect("stat the new namespace")
            .ino() as u32;
        guard
    }

    pub fn path(&self) -> String {
        format!("/run/netns/{}", self.name)
    }

    /// Runs a command inside the namespace (`ip netns exec`); returns its stdout.
    pub fn exec(&self, args: &[&str]) -> String {
        let mut full = vec!["netns", "exec", &self.name];
        full.extend_from_slice(args);
        run("ip", &full)
    }

    /// Writes a sysctl inside the namespace, from a process of its own (so the test does not
    /// depend on the behaviour it checks): `key` as in `net/ipv4/ip_local_port_range`.
    pub fn set_sysctl(&self, key: &str, value: &str) {
        self.exec(&["sh", "-c", &format!("echo '{value}' > /proc/sys/{key}")]);
    }

    /// Reads a file from a process inside the namespace.
    pub fn cat(&self, path: &str) -> String {
        self.exec(&["cat", path])
    }

    /// Runs `f` on a new thread that has entered the namespace. Sockets created there stay
    /// in it for their whole life, whatever thread uses them later.
    pub fn enter<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        let file = std::fs::File::open(self.path()).expect("open the namespace");
        std::thread::scope(|s| {
            s.spawn(|| {
                // SAFETY: a valid namespace fd; only this short-lived thread moves.
                let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
                assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
                f()
            })
            .join()
            .expect("the thread inside the namespace panicked")
        })
    }
}

impl Drop for NetnsGuard {
    fn drop(&mut self) {
        let out = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
        match out {
            Ok(o) if o.status.success() => {}
            Ok(o) => eprintln!(
                "warning: ip netns del {}: {}",
                self.name,
                String::from_utf8_lossy(&o.stderr)
            ),
            Err(e) => eprintln!("warning: ip netns del {}: {e}", self.name),
        }
    }
}
