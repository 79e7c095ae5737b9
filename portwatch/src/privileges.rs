//! Can this process load and attach BPF tracing programs?

/// CAP_PERFMON and CAP_BPF (Linux 5.8), from linux/capability.h.
const CAP_PERFMON: u32 = 38;
const CAP_BPF: u32 = 39;
const CAP_SYS_ADMIN: u32 = 21;
const CAP_NET_ADMIN: u32 = 12;

/// The effective capability set of this process (`CapEff` in /proc/self/status).
pub fn effective_caps() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    parse_cap_eff(&status)
}

pub fn parse_cap_eff(status: &str) -> Option<u64> {
    let hex = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))?
        .trim();
    u64::from_str_radix(hex, 16).ok()
}

/// Whether this process may read conntrack and the nftables rules: `nfnetlink_rcv`
/// (net/netfilter/nfnetlink.c) refuses every message of a sender without CAP_NET_ADMIN
/// (`netlink_net_capable`) with EPERM, reads included.
pub fn has_net_admin() -> bool {
    effective_caps().is_some_and(|caps| caps & (1u64 << CAP_NET_ADMIN) != 0)
}

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// `Ok(description)` when privileged enough, `Err(what is missing)` otherwise.
pub fn check() -> Result<String, String> {
    let caps = effective_caps().unwrap_or(0);
    let has = |c: u32| caps & (1u64 << c) != 0;
    if has(CAP_SYS_ADMIN) {
        return Ok(if is_root() {
            "root".into()
        } else {
            "CAP_SYS_ADMIN".into()
        });
    }
    if has(CAP_BPF) && has(CAP_PERFMON) {
        return Ok("CAP_BPF + CAP_PERFMON".into());
    }
    Err(format!(
        "needs root, or CAP_BPF and CAP_PERFMON (effective capabilities: {caps:#x}); \
         run it with sudo"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_cap_eff() {
        let status = "Name:\tx\nCapInh:\t0000000000000000\nCapEff:\t000001ffffffffff\n";
        assert_eq!(parse_cap_eff(status), Some(0x1ff_ffff_ffff));
        assert_eq!(parse_cap_eff("Name: x\n"), None);
    }
}
