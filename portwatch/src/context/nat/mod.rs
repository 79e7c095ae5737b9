//! The conntrack source: in every namespace that does source NAT (an nftables or
//! iptables-nft masquerade/SNAT rule), the conntrack statistics and the table's fill every
//! second, and a dump of the SNAT'd entries when it may tell something new — bounded in cost.
//!
//! [`NatSource::discover`] enters each namespace once (`setns` on a worker thread), reads its
//! rules and keeps a netfilter netlink socket there: a netlink socket stays in the namespace
//! it was opened in, so [`NatSource::read`] needs no `setns` afterwards.
//!
//! When a dump is taken ([`DumpPolicy`]): the statistics moved (insert_failed, drop,
//! early_drop), a pool of the last dump was at least 70 % full, or the last dump is
//! [`DumpPolicy::baseline`] old; never sooner than `min_gap` nor than `cost_factor` times the
//! last dump's own duration after it (a dump that takes 50 ms is repeated at most every
//! second at the default factor 20: at most 5 % of one core). Measured cost: docs/nat.md.

mod ct;
pub mod nfnl;
pub mod rules;

use std::time::{Duration, Instant};

pub use ct::{Entry, Tuple};

use self::nfnl::NfSocket;
use super::{
    ContextError, Skipped,
    netns::{self, Netns},
};
use crate::model::nat::{ConntrackReading, CtStats, NatDump, NatRule, capacity_for};

/// When a namespace's SNAT'd entries are dumped.
#[derive(Clone, Copy, Debug)]
pub struct DumpPolicy {
    /// Dump at least this often while the namespace does NAT.
    pub baseline: Duration,
    /// Never dump sooner than this after the last dump.
    pub min_gap: Duration,
    /// Nor sooner than this many times the last dump's duration.
    pub cost_factor: u32,
    /// A pool this full (in use / capacity) makes the next reading dump again.
    pub hot: f64,
}

impl Default for DumpPolicy {
    fn default() -> DumpPolicy {
        DumpPolicy {
            baseline: Duration::from_secs(10),
            min_gap: Duration::from_millis(900),
            cost_factor: 20,
            hot: 0.7,
        }
    }
}

struct NatNs {
    netns: u32,
    sock: NfSocket,
    rules: Vec<NatRule>,
    last_stats: Option<CtStats>,
    last_dump: Option<(Instant, Duration)>,
    hot: bool,
}

/// The namespaces that do NAT, each with its socket.
pub struct NatSource {
    policy: DumpPolicy,
    only: Option<Vec<u32>>,
    namespaces: Vec<NatNs>,
}

/// What one namespace's discovery found.
fn probe(ns: &Netns) -> Result<Option<(NfSocket, Vec<NatRule>)>, ContextError> {
    let mut sock = NfSocket::open(ns.inode)?;
    let rules = rules::read(&mut sock)?;
    Ok((!rules.is_empty()).then_some((sock, rules)))
}

impl NatSource {
    /// Finds the namespaces (all, or `only`) that have source-NAT rules. Namespaces that
    /// cannot be read are returned as skipped.
    pub fn discover(
        only: Option<Vec<u32>>,
        policy: DumpPolicy,
    ) -> Result<(NatSource, Vec<Skipped>), ContextError> {
        let mut src = NatSource {
            policy,
            only,
            namespaces: Vec::new(),
        };
        let skipped = src.rediscover()?;
        Ok((src, skipped))
    }

    /// Looks again for namespaces with NAT rules (new pods, rules added or removed); keeps
    /// the state of the namespaces it already had.
    pub fn rediscover(&mut self) -> Result<Vec<Skipped>, ContextError> {
        let (mut all, mut skipped) = netns::enumerate_wanting(self.only.as_deref().unwrap_or(&[]))?;
        if let Some(only) = &self.only {
            all.retain(|ns| only.contains(&ns.inode));
            skipped.retain(|s| only.contains(&s.netns));
        }
        let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
        let found = netns::run_in_each(&all, workers, probe)?;
        let mut old = std::mem::take(&mut self.namespaces);
        for (ns, result) in all.iter().zip(found) {
            match result {
                Ok(Some((sock, rules))) => {
                    let prev = old.iter().position(|o| o.netns == ns.inode);
                    match prev {
                        Some(i) => {
                            let mut o = old.swap_remove(i);
                            o.rules = rules;
                            self.namespaces.push(o);
                        }
                        None => self.namespaces.push(NatNs {
                            netns: ns.inode,
                            sock,
                            rules,
                            last_stats: None,
                            last_dump: None,
                            hot: false,
                        }),
                    }
                }
                Ok(None) => {}
                Err(error) => skipped.push(Skipped {
                    netns: ns.inode,
                    error,
                }),
            }
        }
        Ok(skipped)
    }

    /// The namespaces being read.
    pub fn namespaces(&self) -> Vec<u32> {
        self.namespaces.iter().map(|n| n.netns).collect()
    }

    /// One reading per NAT namespace, taken at `now_ns` (CLOCK_MONOTONIC); `force_dump`
    /// dumps every namespace whatever the policy says (start-up, the end of a report).
    pub fn read(
        &mut self,
        now_ns: u64,
        force_dump: bool,
    ) -> Vec<Result<ConntrackReading, Skipped>> {
        let policy = self.policy;
        self.namespaces
            .iter_mut()
            .map(|n| {
                n.read(now_ns, force_dump, &policy)
                    .map_err(|error| Skipped {
                        netns: n.netns,
                        error,
                    })
            })
            .collect()
    }
}

impl NatNs {
    fn read(
        &mut self,
        now_ns: u64,
        force: bool,
        policy: &DumpPolicy,
    ) -> Result<ConntrackReading, ContextError> {
        let stats = ct::stats(&mut self.sock)?;
        let (count, max) = ct::fill(&mut self.sock)?;
        let moved = self.last_stats.is_none_or(|s| {
            let d = stats.since(&s);
            d.insert_failed + d.drop + d.early_drop > 0
        });
        self.last_stats = Some(stats);
        let due = match self.last_dump {
            None => true,
            Some((at, took)) => {
                let gap = policy.min_gap.max(took * policy.cost_factor);
                let since = at.elapsed();
                since >= gap && (moved || self.hot || since >= policy.baseline)
            }
        };
        let dump = if force || due {
            let start = Instant::now();
            let d = ct::dump_snat(&mut self.sock)?;
            self.last_dump = Some((start, start.elapsed()));
            self.hot = hot(&d, &self.rules, policy.hot);
            Some(d)
        } else {
            None
        };
        Ok(ConntrackReading {
            netns: self.netns,
            taken_at_ns: now_ns,
            stats,
            count,
            max,
            rules: self.rules.clone(),
            dump,
        })
    }
}

/// Whether a pool of `dump` is at least `threshold` full.
fn hot(dump: &NatDump, rules: &[NatRule], threshold: f64) -> bool {
    let mut pools: std::collections::HashMap<_, (u32, u16, u16)> = Default::default();
    for g in &dump.groups {
        let e = pools
            .entry((g.proto, g.nat_ip, g.dst))
            .or_insert((0, g.port_min, g.port_max));
        e.0 += g.total();
        e.1 = e.1.min(g.port_min);
        e.2 = e.2.max(g.port_max);
    }
    pools.into_iter().any(|((_, ip, _), (n, lo, hi))| {
        f64::from(n) >= threshold * f64::from(capacity_for(rules, ip, lo, hi).ports)
    })
}
