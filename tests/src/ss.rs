//! `ss -tanH` output as data, to compare snapshots with.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use portwatch::event::TcpState;

/// One socket line: state, local, peer.
pub type SsSocket = (TcpState, SocketAddr, SocketAddr);

/// `ss`'s state names (misc/ss.c `sstate_name`).
pub fn state(name: &str) -> Option<TcpState> {
    use TcpState::*;
    Some(match name {
        "ESTAB" => Established,
        "SYN-SENT" => SynSent,
        "SYN-RECV" => SynRecv,
        "FIN-WAIT-1" => FinWait1,
        "FIN-WAIT-2" => FinWait2,
        "TIME-WAIT" => TimeWait,
        "UNCONN" => Close,
        "CLOSE-WAIT" => CloseWait,
        "LAST-ACK" => LastAck,
        "LISTEN" => Listen,
        "CLOSING" => Closing,
        "NEW-SYN-RECV" => NewSynRecv,
        "BOUND-INACTIVE" => BoundInactive,
        _ => return None,
    })
}

/// `127.0.0.1:80`, `[::1]:80`, `0.0.0.0:*`, `*:5001` (IPv6 any), `[fe80::1%lo]:22`.
pub fn addr(text: &str) -> Option<SocketAddr> {
    let (host, port) = text.rsplit_once(':')?;
    let port = if port == "*" { 0 } else { port.parse().ok()? };
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let host = host.split('%').next()?;
    let ip: IpAddr = if host == "*" {
        Ipv6Addr::UNSPECIFIED.into()
    } else {
        host.parse().ok()?
    };
    Some(SocketAddr::new(ip, port))
}

/// Parses `ss -tanH` (state, recv-q, send-q, local, peer per line).
pub fn parse(output: &str) -> Vec<SsSocket> {
    output
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let parsed = (f.len() >= 5)
                .then(|| Some((state(f[0])?, addr(f[3])?, addr(f[4])?)))
                .flatten();
            parsed.unwrap_or_else(|| panic!("unexpected ss line {line:?}"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ss_lines() {
        let out = "\
LISTEN    0      128             127.0.0.1:5000             0.0.0.0:*
TIME-WAIT 0      0               127.0.0.1:40000          127.0.0.1:5000
LISTEN    0      128                     *:5001                   *:*
ESTAB     0      0      [::ffff:127.0.0.1]:5001  [::ffff:127.0.0.1]:40002
";
        let got = parse(out);
        let a = |s: &str| s.parse::<SocketAddr>().unwrap();
        assert_eq!(
            got,
            vec![
                (TcpState::Listen, a("127.0.0.1:5000"), a("0.0.0.0:0")),
                (
                    TcpState::TimeWait,
                    a("127.0.0.1:40000"),
                    a("127.0.0.1:5000")
                ),
                (TcpState::Listen, a("[::]:5001"), a("[::]:0")),
                (
                    TcpState::Established,
                    a("[::ffff:127.0.0.1]:5001"),
                    a("[::ffff:127.0.0.1]:40002")
                ),
            ]
        );
        assert_eq!(addr("[fe80::1%lo]:22"), Some(a("[fe80::1]:22")));
    }
}
