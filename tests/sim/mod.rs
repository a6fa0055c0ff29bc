//! Helpers of the simulation and interruption tests: a seeded generator ([`rng`]), a SQL port
//! adapter that counts, observes and can interrupt statements ([`sql`]), a dump of every table
//! ([`dump`]), a stand-in container plane and PR host ([`remote`]) and the simulation driver
//! ([`driver`]).

#![allow(dead_code)]

pub mod driver;
pub mod dump;
pub mod remote;
pub use gastown_town::bench::rng;
pub mod sql;
