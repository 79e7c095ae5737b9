//! Test builders
