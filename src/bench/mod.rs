//! What `scripts/bench` runs inside the town, natively and in the Durable Object alike: a seeded
//! [`workload`] generator and the raw-SQL [`floor`] a tick is compared with. Both write only
//! through the SQL port, so the very same code seeds `rusqlite` and the DO's SQLite (reached there
//! through the development-only `/debug/towns/{t}/bench/*` routes). Compiled on the host and, for
//! Wasm, only with the `bench` feature: the production Worker does not carry it.

pub mod floor;
pub mod rng;
pub mod workload;

/// Most values bound to one statement: the Durable Object's SQLite refuses more than 100.
pub const MAX_BOUND_PARAMS: usize = 100;
