//! A fresh, named network namespace per test, deleted when the guard drops (also when the
//! test panics), and a way to run code inside it.

use std::{
    os::unix::fs::MetadataExt,
    path::Path,
    process::Command,
    sync::atomic::{AtomicU32, Ordering},
};

use portwatch::netns::Netns;

/// Panics unless we are root: privileged tests fail loudly, never skip.
pub struct NetnsGuard {
    pub name: String,
    /// Its inode: the netns id events and snapshots carry.
    pub inode: u32,
}

impl NetnsGuard {
    pub fn new(prefix: &str) -> NetnsGuard {
        crate::require_root();
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "{prefix}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        crate::sh(Command::new("ip").args(["netns", "add", &name]));
        // From here on, Drop deletes it.
        let mut guard = NetnsGuard { name, inode: 0 };
        crate::sh(Command::new("ip").args(["-n", &guard.name, "link", "set", "lo", "up"]));
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
        crate::sh(
            Command::new("ip")
                .args(["netns", "exec", &self.name])
                .args(args),
        )
    }

    /// Writes a sysctl inside the namespace, from a process of its own (so the test does not
    /// depend on the behaviour it checks): `key` as in `net/ipv4/ip_local_port_range`.
    pub fn set_sysctl(&self, key: &str, value: &str) {
        self.exec(&["sh", "-c", &format!("echo '{value}' > /proc/sys/{key}")]);
    }

    /// Like [`NetnsGuard::set_sysctl`], with the key dotted or slashed
    /// (`net.ipv4.tcp_tw_reuse`), and checks that it reads back.
    pub fn sysctl(&self, key: &str, value: &str) {
        let key = key.replace('.', "/");
        self.set_sysctl(&key, value);
        let norm = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
        let back = self.cat(&format!("/proc/sys/{key}"));
        assert_eq!(norm(&back), norm(value), "sysctl {key} in {}", self.name);
    }

    /// Reads a file from a process inside the namespace.
    pub fn cat(&self, path: &str) -> String {
        self.exec(&["cat", path])
    }

    /// A handle on the namespace (`portwatch::netns`, the one place that enters one).
    pub fn handle(&self) -> Netns {
        Netns::open(Path::new(&self.path())).expect("open the namespace")
    }

    /// Runs `f` on a new thread that has entered the namespace. Sockets created there stay
    /// in it for their whole life, whatever thread uses them later.
    pub fn run<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        self.handle().run(f).expect("enter the namespace")
    }

    /// Like [`NetnsGuard::run`] but does not wait: the thread lives on in the namespace.
    pub fn spawn<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> std::thread::JoinHandle<T> {
        let ns = self.handle();
        std::thread::spawn(move || {
            ns.enter().expect("enter the namespace");
            f()
        })
    }

    /// Links this namespace to `peer` with a veth pair: `dev` here with `addr`, `peer_dev`
    /// there with `peer_addr` (both `A.B.C.D/len`), both up. The pair goes when either
    /// namespace is deleted.
    pub fn link_to(
        &self,
        peer: &NetnsGuard,
        dev: &str,
        addr: &str,
        peer_dev: &str,
        peer_addr: &str,
    ) {
        let ip = |args: &[&str]| crate::sh(Command::new("ip").args(args));
        ip(&[
            "-n", &self.name, "link", "add", dev, "type", "veth", "peer", "name", peer_dev,
            "netns", &peer.name,
        ]);
        for (n, d, a) in [(self, dev, addr), (peer, peer_dev, peer_addr)] {
            ip(&["-n", &n.name, "addr", "add", a, "dev", d]);
            ip(&["-n", &n.name, "link", "set", d, "up"]);
        }
    }

    /// Same as [`NetnsGuard::run`].
    pub fn enter<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        self.run(f)
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
