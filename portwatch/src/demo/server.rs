//! The demo's server: listens on the demo namespace's loopback and, for each connection,
//! waits for the client's FIN before closing, so that the client always closes first and
//! keeps its port in TIME_WAIT. Its threads are named [`SERVER_COMM`](super::SERVER_COMM),
//! the command name findings show for it.

use std::{
    io::{self, Read},
    net::{SocketAddr, TcpListener, TcpStream},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    thread,
    time::Duration,
};

use crate::netns::Netns;

/// Pause after an accept() error other than the stop (e.g. out of file descriptors).
const RETRY: Duration = Duration::from_millis(1);

/// The listening server; [`Server::stop`] (or dropping it) ends its threads.
///
/// The acceptors block in `accept()`, so a connection is taken the moment it is made and its
/// close follows the client's FIN at once, as a real server's would (a server that polls
/// would close a few milliseconds late, and the client's ports would sit in the FIN_WAIT2
/// substate meanwhile). Stopping shuts the listener down, which wakes every blocked
/// `accept()` with an error.
pub struct Server {
    pub addr: SocketAddr,
    listener: Arc<TcpListener>,
    stop: Arc<AtomicBool>,
    threads: Vec<thread::JoinHandle<()>>,
}

impl Server {
    /// Listens on `addr` inside `ns` and serves with `acceptors` threads named `comm`.
    pub fn start(ns: &Netns, addr: SocketAddr, acceptors: usize, comm: &str) -> io::Result<Server> {
        let listener = ns.run(|| -> io::Result<TcpListener> {
            let s = socket2::Socket::new(
                socket2::Domain::for_address(addr),
                socket2::Type::STREAM,
                None,
            )?;
            s.set_reuse_address(true)?;
            s.bind(&addr.into())?;
            s.listen(1024)?;
            Ok(s.into())
        })??;
        let addr = listener.local_addr()?;
        let listener = Arc::new(listener);
        let stop = Arc::new(AtomicBool::new(false));
        let threads = (0..acceptors.max(1))
            .map(|_| {
                let (listener, stop) = (listener.clone(), stop.clone());
                thread::Builder::new()
                    .name(comm.into())
                    .spawn(move || serve(&listener, &stop))
            })
            .collect::<io::Result<_>>()?;
        Ok(Server {
            addr,
            listener,
            stop,
            threads,
        })
    }

    /// Stops accepting and waits for the threads. Idempotent; also done on drop.
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = socket2::SockRef::from(&*self.listener).shutdown(std::net::Shutdown::Read);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

fn serve(listener: &TcpListener, stop: &AtomicBool) {
    while !stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((s, _)) => close_after_peer(s),
            // The stop (the listener was shut down), or a transient error.
            Err(_) => thread::sleep(RETRY),
        }
    }
}

/// Reads until the peer's FIN (or an error), then closes: the peer closed first.
fn close_after_peer(mut s: TcpStream) {
    let mut buf = [0u8; 64];
    while matches!(s.read(&mut buf), Ok(n) if n > 0) {}
}
