//! A `NETLINK_NETFILTER` socket: one request, its replies walked in place. Shared by the
//! conntrack reader (`ctnetlink`) and the nftables rule reader.
//!
//! Raw messages through `netlink-sys`, attributes walked with `netlink-packet-core`'s
//! `NlasIterator` (no copy): `netlink-packet-netfilter` 0.4 has neither the conntrack
//! statistics messages nor the nftables `masq`/`nat`/xtables `target` expressions, and it
//! allocates several vectors per conntrack entry, which a 100k-entry dump should not pay.
//!
//! Every message is `nlmsghdr` + `nfgenmsg` {family u8, version u8, res_id be16} + attributes.

use netlink_packet_core::{NLM_F_REQUEST, NlasIterator};
use netlink_sys::{Socket, protocols::NETLINK_NETFILTER};

use crate::context::{
    ContextError,
    netlink::{self, RECV_BUF, RecvError},
};

/// ctnetlink.
pub const SUBSYS_CTNETLINK: u8 = 1;
/// nftables.
pub const SUBSYS_NFTABLES: u8 = 10;
/// `NLA_F_NESTED`, set by the kernel on nested attributes.
pub const NLA_F_NESTED: u16 = 0x8000;
const NFGENMSG_LEN: usize = 4;

/// One reply message: its type (subsystem << 8 | message), the nfgenmsg `res_id` (the CPU,
/// for per-CPU statistics) and its attributes.
pub struct Reply<'a> {
    pub msg_type: u16,
    pub res_id: u16,
    pub attrs: &'a [u8],
}

/// A netfilter netlink socket in the namespace it was opened in (the socket keeps that
/// namespace whatever thread uses it later).
pub struct NfSocket {
    sock: Socket,
    netns: u32,
    buf: Vec<u8>,
    seq: u32,
}

impl NfSocket {
    /// Opens one in the calling thread's namespace; `netns` only names it in errors.
    pub fn open(netns: u32) -> Result<NfSocket, ContextError> {
        let err = |what, source| ContextError::Netfilter {
            netns,
            what,
            source,
        };
        let sock = Socket::new(NETLINK_NETFILTER).map_err(|e| err("open", e))?;
        sock.connect(&netlink_sys::SocketAddr::new(0, 0))
            .map_err(|e| err("connect", e))?;
        Ok(NfSocket {
            sock,
            netns,
            buf: vec![0; RECV_BUF],
            seq: 0,
        })
    }

    pub fn netns(&self) -> u32 {
        self.netns
    }

    /// Sends `subsys`/`msg` with `flags` (NLM_F_REQUEST is added) and `attrs`, then calls
    /// `each` for every reply until the dump ends (`NLMSG_DONE`) or the ack arrives.
    /// Requests that are not dumps must set `NLM_F_ACK` so that the end is seen.
    pub fn request(
        &mut self,
        subsys: u8,
        msg: u8,
        family: u8,
        flags: u16,
        attrs: &[u8],
        mut each: impl FnMut(Reply<'_>),
    ) -> Result<(), ContextError> {
        self.seq = self.seq.wrapping_add(1);
        let len = 16 + NFGENMSG_LEN + attrs.len();
        let mut out = Vec::with_capacity(len);
        out.extend_from_slice(&(len as u32).to_ne_bytes());
        out.extend_from_slice(&((u16::from(subsys) << 8) | u16::from(msg)).to_ne_bytes());
        out.extend_from_slice(&(flags | NLM_F_REQUEST).to_ne_bytes());
        out.extend_from_slice(&self.seq.to_ne_bytes());
        out.extend_from_slice(&0u32.to_ne_bytes());
        out.extend_from_slice(&[family, 0, 0, 0]);
        out.extend_from_slice(attrs);
        self.sock
            .send(&out, 0)
            .map_err(|source| self.nl_err("send", source))?;
        let end = netlink::replies(&self.sock, &mut self.buf, self.seq, |t, p| {
            if p.len() >= NFGENMSG_LEN {
                each(Reply {
                    msg_type: t,
                    res_id: u16::from_be_bytes([p[2], p[3]]),
                    attrs: &p[NFGENMSG_LEN..],
                });
            }
            Ok(())
        });
        match end {
            // errno 0 is the ack of a request that is not a dump.
            Ok(None | Some(0)) => Ok(()),
            Ok(Some(errno)) => {
                Err(self.nl_err("request", std::io::Error::from_raw_os_error(errno)))
            }
            Err(RecvError::Io(source)) => Err(self.nl_err("recv", source)),
            Err(RecvError::Decode(reason)) => Err(self.decode_err(reason)),
        }
    }

    fn nl_err(&self, what: &'static str, source: std::io::Error) -> ContextError {
        ContextError::Netfilter {
            netns: self.netns,
            what,
            source,
        }
    }

    fn decode_err(&self, reason: String) -> ContextError {
        ContextError::Decode {
            netns: self.netns,
            reason,
        }
    }
}

/// The attributes of `buf` as (type without flags, value); stops at the first malformed one.
pub fn attrs(buf: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    NlasIterator::new(buf).map_while(Result::ok).map(|a| {
        let kind = a.kind() & !(NLA_F_NESTED | 0x4000);
        let len = usize::from(a.length());
        let whole: &[u8] = a.into_inner();
        (kind, whole.get(4..len).unwrap_or(&[]))
    })
}

/// The value of the first attribute of type `kind`.
pub fn find(buf: &[u8], kind: u16) -> Option<&[u8]> {
    attrs(buf).find(|(k, _)| *k == kind).map(|(_, v)| v)
}

pub fn be16(v: &[u8]) -> Option<u16> {
    Some(u16::from_be_bytes(v.get(..2)?.try_into().ok()?))
}

pub fn be32(v: &[u8]) -> Option<u32> {
    Some(u32::from_be_bytes(v.get(..4)?.try_into().ok()?))
}

pub fn be64(v: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(v.get(..8)?.try_into().ok()?))
}

/// A NUL-terminated string attribute.
pub fn string(v: &[u8]) -> String {
    let end = v.iter().position(|&b| b == 0).unwrap_or(v.len());
    String::from_utf8_lossy(&v[..end]).into_owned()
}

/// Appends one attribute (padded to 4 bytes) to a request.
pub fn put(out: &mut Vec<u8>, kind: u16, value: &[u8]) {
    let len = 4 + value.len();
    out.extend_from_slice(&(len as u16).to_ne_bytes());
    out.extend_from_slice(&kind.to_ne_bytes());
    out.extend_from_slice(value);
    out.resize(out.len() + ((4 - len % 4) % 4), 0);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_round_trip_through_put_and_walk() {
        let mut buf = Vec::new();
        put(&mut buf, 3, &0x10u32.to_be_bytes());
        put(&mut buf, 1 | NLA_F_NESTED, b"ab\0");
        put(&mut buf, 7, &[1, 2]);
        let got: Vec<(u16, Vec<u8>)> = attrs(&buf).map(|(k, v)| (k, v.to_vec())).collect();
        assert_eq!(
            got,
            vec![
                (3, vec![0, 0, 0, 0x10]),
                (1, b"ab\0".to_vec()),
                (7, vec![1, 2])
            ]
        );
        assert_eq!(find(&buf, 3).and_then(be32), Some(0x10));
        assert_eq!(string(find(&buf, 1).unwrap()), "ab");
        assert_eq!(find(&buf, 9), None);
    }

    #[test]
    fn a_truncated_attribute_ends_the_walk() {
        let mut buf = Vec::new();
        put(&mut buf, 1, &[9, 9, 9, 9]);
        buf.extend_from_slice(&[200, 0, 2, 0]); // claims 200 bytes
        assert_eq!(attrs(&buf).count(), 1);
    }
}
