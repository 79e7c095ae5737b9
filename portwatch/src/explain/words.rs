//! Numbers and names in words, shared by the rules (evidence, remedies) and the text report so
//! that both say things the same way.

/// `28232` → `"28,232"`.
pub fn count(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// [`count`] for `u32`.
pub fn n(v: u32) -> String {
    count(u64::from(v))
}

/// A rate per second: `"400"`, `"12.5"`, `"0.3"`.
pub fn rate(r: f64) -> String {
    if r >= 100.0 {
        count(r.round() as u64)
    } else if r >= 10.0 || r == r.trunc() {
        format!("{r:.0}")
    } else {
        format!("{r:.1}")
    }
}

/// A duration: `"45 s"`, `"4 min"`, `"4 min 10 s"`, `"2 h 5 min"`.
pub fn dur(s: f64) -> String {
    let s = s.max(0.0).round() as u64;
    match s {
        0..=89 => format!("{s} s"),
        90..=599 if !s.is_multiple_of(60) => format!("{} min {} s", s / 60, s % 60),
        90..=5399 => format!("{} min", (s + 30) / 60),
        _ => {
            let m = (s + 30) / 60;
            if m.is_multiple_of(60) {
                format!("{} h", m / 60)
            } else {
                format!("{} h {} min", m / 60, m % 60)
            }
        }
    }
}

/// A fraction as a whole percentage: `0.853` → `"85%"` (at least `"<1%"` when non-zero).
pub fn pct(x: f64) -> String {
    if x > 0.0 && x < 0.005 {
        return "<1%".to_string();
    }
    format!("{:.0}%", (x * 100.0).min(999.0))
}

/// `part / whole` as [`pct`], 0 when `whole` is 0.
pub fn share(part: u32, whole: u32) -> String {
    if whole == 0 {
        return pct(0.0);
    }
    pct(f64::from(part) / f64::from(whole))
}

/// Port ranges as `ip_local_reserved_ports` writes them: `"8080,9000-9100"`, or `"none"`.
pub fn port_ranges(ranges: &[(u16, u16)]) -> String {
    if ranges.is_empty() {
        return "none".to_string();
    }
    let v: Vec<String> = ranges
        .iter()
        .map(|(a, b)| {
            if a == b {
                a.to_string()
            } else {
                format!("{a}-{b}")
            }
        })
        .collect();
    v.join(",")
}

/// `"1 socket"`, `"3 sockets"`.
pub fn plural(v: u64, one: &str, many: &str) -> String {
    format!("{} {}", count(v), if v == 1 { one } else { many })
}

/// Who, from a finding's process fields.
/// `who` followed by where it lives, when known: "python3 (pid 7) in container web (podman
/// 5c8f8a6b1d2e)".
pub fn who_in(who: &str, workload: Option<&crate::workload::Workload>) -> String {
    match workload.and_then(|w| w.whereabouts()) {
        Some(w) => format!("{who} in {w}"),
        None => who.to_string(),
    }
}

pub fn who(comm: Option<&str>, pid: Option<u32>, ppid: Option<u32>, count: u32) -> String {
    let Some(comm) = comm else {
        return "an unknown process".to_string();
    };
    if count > 1 {
        let parent = ppid
            .filter(|&p| p != 0)
            .map(|p| format!("parent {p}, "))
            .unwrap_or_default();
        let latest = pid.map(|p| format!("latest pid {p}")).unwrap_or_default();
        return format!("{} {comm} processes ({parent}{latest})", n(count)).replace(" ()", "");
    }
    match pid {
        Some(p) => format!("{comm} (pid {p})"),
        None => comm.to_string(),
    }
}

/// [`who`], saying what the process executes when its name does not: "wrk:worker_0 (pid
/// 812, running envoy)". A name that is the executable's, or its start (`comm` is cut to 15
/// bytes; `python3` runs `python3.11`), is not repeated.
pub fn who_running(
    comm: Option<&str>,
    exe: Option<&str>,
    pid: Option<u32>,
    ppid: Option<u32>,
    count: u32,
) -> String {
    let base = who(comm, pid, ppid, count);
    match (comm, exe) {
        (Some(c), Some(e)) if !e.starts_with(c) => match base.strip_suffix(')') {
            Some(open) => format!("{open}, running {e})"),
            None => format!("{base} (running {e})"),
        },
        _ => base,
    }
}

/// A latency in microseconds: `850ns`, `42µs`, `1.3ms`, `2.1s`.
pub fn micros(us: f64) -> String {
    if !us.is_finite() || us < 0.0 {
        "—".into()
    } else if us < 1.0 {
        format!("{}ns", (us * 1e3).round() as u64)
    } else if us < 1e3 {
        format!("{}µs", us.round() as u64)
    } else if us < 1e6 {
        format!("{:.1}ms", us / 1e3)
    } else {
        format!("{:.1}s", us / 1e6)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_renamed_thread_says_what_it_runs() {
        let w = |c, e| who_running(Some(c), e, Some(812), None, 1);
        assert_eq!(
            w("wrk:worker_0", Some("envoy")),
            "wrk:worker_0 (pid 812, running envoy)"
        );
        assert_eq!(w("python3", Some("python3.11")), "python3 (pid 812)");
        assert_eq!(w("nginx", None), "nginx (pid 812)");
        assert_eq!(
            who_running(Some("w"), Some("java"), None, None, 1),
            "w (running java)"
        );
    }

    #[test]
    fn numbers_read_well() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(28232), "28,232");
        assert_eq!(count(1_234_567), "1,234,567");
        assert_eq!(rate(400.0), "400");
        assert_eq!(rate(1234.4), "1,234");
        assert_eq!(rate(12.4), "12");
        assert_eq!(rate(2.5), "2.5");
        assert_eq!(rate(3.0), "3");
        assert_eq!(dur(0.0), "0 s");
        assert_eq!(dur(59.6), "60 s");
        assert_eq!(dur(250.0), "4 min 10 s");
        assert_eq!(dur(240.0), "4 min");
        assert_eq!(dur(3000.0), "50 min");
        assert_eq!(dur(7500.0), "2 h 5 min");
        assert_eq!(pct(0.853), "85%");
        assert_eq!(pct(0.001), "<1%");
        assert_eq!(share(1, 0), "0%");
        assert_eq!(plural(1, "port", "ports"), "1 port");
        assert_eq!(plural(2000, "port", "ports"), "2,000 ports");
        assert_eq!(port_ranges(&[]), "none");
        assert_eq!(port_ranges(&[(8080, 8080), (9000, 9100)]), "8080,9000-9100");
    }

    #[test]
    fn who_names_groups_and_unknowns() {
        assert_eq!(who(Some("nginx"), Some(812), Some(1), 1), "nginx (pid 812)");
        assert_eq!(
            who(Some("curl"), Some(9876), Some(4120), 312),
            "312 curl processes (parent 4120, latest pid 9876)"
        );
        assert_eq!(who(None, None, None, 0), "an unknown process");
    }
}
