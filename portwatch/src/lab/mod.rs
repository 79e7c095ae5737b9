//! Synthetic workloads on loopback inside throwaway network namespaces: for `portwatch demo`,
//! the benchmarks and the tests. Nothing here ever sends traffic outside a namespace it made.

pub mod churn;
pub mod demo;
pub mod hold;
pub mod netns;
