//! Helpers for the privileged integration tests.

pub mod netns;
pub mod sockets;
pub mod ss;
