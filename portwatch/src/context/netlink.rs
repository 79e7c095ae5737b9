//! The one reply loop of every netlink request portwatch makes (`sock_diag` dumps, ctnetlink,
//! nftables): datagrams read into one buffer, the messages of the request's sequence number
//! walked in place, until `NLMSG_DONE` or `NLMSG_ERROR` ends them.

use netlink_packet_core::{NLMSG_DONE, NLMSG_ERROR, NetlinkBuffer};
use netlink_sys::Socket;

/// Dump replies fill at most ~32 KiB per datagram (`netlink_recvmsg` caps
/// `max_recvmsg_len`); a buffer this large never truncates one.
pub const RECV_BUF: usize = 64 << 10;

/// Why a request's replies could not be read.
#[derive(Debug)]
pub enum RecvError {
    /// `recv()` failed.
    Io(std::io::Error),
    /// A message did not parse (its text says which and why).
    Decode(String),
}

/// Reads the replies to request `seq` from `sock` into `buf` and calls `each(message type,
/// payload)` for every message of that sequence but the last. Returns the errno of the
/// closing `NLMSG_ERROR` (0 is an ack), or `None` for `NLMSG_DONE`. Messages of other
/// sequences (a late reply to an earlier request) are skipped.
pub fn replies(
    sock: &Socket,
    buf: &mut [u8],
    seq: u32,
    mut each: impl FnMut(u16, &[u8]) -> Result<(), RecvError>,
) -> Result<Option<i32>, RecvError> {
    loop {
        let n = sock.recv(&mut &mut buf[..], 0).map_err(RecvError::Io)?;
        let mut off = 0;
        while off < n {
            let msg = NetlinkBuffer::new_checked(&buf[off..n])
                .map_err(|e| RecvError::Decode(e.to_string()))?;
            let len = msg.length() as usize;
            if msg.sequence_number() == seq {
                match msg.message_type() {
                    NLMSG_DONE => return Ok(None),
                    // The payload is a `struct nlmsgerr`: a negative errno first.
                    NLMSG_ERROR => {
                        return match msg.payload().get(..4) {
                            Some(b) => Ok(Some(-i32::from_ne_bytes(b.try_into().expect("4")))),
                            None => Err(RecvError::Decode("truncated NLMSG_ERROR".into())),
                        };
                    }
                    t => each(t, msg.payload())?,
                }
            }
            // Messages are 4-byte aligned within a datagram.
            off += (len + 3) & !3;
        }
    }
}
