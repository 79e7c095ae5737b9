//! Throwaway network namespaces for the demo, the benchmarks and the tests: anonymous (made
//! with `unshare(CLONE_NEWNET)` on a thread, held by a file descriptor), so the kernel removes
//! them when portwatch exits, however it exits. Network namespaces are per thread: work runs
//! on threads that have entered the namespace.

use std::{
    fs::File,
    io,
    os::fd::{AsRawFd, FromRawFd},
    thread,
};

use anyhow::Context as _;

/// A network namespace held open by this process.
pub struct Netns {
    file: File,
    /// Its inode number: what events carry in `netns`.
    pub inode: u32,
}

impl Netns {
    /// Creates a fresh namespace with loopback up.
    pub fn new() -> anyhow::Result<Netns> {
        let file = thread::spawn(|| -> io::Result<File> {
            // SAFETY: unshare affects only this thread, which exits right after.
            if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
                return Err(io::Error::last_os_error());
            }
            loopback_up()?;
            File::open("/proc/thread-self/ns/net")
        })
        .join()
        .expect("netns thread panicked")
        .context("create a network namespace (unshare CLONE_NEWNET needs CAP_SYS_ADMIN)")?;
        use std::os::unix::fs::MetadataExt;
        let inode = file.metadata()?.ino() as u32;
        Ok(Netns { file, inode })
    }

    /// Moves the calling thread into this namespace.
    pub fn enter(&self) -> io::Result<()> {
        // SAFETY: a valid namespace fd; CLONE_NEWNET setns affects only the calling thread.
        if unsafe { libc::setns(self.file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// A duplicate handle, for another thread.
    pub fn try_clone(&self) -> io::Result<Netns> {
        Ok(Netns {
            file: self.file.try_clone()?,
            inode: self.inode,
        })
    }

    /// Runs `f` on a thread inside this namespace.
    pub fn spawn<R: Send + 'static>(
        &self,
        f: impl FnOnce() -> R + Send + 'static,
    ) -> io::Result<thread::JoinHandle<R>> {
        let ns = self.try_clone()?;
        Ok(thread::spawn(move || {
            ns.enter().expect("setns into our own namespace");
            f()
        }))
    }

    /// Runs `f` inside this namespace and waits for it.
    pub fn run<R: Send + 'static>(&self, f: impl FnOnce() -> R + Send + 'static) -> io::Result<R> {
        Ok(self.spawn(f)?.join().expect("thread in namespace panicked"))
    }

    /// Writes a sysctl of this namespace, e.g. `("net/ipv4/ip_local_port_range", "40000 40009")`.
    pub fn sysctl(&self, key: &str, value: &str) -> anyhow::Result<()> {
        let path = format!("/proc/sys/{key}");
        let value = value.to_string();
        let p = path.clone();
        // /proc/sys/net follows the network namespace of the task that opens it.
        self.run(move || std::fs::write(&p, value))?
            .with_context(|| format!("write {path} in netns {}", self.inode))
    }
}

/// Brings `lo` up in the calling thread's namespace (SIOCSIFFLAGS).
fn loopback_up() -> io::Result<()> {
    // SAFETY: plain socket/ioctl calls on a zeroed ifreq naming "lo"; the fd is closed by File.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let _close = File::from_raw_fd(fd);
        let mut req: libc::ifreq = std::mem::zeroed();
        for (i, b) in b"lo".iter().enumerate() {
            req.ifr_name[i] = *b as libc::c_char;
        }
        if libc::ioctl(fd, libc::SIOCGIFFLAGS, &mut req) != 0 {
            return Err(io::Error::last_os_error());
        }
        req.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
        if libc::ioctl(fd, libc::SIOCSIFFLAGS, &req) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}
