//! Listeners, and how accepted sockets find theirs.
//!
//! The child of a listener first appears as LISTEN → SYN_RECV on a *new* `sk` in softirq
//! context (the running task is unrelated), with the child's local address — the address the
//! client connected to, not necessarily the listener's (a listener on `0.0.0.0`/`::` accepts
//! on every address). So the child is matched to a listener by namespace + local port, exact
//! address first, then wildcard, and inherits its owner. Listening sockets sharing an address
//! (`SO_REUSEPORT`) share one entry: which of them accepts is not visible in the event.

use rustc_hash::FxHashMap;

use super::{addr::Ip, pool::CloseStats, slots::Slots};

#[derive(Clone, Debug)]
pub(crate) struct Listener {
    pub netns: u32,
    pub ip: Ip,
    pub port: u16,
    /// Owner of the first listening socket seen, or `NONE`.
    pub owner: u32,
    /// Listening sockets on this address right now.
    pub listening: u32,
    /// Listening sockets + inbound links pointing here; freed at 0.
    pub refs: u32,
    pub since_ns: u64,
    pub closes: CloseStats,
    /// Accepted connections seen (LISTEN → SYN_RECV).
    pub accepted: u64,
}

#[derive(Default)]
pub(crate) struct Listeners {
    by_key: FxHashMap<(u32, Ip, u16), u32>,
    by_port: FxHashMap<(u32, u16), Vec<u32>>,
    slots: Slots<Listener>,
}

impl Listeners {
    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    /// The listener that receives connections to `ip:port` in `netns`.
    pub fn find_for(&self, netns: u32, ip: Ip, port: u16) -> Option<u32> {
        let ids = self.by_port.get(&(netns, port))?;
        let exact = ids.iter().find(|&&id| self.get(id).ip == ip);
        exact
            .or_else(|| ids.iter().find(|&&id| self.get(id).ip.accepts(ip)))
            .copied()
    }

    /// The entry for exactly `ip:port`, created (owned by `owner`) if needed. Returns the id
    /// and whether it is new (the caller then retains the owner).
    pub fn intern(
        &mut self,
        netns: u32,
        ip: Ip,
        port: u16,
        owner: u32,
        now_ns: u64,
    ) -> (u32, bool) {
        if let Some(&id) = self.by_key.get(&(netns, ip, port)) {
            return (id, false);
        }
        let l = Listener {
            netns,
            ip,
            port,
            owner,
            listening: 0,
            refs: 0,
            since_ns: now_ns,
            closes: CloseStats::default(),
            accepted: 0,
        };
        let id = self.slots.insert(l);
        self.by_key.insert((netns, ip, port), id);
        self.by_port.entry((netns, port)).or_default().push(id);
        (id, true)
    }

    pub fn get(&self, id: u32) -> &Listener {
        self.slots
            .get(id)
            .expect("listener ids are only held while referenced")
    }

    pub fn get_mut(&mut self, id: u32) -> &mut Listener {
        self.slots
            .get_mut(id)
            .expect("listener ids are only held while referenced")
    }

    /// Drops a reference; returns the owner to release when the entry is freed.
    pub fn release(&mut self, id: u32) -> Option<u32> {
        let l = self.get_mut(id);
        l.refs -= 1;
        if l.refs > 0 {
            return None;
        }
        let l = self.slots.remove(id)?;
        self.by_key.remove(&(l.netns, l.ip, l.port));
        if let Some(v) = self.by_port.get_mut(&(l.netns, l.port)) {
            v.retain(|&x| x != id);
            if v.is_empty() {
                self.by_port.remove(&(l.netns, l.port));
            }
        }
        Some(l.owner)
    }

    pub fn iter(&self) -> impl Iterator<Item = (u32, &Listener)> {
        self.slots.iter()
    }
}
