//! Ring-buffer bytes → typed [`Event`]s. The only place where kernel bytes are interpreted:
//! lengths are checked first, records are read unaligned (they are plain integers and byte
//! arrays, valid for any bit pattern), and every kernel integer that stands for an enum goes
//! through `TryFrom`, so an unknown value is an error, never a wrong variant.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use portwatch_common::{
    AF_INET, AF_INET6, CallRecord, Header, StateRecord, TimeWaitRecord, call, flag, kind, tw_op,
};

use crate::event::{
    CallKind, Comm, Errno, Event, EventKind, SockCall, StateChange, Task, TcpState, TimeWait, TwOp,
};

/// `connect()`'s return on a non-blocking socket whose handshake is under way.
const EINPROGRESS: i32 = libc::EINPROGRESS;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("record of {len} bytes is shorter than {need} bytes for kind {kind}")]
    TooShort { kind: u8, len: usize, need: usize },
    #[error("unknown record kind {0}")]
    UnknownKind(u8),
    #[error("unknown TCP state {0}")]
    BadState(u8),
    #[error("unknown address family {0}")]
    BadFamily(u16),
    #[error("unknown syscall kind {0}")]
    BadCall(u8),
    #[error("unknown timewait operation {0}")]
    BadTwOp(u8),
}

/// Reads a `T` from the start of `bytes` if it is long enough.
fn read<T: aya::Pod>(bytes: &[u8], kind: u8) -> Result<T, DecodeError> {
    let need = size_of::<T>();
    if bytes.len() < need {
        return Err(DecodeError::TooShort {
            kind,
            len: bytes.len(),
            need,
        });
    }
    // SAFETY: the length is checked above; T is Pod (repr(C) integers and byte arrays), so
    // every bit pattern is a valid T; read_unaligned has no alignment requirement.
    Ok(unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast::<T>()) })
}

fn state(v: u8) -> Result<TcpState, DecodeError> {
    TcpState::try_from(v).map_err(DecodeError::BadState)
}

fn ip(family: u16, raw: [u8; 16]) -> Result<IpAddr, DecodeError> {
    match family {
        AF_INET => Ok(IpAddr::V4(Ipv4Addr::new(raw[0], raw[1], raw[2], raw[3]))),
        AF_INET6 => Ok(IpAddr::V6(Ipv6Addr::from(raw))),
        other => Err(DecodeError::BadFamily(other)),
    }
}

fn sockaddr(family: u16, raw: [u8; 16], port: u16) -> Result<SocketAddr, DecodeError> {
    Ok(SocketAddr::new(ip(family, raw)?, port))
}

fn task(h: &Header) -> Task {
    Task {
        cgroup: h.cgroup,
        pid: h.tgid,
        tid: h.pid,
        ppid: h.ppid,
        comm: Comm(h.comm),
    }
}

/// Decodes one ring-buffer record.
pub fn decode(bytes: &[u8]) -> Result<Event, DecodeError> {
    decode_flagged(bytes).map(|(event, _)| event)
}

/// Decodes one ring-buffer record, and tells whether a rescuer program wrote it
/// (`flag::RESCUED`).
pub fn decode_flagged(bytes: &[u8]) -> Result<(Event, bool), DecodeError> {
    let hdr: Header = read(bytes, 0)?;
    let kind = match hdr.kind {
        kind::STATE => {
            let r: StateRecord = read(bytes, hdr.kind)?;
            EventKind::State(StateChange {
                sk: r.skaddr,
                local: sockaddr(r.family, r.saddr, r.sport)?,
                remote: sockaddr(r.family, r.daddr, r.dport)?,
                old: state(r.oldstate)?,
                new: state(r.newstate)?,
            })
        }
        kind::CALL => {
            let r: CallRecord = read(bytes, hdr.kind)?;
            let call = match r.call {
                call::CONNECT => CallKind::Connect,
                call::BIND => CallKind::Bind,
                other => return Err(DecodeError::BadCall(other)),
            };
            EventKind::Call(SockCall {
                call,
                sk: (r.sk != 0).then_some(r.sk),
                fd: r.fd,
                addr: sockaddr(r.family, r.addr, r.port)?,
                // A non-blocking connect in progress is not a failure: it came for its port.
                error: (r.ret < 0 && !(call == CallKind::Connect && r.ret == -EINPROGRESS))
                    .then_some(Errno(-r.ret)),
                bound_port: (r.bound_port != 0).then_some(r.bound_port),
            })
        }
        kind::TIMEWAIT => {
            let r: TimeWaitRecord = read(bytes, hdr.kind)?;
            let op = match r.op {
                tw_op::START => TwOp::Start,
                tw_op::CANCEL => TwOp::Cancel,
                tw_op::EXPIRE => TwOp::Expire,
                other => return Err(DecodeError::BadTwOp(other)),
            };
            EventKind::TimeWait(TimeWait {
                tw: r.tw,
                local: sockaddr(r.family, r.saddr, r.sport)?,
                remote: sockaddr(r.family, r.daddr, r.dport)?,
                op,
                substate: state(r.substate)?,
                remaining_jiffies: r.remaining_jiffies,
            })
        }
        other => return Err(DecodeError::UnknownKind(other)),
    };
    let event = Event {
        ts_ns: hdr.ts_ns,
        netns: hdr.netns,
        task: task(&hdr),
        kind,
    };
    Ok((event, hdr.flags & flag::RESCUED != 0))
}

/// The bytes the kernel would have written for `event`: the inverse of [`decode`], for tests
/// and for tools that feed the collector's consumers synthetic records.
pub fn encode(event: &Event) -> Vec<u8> {
    fn raw(addr: &SocketAddr) -> (u16, [u8; 16]) {
        match addr.ip() {
            IpAddr::V4(a) => {
                let mut r = [0u8; 16];
                r[..4].copy_from_slice(&a.octets());
                (AF_INET, r)
            }
            IpAddr::V6(a) => (AF_INET6, a.octets()),
        }
    }
    fn bytes_of<T: aya::Pod>(v: &T) -> Vec<u8> {
        // SAFETY: T is Pod: no padding bytes, every byte initialised.
        unsafe { std::slice::from_raw_parts((v as *const T).cast::<u8>(), size_of::<T>()) }.to_vec()
    }
    let hdr = |k: u8| Header {
        ts_ns: event.ts_ns,
        netns: event.netns,
        pid: event.task.tid,
        tgid: event.task.pid,
        ppid: event.task.ppid,
        kind: k,
        flags: 0,
        _pad: [0; 6],
        comm: event.task.comm.0,
        cgroup: event.task.cgroup,
    };
    match &event.kind {
        EventKind::State(s) => {
            let (family, saddr) = raw(&s.local);
            let (_, daddr) = raw(&s.remote);
            bytes_of(&StateRecord {
                hdr: hdr(kind::STATE),
                skaddr: s.sk,
                saddr,
                daddr,
                sport: s.local.port(),
                dport: s.remote.port(),
                family,
                oldstate: s.old as u8,
                newstate: s.new as u8,
            })
        }
        EventKind::Call(c) => {
            let (family, addr) = raw(&c.addr);
            bytes_of(&CallRecord {
                hdr: hdr(kind::CALL),
                sk: c.sk.unwrap_or(0),
                addr,
                ret: match (c.call, c.error) {
                    (_, Some(e)) => -e.0,
                    (CallKind::Connect, None) => -EINPROGRESS,
                    (CallKind::Bind, None) => 0,
                },
                fd: c.fd,
                port: c.addr.port(),
                family,
                call: match c.call {
                    CallKind::Connect => call::CONNECT,
                    CallKind::Bind => call::BIND,
                },
                _pad: 0,
                bound_port: c.bound_port.unwrap_or(0),
            })
        }
        EventKind::TimeWait(t) => {
            let (family, saddr) = raw(&t.local);
            let (_, daddr) = raw(&t.remote);
            bytes_of(&TimeWaitRecord {
                hdr: hdr(kind::TIMEWAIT),
                tw: t.tw,
                saddr,
                daddr,
                sport: t.local.port(),
                dport: t.remote.port(),
                family,
                op: match t.op {
                    TwOp::Start => tw_op::START,
                    TwOp::Cancel => tw_op::CANCEL,
                    TwOp::Expire => tw_op::EXPIRE,
                },
                substate: t.substate as u8,
                remaining_jiffies: t.remaining_jiffies,
                _pad: 0,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task() -> Task {
        Task {
            cgroup: 0x2f51,
            pid: 4242,
            tid: 4243,
            ppid: 1,
            comm: Comm::new("curl"),
        }
    }

    fn events() -> Vec<Event> {
        let v4 = |s: &str| s.parse::<SocketAddr>().unwrap();
        vec![
            Event {
                ts_ns: 1,
                netns: 4026531840,
                task: task(),
                kind: EventKind::State(StateChange {
                    sk: 0xffff_8880_0000_1000,
                    local: v4("127.0.0.1:40000"),
                    remote: v4("127.0.0.1:8080"),
                    old: TcpState::Close,
                    new: TcpState::SynSent,
                }),
            },
            Event {
                ts_ns: 2,
                netns: 7,
                task: task(),
                kind: EventKind::State(StateChange {
                    sk: 1,
                    local: v4("[::1]:40001"),
                    remote: v4("[::1]:443"),
                    old: TcpState::Established,
                    new: TcpState::FinWait1,
                }),
            },
            Event {
                ts_ns: 3,
                netns: 7,
                task: task(),
                kind: EventKind::Call(SockCall {
                    call: CallKind::Connect,
                    sk: Some(2),
                    fd: 5,
                    addr: v4("10.0.0.1:80"),
                    error: Some(Errno(libc::EADDRNOTAVAIL)),
                    bound_port: None,
                }),
            },
            Event {
                ts_ns: 3,
                netns: 7,
                task: task(),
                kind: EventKind::Call(SockCall {
                    call: CallKind::Connect,
                    sk: Some(2),
                    fd: 5,
                    addr: v4("[::1]:80"),
                    error: None,
                    bound_port: Some(40002),
                }),
            },
            Event {
                ts_ns: 4,
                netns: 7,
                task: task(),
                kind: EventKind::Call(SockCall {
                    call: CallKind::Bind,
                    sk: None,
                    fd: 6,
                    addr: v4("[::]:0"),
                    error: None,
                    bound_port: Some(40001),
                }),
            },
            Event {
                ts_ns: 5,
                netns: 7,
                task: task(),
                kind: EventKind::TimeWait(TimeWait {
                    tw: 3,
                    local: v4("127.0.0.1:40000"),
                    remote: v4("127.0.0.1:8080"),
                    op: TwOp::Cancel,
                    substate: TcpState::TimeWait,
                    remaining_jiffies: -2,
                }),
            },
        ]
    }

    #[test]
    fn every_kind_round_trips() {
        for e in events() {
            assert_eq!(decode(&encode(&e)), Ok(e), "{e}");
        }
    }

    #[test]
    fn the_rescued_flag_is_read_from_the_header() {
        for e in events() {
            let mut bytes = encode(&e);
            assert_eq!(decode_flagged(&bytes), Ok((e, false)), "{e}");
            bytes[std::mem::offset_of!(Header, flags)] = flag::RESCUED;
            assert_eq!(decode_flagged(&bytes), Ok((e, true)), "{e}");
        }
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        for e in events() {
            let bytes = encode(&e);
            for len in 0..bytes.len() {
                assert!(
                    matches!(decode(&bytes[..len]), Err(DecodeError::TooShort { .. })),
                    "len {len} of {e}"
                );
            }
        }
    }

    #[test]
    fn unknown_integers_are_rejected() {
        let mut bytes = encode(&events()[0]);
        let kind_at = std::mem::offset_of!(Header, kind);
        bytes[kind_at] = 99;
        assert_eq!(decode(&bytes), Err(DecodeError::UnknownKind(99)));

        let mut bytes = encode(&events()[0]);
        bytes[std::mem::offset_of!(StateRecord, newstate)] = 0;
        assert_eq!(decode(&bytes), Err(DecodeError::BadState(0)));

        let mut bytes = encode(&events()[0]);
        bytes[std::mem::offset_of!(StateRecord, family)] = 1; // AF_UNIX
        assert_eq!(decode(&bytes), Err(DecodeError::BadFamily(1)));

        let mut bytes = encode(&events()[2]);
        bytes[std::mem::offset_of!(CallRecord, call)] = 7;
        assert_eq!(decode(&bytes), Err(DecodeError::BadCall(7)));

        let mut bytes = encode(&events()[5]);
        bytes[std::mem::offset_of!(TimeWaitRecord, op)] = 0;
        assert_eq!(decode(&bytes), Err(DecodeError::BadTwOp(0)));
    }

    #[test]
    fn tcp_states_match_the_kernel_numbers() {
        assert_eq!(TcpState::try_from(1), Ok(TcpState::Established));
        assert_eq!(TcpState::try_from(6), Ok(TcpState::TimeWait));
        assert_eq!(TcpState::try_from(10), Ok(TcpState::Listen));
        assert_eq!(TcpState::try_from(13), Ok(TcpState::BoundInactive));
        assert_eq!(TcpState::try_from(0), Err(0));
        assert_eq!(TcpState::try_from(14), Err(14));
        for s in TcpState::ALL {
            assert_eq!(TcpState::try_from(s as u8), Ok(s));
            assert_eq!(TcpState::from_name(s.name()), Some(s));
        }
    }
}
