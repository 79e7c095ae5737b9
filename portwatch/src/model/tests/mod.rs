//! Model tests on synthetic event sequences (see `testutil` for the DSL). Every scenario ends
//! with `assert_consistent`, which recomputes all aggregates from the socket table.

mod capacity;
mod closewait;
mod episodes;
mod eviction;
mod exes;
mod feed;
mod owners;
mod rates;
mod reconcile;
mod search;
mod summary;
mod timewait;
mod transitions;
mod workloads;
