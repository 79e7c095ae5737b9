//! How many source ports `connect()` can choose from in one network namespace.
//!
//! From `__inet_hash_connect` (net/ipv4/inet_hashtables.c), docs/kernel-facts.md "Port selection":
//!
//! - each call scans `remaining = high + 1 - low` ports rounded down to an even number
//!   (`remaining &= ~1U`) in two passes of step 2, the first from `low + offset` (`offset`
//!   even, a per-destination hash plus a perturbation that moves after every connect),
//!   wrapping by `remaining`. With an odd count (ends of the same parity) one call therefore
//!   skips one port of `low`'s parity: `low` itself when `offset > 0`, the top port when
//!   `offset == 0`. Different calls skip different ends, so over a pool's life **every port of
//!   the range is handed out**: 40000–40050 gives 51 ports, not 50 (measured on Linux 6.18:
//!   51 held connections, ports 40000 and 40050 both used; the cause tests pin it). What the
//!   odd count costs is only that, with one port left, a call may not look at it (the
//!   `range_parity` config finding). (With the per-socket `IP_LOCAL_PORT_RANGE` option the
//!   step is 1 and no rounding happens; that option is invisible to the model.)
//! - ports in `ip_local_reserved_ports` are skipped;
//! - a port whose bind bucket was made by `bind()` or `listen()` (`fastreuse >= 0`) is skipped
//!   for every destination and every source address (the bucket is per namespace + port);
//! - any other port can be shared by any number of connections with distinct 4-tuples, so a
//!   port used toward one destination is still free toward another: capacity is per pool
//!   (namespace, source IP, destination IP, destination port).
//!
//! The even/odd preference (even ports first for `connect()`, odd first for `bind(0)`) changes
//! which ports are taken first, not how many exist.

use rustc_hash::FxHashMap;

use super::input::Sysctls;

/// The connect-side port space of one namespace: usable ports, minus those held by binds.
#[derive(Clone, Debug)]
pub(crate) struct PortSpace {
    /// First port scanned.
    low: u16,
    /// Ports of the range from `low` (every one can be handed out).
    scan: u32,
    reserved: Option<Box<[u64; 1024]>>,
    /// Scanned ports that are not reserved.
    usable: u32,
    /// Ports held by `bind()`/`listen()` → number of holders.
    held: FxHashMap<u16, u32>,
    /// Distinct held ports that are usable (they leave every pool).
    held_usable: u32,
}

impl PortSpace {
    pub fn new(sysctls: &Sysctls) -> PortSpace {
        let mut p = PortSpace {
            low: 0,
            scan: 0,
            reserved: None,
            usable: 0,
            held: FxHashMap::default(),
            held_usable: 0,
        };
        p.configure(sysctls);
        p
    }

    /// Applies new sysctls, keeping the held ports.
    pub fn configure(&mut self, sysctls: &Sysctls) {
        let (lo, hi) = sysctls.port_range;
        self.low = lo;
        self.scan = if hi < lo {
            0
        } else {
            u32::from(hi) + 1 - u32::from(lo)
        };
        self.reserved = None;
        if !sysctls.reserved_ports.is_empty() {
            let mut bits = Box::new([0u64; 1024]);
            for &(a, b) in &sysctls.reserved_ports {
                for port in a..=b.max(a) {
                    bits[usize::from(port) / 64] |= 1 << (port % 64);
                }
            }
            self.reserved = Some(bits);
        }
        let (low, scan) = (u32::from(self.low), self.scan);
        self.usable = (low..low + scan)
            .filter(|&p| !self.is_reserved(p as u16))
            .count() as u32;
        self.held_usable = self.held.keys().filter(|&&p| self.is_usable(p)).count() as u32;
    }

    pub fn is_reserved(&self, port: u16) -> bool {
        self.reserved
            .as_ref()
            .is_some_and(|b| b[usize::from(port) / 64] & (1 << (port % 64)) != 0)
    }

    /// Whether `connect()` can ever pick this port here.
    pub fn is_usable(&self, port: u16) -> bool {
        let off = u32::from(port).wrapping_sub(u32::from(self.low));
        u32::from(port) >= u32::from(self.low) && off < self.scan && !self.is_reserved(port)
    }

    pub fn hold(&mut self, port: u16) {
        let n = self.held.entry(port).or_insert(0);
        *n += 1;
        if *n == 1 && self.is_usable(port) {
            self.held_usable += 1;
        }
    }

    pub fn release(&mut self, port: u16) {
        if let Some(n) = self.held.get_mut(&port) {
            *n -= 1;
            if *n == 0 {
                self.held.remove(&port);
                if self.is_usable(port) {
                    self.held_usable -= 1;
                }
            }
        }
    }

    /// Ports any pool of this namespace can use: the scanned range, minus reserved ports,
    /// minus ports held by `bind()`/`listen()`.
    pub fn capacity(&self) -> u32 {
        self.usable - self.held_usable
    }

    #[cfg(test)]
    pub fn held(&self) -> impl Iterator<Item = (&u16, &u32)> {
        self.held.iter()
    }

    pub fn breakdown(&self) -> CapacityBreakdown {
        CapacityBreakdown {
            scanned: self.scan,
            reserved: self.scan - self.usable,
            held_by_bind: self.held_usable,
            capacity: self.capacity(),
        }
    }
}

/// How a namespace's capacity comes about, for views and explanations.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct CapacityBreakdown {
    /// Ports of `ip_local_port_range` (`connect()` can hand out every one; see the module
    /// doc for ranges with an odd count).
    pub scanned: u32,
    /// Scanned ports listed in `ip_local_reserved_ports`.
    pub reserved: u32,
    /// Scanned, unreserved ports held by `bind()` or a listener.
    pub held_by_bind: u32,
    /// What is left for each pool.
    pub capacity: u32,
}
