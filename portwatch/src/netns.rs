//! A handle on one network namespace, and the one place that enters namespaces.
//!
//! A namespace is held by an open file descriptor (`/proc/PID/ns/net`, `/run/netns/NAME`, or
//! one this process created), so it cannot vanish while the handle lives. The network
//! namespace belongs to a *thread*, not a process: [`Netns::run`] and [`Netns::spawn`] do the
//! work on a fresh thread that enters the namespace and ends with the work, so no other thread
//! of the process ever changes namespace. Sockets keep the namespace they were created in for
//! their whole life, whichever thread uses them later.
//!
//! Used by the context worker (`context::netns` finds the namespaces to read), by
//! `portwatch demo` (which creates one), and by the tests and benchmarks.

use std::{
    fs::File,
    io,
    os::{
        fd::{AsFd, AsRawFd, BorrowedFd},
        unix::fs::MetadataExt,
    },
    path::{Path, PathBuf},
    thread,
};

use rustix::thread::{LinkNameSpaceType, UnshareFlags};

/// An open network namespace.
#[derive(Debug)]
pub struct Netns {
    /// Its inode number: the id events and snapshots carry.
    pub inode: u32,
    /// Where it can be opened again: the path it was opened from, or for one this process
    /// created, `/proc/PID/fd/N` of the descriptor that holds it.
    pub path: PathBuf,
    file: File,
}

impl Netns {
    /// Opens the namespace at `path` (`/proc/PID/ns/net`, `/run/netns/NAME`, a namespace
    /// file descriptor under `/proc/PID/fd/`).
    pub fn open(path: &Path) -> io::Result<Netns> {
        let file = File::open(path)?;
        let inode = inode_of(&file.metadata()?)?;
        Ok(Netns {
            inode,
            path: path.to_path_buf(),
            file,
        })
    }

    /// Creates a fresh, anonymous namespace with `lo` up. Nothing names it: the kernel removes
    /// it when the last handle and the last process or socket inside it are gone, however
    /// this process ends. Needs CAP_SYS_ADMIN.
    pub fn create() -> io::Result<Netns> {
        let file = thread::spawn(|| -> io::Result<File> {
            // SAFETY: `unshare_unsafe` is unsafe only for UnshareFlags::FILES (file descriptors
            // that other threads could not use); NEWNET moves only this thread, which ends
            // right after, into a new network namespace.
            unsafe { rustix::thread::unshare_unsafe(UnshareFlags::NEWNET) }.map_err(|e| {
                io::Error::new(
                    io::Error::from(e).kind(),
                    format!("unshare(CLONE_NEWNET), which needs CAP_SYS_ADMIN: {e}"),
                )
            })?;
            loopback_up()?;
            File::open("/proc/thread-self/ns/net")
        })
        .join()
        .map_err(|_| io::Error::other("the thread creating a network namespace panicked"))??;
        let inode = inode_of(&file.metadata()?)?;
        let path = PathBuf::from(format!(
            "/proc/{}/fd/{}",
            std::process::id(),
            file.as_raw_fd()
        ));
        Ok(Netns { inode, path, file })
    }

    /// A second handle on the same namespace (for another thread or process).
    pub fn try_clone(&self) -> io::Result<Netns> {
        Ok(Netns {
            inode: self.inode,
            path: self.path.clone(),
            file: self.file.try_clone()?,
        })
    }

    /// Moves the calling thread into this namespace (`setns`). Only for threads that do
    /// nothing else afterwards (see [`Netns::run`]), or for a process that is still
    /// single-threaded and moves as a whole. Entering the namespace the thread is already in
    /// is a no-op, and so needs no privileges. The error is the system call's alone (callers
    /// say which namespace).
    pub fn enter(&self) -> io::Result<()> {
        if current_inode().ok() == Some(self.inode) {
            return Ok(());
        }
        rustix::thread::move_into_link_name_space(
            self.file.as_fd(),
            Some(LinkNameSpaceType::Network),
        )
        .map_err(io::Error::from)
    }

    /// Runs `f` on a thread inside this namespace and waits for it; a panic in `f` goes on
    /// in the caller.
    pub fn run<R: Send>(&self, f: impl FnOnce() -> R + Send) -> io::Result<R> {
        thread::scope(|s| {
            let worker = s.spawn(|| self.enter().map(|()| f()));
            worker
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })
    }

    /// Runs `f` on a thread inside this namespace without waiting; the thread may outlive
    /// this handle. The error of entering the namespace comes back through the handle.
    pub fn spawn<R: Send + 'static>(
        &self,
        f: impl FnOnce() -> R + Send + 'static,
    ) -> io::Result<thread::JoinHandle<io::Result<R>>> {
        let ns = self.try_clone()?;
        thread::Builder::new().spawn(move || ns.enter().map(|()| f()))
    }

    /// Writes a sysctl of this namespace: `key` as under /proc/sys, dotted or slashed
    /// (`net.ipv4.ip_local_port_range` or `net/ipv4/ip_local_port_range`).
    pub fn sysctl(&self, key: &str, value: &str) -> io::Result<()> {
        let path = format!("/proc/sys/{}", key.replace('.', "/"));
        // /proc/sys/net follows the network namespace of the task that opens it.
        self.run(|| std::fs::write(&path, value))?.map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("write {path} in network namespace {}: {e}", self.inode),
            )
        })
    }
}

impl AsFd for Netns {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }
}

pub(crate) fn inode_of(meta: &std::fs::Metadata) -> io::Result<u32> {
    u32::try_from(meta.ino()).map_err(|_| io::Error::other("netns inode exceeds 32 bits"))
}

/// The network namespace of the calling thread.
pub fn current_inode() -> io::Result<u32> {
    inode_of(&std::fs::metadata("/proc/thread-self/ns/net")?)
}

/// Brings `lo` up in the calling thread's namespace (SIOCGIFFLAGS, then SIOCSIFFLAGS with
/// IFF_UP | IFF_RUNNING).
fn loopback_up() -> io::Result<()> {
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None)?;
    let fd = sock.as_raw_fd();
    // SAFETY: both ioctls read and write the one `ifreq` passed, a zeroed struct naming "lo"
    // that lives across the calls; `fd` is a socket that `sock` keeps open.
    unsafe {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_our_own_namespace_and_runs_there() {
        let ours = current_inode().unwrap();
        let ns = Netns::open(Path::new("/proc/self/ns/net")).unwrap();
        assert_eq!(ns.inode, ours);
        // Entering the namespace we are in needs no privileges.
        assert_eq!(ns.run(|| current_inode().unwrap()).unwrap(), ours);
        let clone = ns.try_clone().unwrap();
        assert_eq!(
            clone
                .spawn(current_inode)
                .unwrap()
                .join()
                .unwrap()
                .unwrap()
                .unwrap(),
            ours
        );
    }

    #[test]
    fn run_borrows_from_the_caller() {
        let ns = Netns::open(Path::new("/proc/self/ns/net")).unwrap();
        let mut seen = Vec::new();
        ns.run(|| seen.push(1)).unwrap();
        assert_eq!(seen, [1]);
    }
}
