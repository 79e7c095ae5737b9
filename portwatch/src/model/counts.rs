//! Socket counts by TCP state: a fixed array, no allocation.

use serde::{Serialize, Serializer, ser::SerializeMap};

use crate::event::TcpState;

/// How many sockets are in each state. Serialized as `{"ESTABLISHED": 3, ...}` (non-zero only).
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub struct StateCounts([u32; 14]);

impl StateCounts {
    pub fn get(&self, s: TcpState) -> u32 {
        self.0[s as usize]
    }

    pub(crate) fn add(&mut self, s: TcpState, delta: i32) {
        let c = &mut self.0[s as usize];
        *c = c.wrapping_add_signed(delta);
    }

    pub fn total(&self) -> u32 {
        self.0.iter().sum()
    }

    /// Non-zero states in kernel order.
    pub fn iter(&self) -> impl Iterator<Item = (TcpState, u32)> + '_ {
        TcpState::ALL
            .into_iter()
            .map(|s| (s, self.get(s)))
            .filter(|&(_, n)| n > 0)
    }

    pub(crate) fn merge(&mut self, other: &StateCounts) {
        for (a, b) in self.0.iter_mut().zip(other.0.iter()) {
            *a += b;
        }
    }
}

impl std::fmt::Debug for StateCounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map()
            .entries(self.iter().map(|(s, n)| (s.name(), n)))
            .finish()
    }
}

impl Serialize for StateCounts {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        for (st, n) in self.iter() {
            m.serialize_entry(st.name(), &n)?;
        }
        m.end()
    }
}
