//! The snapshot types live with the model that consumes them (`model::input`); the readers
//! here fill them.

pub use crate::model::input::{NetnsSnapshot, Owner, SnapSocket, Sysctls, SystemSnapshot};
