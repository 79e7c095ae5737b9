//! Every TCP socket of the calling thread's network namespace, from `NETLINK_SOCK_DIAG`.
//!
//! One dump per family asks for every state but CLOSE, plus the query-only pseudo state
//! `BOUND_INACTIVE` (13). The kernel (6.5+, `inet_diag_dump_icsk`, now `tcp_diag_dump`) walks
//! three tables: listeners; the bind hash, only with that bit, for sockets in CLOSE that have
//! a port (bound, neither listening nor connecting), which it reports *as CLOSE*; and the
//! established hash (TIME_WAIT included), filtered by the requested states. Since CLOSE is
//! not requested, every CLOSE that comes back is a bound-inactive socket. (A socket in the
//! established hash is in CLOSE only for the instant before it is unhashed.) One request
//! instead of two saves a walk of the established hash, which is shared by all namespaces
//! and costs per socket on the host, not per socket of the namespace.
//!
//! `ss -a` of iproute2 ≥ 6.6 asks for bound-inactive sockets the same way; older `ss` never
//! shows them. Only each message's fixed header is decoded; no attributes are requested.

use std::net::{IpAddr, SocketAddr};

use netlink_packet_core::{NLM_F_DUMP, NLM_F_REQUEST, NetlinkHeader, NetlinkMessage, Parseable};
use netlink_packet_sock_diag::{
    SOCK_DIAG_BY_FAMILY, SockDiagMessage,
    constants::{AF_INET, AF_INET6, IPPROTO_TCP},
    inet::{ExtensionFlags, InetRequest, InetResponseHeader, SocketId, StateFlags},
};
use netlink_sys::{Socket, protocols::NETLINK_SOCK_DIAG};

use super::{
    error::ContextError,
    netlink::{self, RECV_BUF, RecvError},
};
use crate::event::TcpState;

/// `TCPF_*` of states 1..=12 but CLOSE (7), and `TCPF_BOUND_INACTIVE` (13).
const REQUESTED_STATES: u32 =
    (((1 << 13) - 1) & !1 & !(1 << TcpState::Close as u32)) | (1 << TcpState::BoundInactive as u32);

/// One socket as the kernel reported it (header fields only).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DiagSocket {
    pub local: SocketAddr,
    pub remote: SocketAddr,
    pub state: TcpState,
    pub inode: u32,
}

/// Messages that were not sockets we understand (counted, never silent).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct DumpStats {
    /// Sockets received.
    pub sockets: u64,
    /// Sockets with a state number `TcpState` does not know (skipped).
    pub unknown_state: u64,
}

/// A `NETLINK_SOCK_DIAG` socket, opened in the calling thread's namespace.
pub struct Dumper {
    sock: Socket,
    netns: u32,
    buf: Vec<u8>,
    seq: u32,
}

impl Dumper {
    /// `netns` only names the namespace in errors: the socket belongs to the caller's.
    pub fn new(netns: u32) -> Result<Dumper, ContextError> {
        let sock = Socket::new(NETLINK_SOCK_DIAG).map_err(|source| ContextError::Netlink {
            netns,
            what: "open",
            cause: source,
        })?;
        sock.connect(&netlink_sys::SocketAddr::new(0, 0))
            .map_err(|source| ContextError::Netlink {
                netns,
                what: "connect",
                cause: source,
            })?;
        Ok(Dumper {
            sock,
            netns,
            buf: vec![0; RECV_BUF],
            seq: 0,
        })
    }

    /// Calls `each` for every TCP socket, IPv4 then IPv6.
    pub fn dump_tcp(
        &mut self,
        mut each: impl FnMut(DiagSocket),
    ) -> Result<DumpStats, ContextError> {
        let mut stats = DumpStats::default();
        for family in [AF_INET, AF_INET6] {
            self.dump(family, REQUESTED_STATES, &mut stats, &mut each)?;
        }
        Ok(stats)
    }

    fn dump(
        &mut self,
        family: u8,
        states: u32,
        stats: &mut DumpStats,
        each: &mut impl FnMut(DiagSocket),
    ) -> Result<(), ContextError> {
        self.seq = self.seq.wrapping_add(1);
        self.send_request(family, states)?;
        let end = netlink::replies(&self.sock, &mut self.buf, self.seq, |t, payload| {
            if t == SOCK_DIAG_BY_FAMILY {
                let h = InetResponseHeader::parse(payload)
                    .map_err(|e| RecvError::Decode(e.to_string()))?;
                stats.sockets += 1;
                match socket_of(&h) {
                    Some(s) => each(s),
                    None => stats.unknown_state += 1,
                }
            }
            Ok(())
        });
        match end {
            Ok(None) => Ok(()),
            Ok(Some(errno)) => Err(self.nl_err("dump", std::io::Error::from_raw_os_error(errno))),
            Err(RecvError::Io(source)) => Err(self.nl_err("recv", source)),
            Err(RecvError::Decode(reason)) => Err(self.decode_err(reason)),
        }
    }

    fn send_request(&mut self, family: u8, states: u32) -> Result<(), ContextError> {
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | NLM_F_DUMP;
        header.sequence_number = self.seq;
        let mut packet = NetlinkMessage::new(
            header,
            SockDiagMessage::InetRequest(InetRequest {
                family,
                protocol: IPPROTO_TCP,
                extensions: ExtensionFlags::empty(),
                // The crate names states up to CLOSING; the kernel knows more.
                states: StateFlags::from_bits_retain(states),
                socket_id: if family == AF_INET {
                    SocketId::new_v4()
                } else {
                    SocketId::new_v6()
                },
            })
            .into(),
        );
        packet.finalize();
        let mut bytes = vec![0; packet.buffer_len()];
        packet.serialize(&mut bytes);
        self.sock
            .send(&bytes, 0)
            .map_err(|source| self.nl_err("send", source))?;
        Ok(())
    }

    fn nl_err(&self, what: &'static str, source: std::io::Error) -> ContextError {
        ContextError::Netlink {
            netns: self.netns,
            what,
            cause: source,
        }
    }

    fn decode_err(&self, reason: String) -> ContextError {
        ContextError::Decode {
            netns: self.netns,
            reason,
        }
    }
}

/// `None` for a state number we do not know. CLOSE means bound-inactive (see above).
fn socket_of(h: &InetResponseHeader) -> Option<DiagSocket> {
    let state = match TcpState::try_from(h.state).ok()? {
        TcpState::Close => TcpState::BoundInactive,
        s => s,
    };
    let id = &h.socket_id;
    Some(DiagSocket {
        local: addr(id.source_address, id.source_port),
        remote: addr(id.destination_address, id.destination_port),
        state,
        inode: h.inode,
    })
}

fn addr(ip: IpAddr, port: u16) -> SocketAddr {
    SocketAddr::new(ip, port)
}

#[cfg(test)]
mod tests {
    use netlink_packet_sock_diag::inet::SocketId;

    use super::*;

    fn header(state: u8) -> InetResponseHeader {
        let mut id = SocketId::new_v6();
        id.source_address = "::1".parse().unwrap();
        id.source_port = 40001;
        InetResponseHeader {
            family: AF_INET6,
            state,
            timer: None,
            socket_id: id,
            recv_queue: 0,
            send_queue: 0,
            uid: 0,
            inode: 99,
        }
    }

    #[test]
    fn bound_inactive_sockets_come_back_as_close() {
        let s = socket_of(&header(7)).unwrap();
        assert_eq!(s.state, TcpState::BoundInactive);
        assert_eq!(s.local, "[::1]:40001".parse().unwrap());
        assert_eq!(s.remote, "[::]:0".parse().unwrap());
        assert_eq!(s.inode, 99);
        assert_eq!(socket_of(&header(6)).unwrap().state, TcpState::TimeWait);
        assert_eq!(socket_of(&header(12)).unwrap().state, TcpState::NewSynRecv);
    }

    #[test]
    fn unknown_states_are_not_guessed() {
        assert_eq!(socket_of(&header(0)), None);
        assert_eq!(socket_of(&header(14)), None);
    }

    #[test]
    fn requests_every_state_but_close_and_bound_inactive() {
        assert_eq!(REQUESTED_STATES, 0b11_1111_0111_1110);
    }
}
