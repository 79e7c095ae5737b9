//! The sysctls that bound ephemeral ports, read for the calling thread's network namespace.
//!
//! Verified on Linux 6.18: `/proc/sys/net` shows the netns of the thread that looks the path
//! up (a thread that `setns`'d sees its new namespace), while `/proc/net` is
//! `/proc/self/net` and follows the process (its main thread). So counters come from
//! `/proc/thread-self/net/netstat`.

use std::path::Path;

use super::{
    error::{ContextError, ParseError},
    types::Sysctls,
};

const IPV4: &str = "/proc/sys/net/ipv4";
/// The calling thread's `/proc/net/netstat`.
pub const NETSTAT: &str = "/proc/thread-self/net/netstat";

/// Reads every field of [`Sysctls`] in the calling thread's network namespace.
pub fn read_current() -> Result<Sysctls, ContextError> {
    Ok(Sysctls {
        port_range: read_parsed(&format!("{IPV4}/ip_local_port_range"), parse_port_range)?,
        reserved_ports: read_parsed(
            &format!("{IPV4}/ip_local_reserved_ports"),
            parse_reserved_ports,
        )?,
        tw_reuse: read_parsed(&format!("{IPV4}/tcp_tw_reuse"), parse_number)?,
        max_tw_buckets: read_parsed(&format!("{IPV4}/tcp_max_tw_buckets"), parse_number)?,
        fin_timeout_s: read_parsed(&format!("{IPV4}/tcp_fin_timeout"), parse_number)?,
        timestamps: read_parsed(&format!("{IPV4}/tcp_timestamps"), parse_number)?,
        tw_overflow: read_parsed(NETSTAT, |text| {
            netstat_value(text, "TcpExt", "TCPTimeWaitOverflow")
        })?,
    })
}

fn read_parsed<T>(
    path: &str,
    parse: impl FnOnce(&str) -> Result<T, ParseError>,
) -> Result<T, ContextError> {
    let text = std::fs::read_to_string(path).map_err(|e| ContextError::read(path, e))?;
    parse(&text).map_err(|source| ContextError::Parse {
        path: Path::new(path).to_path_buf(),
        cause: source,
    })
}

/// One integer, as every numeric sysctl prints it (`"2\n"`).
pub fn parse_number<T: std::str::FromStr>(text: &str) -> Result<T, ParseError> {
    text.trim()
        .parse()
        .map_err(|_| ParseError::new("a number in range", text))
}

/// `ip_local_port_range`: two numbers separated by whitespace (`"32768\t60999\n"`).
pub fn parse_port_range(text: &str) -> Result<(u16, u16), ParseError> {
    let err = || ParseError::new("two ports, low then high", text);
    let mut it = text.split_whitespace().map(str::parse::<u16>);
    match (it.next(), it.next(), it.next()) {
        (Some(Ok(lo)), Some(Ok(hi)), None) if lo <= hi => Ok((lo, hi)),
        _ => Err(err()),
    }
}

/// `ip_local_reserved_ports`: comma-separated ports and inclusive ranges (`"1,2-5,8\n"`),
/// possibly empty.
pub fn parse_reserved_ports(text: &str) -> Result<Vec<(u16, u16)>, ParseError> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(Vec::new());
    }
    text.split(',')
        .map(|item| {
            let err = || ParseError::new("PORT or LOW-HIGH", item);
            let port = |s: &str| s.trim().parse::<u16>().map_err(|_| err());
            match item.split_once('-') {
                Some((lo, hi)) => {
                    let (lo, hi) = (port(lo)?, port(hi)?);
                    if lo > hi {
                        return Err(err());
                    }
                    Ok((lo, hi))
                }
                None => port(item).map(|p| (p, p)),
            }
        })
        .collect()
}

/// A counter from `/proc/net/netstat` (or `snmp`): lines come in pairs, `Prefix: names…`
/// then `Prefix: values…`.
pub fn netstat_value(text: &str, prefix: &str, name: &str) -> Result<u64, ParseError> {
    let mut lines = text.lines();
    while let Some(names) = lines.next() {
        let Some(values) = lines.next() else {
            return Err(ParseError::new(
                "a values line after each names line",
                names,
            ));
        };
        let (Some(names), Some(values)) = (
            names.strip_prefix(prefix).and_then(|r| r.strip_prefix(':')),
            values
                .strip_prefix(prefix)
                .and_then(|r| r.strip_prefix(':')),
        ) else {
            continue;
        };
        let names: Vec<&str> = names.split_whitespace().collect();
        let values: Vec<&str> = values.split_whitespace().collect();
        if names.len() != values.len() {
            return Err(ParseError::new("as many values as names", prefix));
        }
        return match names.iter().position(|n| *n == name) {
            Some(i) => values[i]
                .parse()
                .map_err(|_| ParseError::new("an unsigned counter", values[i])),
            None => Err(ParseError::new("the counter in its line", name)),
        };
    }
    Err(ParseError::new("a line pair for the prefix", prefix))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_range() {
        assert_eq!(parse_port_range("32768\t60999\n"), Ok((32768, 60999)));
        assert_eq!(parse_port_range("40000 40000"), Ok((40000, 40000)));
        for bad in ["", "1", "2 1", "1 2 3", "1 70000", "a b", "-1 5"] {
            assert!(parse_port_range(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn reserved_ports() {
        assert_eq!(parse_reserved_ports("\n"), Ok(vec![]));
        assert_eq!(parse_reserved_ports(""), Ok(vec![]));
        assert_eq!(parse_reserved_ports("8080\n"), Ok(vec![(8080, 8080)]));
        assert_eq!(
            parse_reserved_ports("1,2-5,8\n"),
            Ok(vec![(1, 1), (2, 5), (8, 8)])
        );
        assert_eq!(
            parse_reserved_ports("40001-40002,65535"),
            Ok(vec![(40001, 40002), (65535, 65535)])
        );
        for bad in ["1,", ",1", "5-2", "1-", "-1", "x", "1-2-3", "65536"] {
            assert!(parse_reserved_ports(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn numbers() {
        assert_eq!(parse_number::<u8>("2\n"), Ok(2));
        assert_eq!(parse_number::<u32>("262144\n"), Ok(262144));
        assert!(parse_number::<u8>("256").is_err());
        assert!(parse_number::<u32>("").is_err());
        assert!(parse_number::<u32>("1 2").is_err());
    }

    const NETSTAT_TEXT: &str = "\
TcpExt: SyncookiesSent TCPTimeWaitOverflow TWRecycled
TcpExt: 0 17 3
IpExt: InNoRoutes TCPTimeWaitOverflow
IpExt: 5 99
";

    #[test]
    fn netstat_counters() {
        assert_eq!(
            netstat_value(NETSTAT_TEXT, "TcpExt", "TCPTimeWaitOverflow"),
            Ok(17)
        );
        assert_eq!(netstat_value(NETSTAT_TEXT, "IpExt", "InNoRoutes"), Ok(5));
        assert!(netstat_value(NETSTAT_TEXT, "TcpExt", "Nope").is_err());
        assert!(netstat_value(NETSTAT_TEXT, "MPTcpExt", "X").is_err());
        assert!(netstat_value("TcpExt: A B\nTcpExt: 1\n", "TcpExt", "A").is_err());
        assert!(netstat_value("TcpExt: A\n", "TcpExt", "A").is_err());
        assert!(netstat_value("TcpExt: A\nTcpExt: -1\n", "TcpExt", "A").is_err());
    }

    #[test]
    fn reads_this_namespace() {
        // Readable without privileges; the values are whatever this host has.
        let s = read_current().expect("read this namespace's sysctls");
        assert!(s.port_range.0 <= s.port_range.1);
        assert!(s.tw_reuse <= 2);
    }
}
