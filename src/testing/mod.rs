//! Test doubles and fixture builders, for this crate's tests, its integration tests and the
//! benchmarks (the `testing` feature, which the crate's dev-dependency on itself turns on); never
//! part of the Worker. [`ports`] are deterministic adapters of the ports, [`http`] a scripted
//! fake of the outbound HTTP port; [`snapshot`] builds entities and the reconciler's snapshots
//! from them, and [`town`] builds a town on real SQLite and ticks it.

pub mod http;
pub mod ports;
pub mod snapshot;
pub mod town;
