//! portwatch-lab: the load generators of portwatch's tests and benchmarks, kept out of the
//! product. Everything runs on loopback inside throwaway network namespaces
//! ([`portwatch::netns::Netns::create`]); nothing here ever sends traffic outside one.
//!
//! - [`churn`]: a server and client threads that open and close connections as fast as they
//!   can, counting them, so that the transitions they cause are known exactly;
//! - [`hold`]: many connections held open (both ends), for snapshot and memory figures;
//! - [`cli`]: both as the hidden `portwatch-bench lab churn|hold` process, which speaks a
//!   line protocol on stdin/stdout (the benchmark runs the load in a process of its own).

pub mod churn;
pub mod cli;
pub mod hold;
