//! The Gastown Town reconciler as a Cloudflare Worker.
//!
//! Each town is one SQLite-backed Durable Object. Agents, containers and people report facts
//! over HTTP ([`http`]); the town records them as [`events`]. Every alarm [`tick`] drains those
//! events, applies them to the [`domain`], measures itself and writes one Analytics Engine point
//! ([`metrics`]). Everything but [`runtime`] is plain Rust over the ports of [`sql`] and
//! [`ports`], so the same code runs natively in tests and in the Durable Object.

#[cfg(any(feature = "bench", not(target_arch = "wasm32")))]
pub mod bench;
pub mod concurrency;
pub mod domain;
pub mod effects;
pub mod http;
pub mod json;
pub mod jwt;
pub mod log;
pub mod metrics;
pub mod ports;
pub mod reconciler;
pub mod settings;
pub mod sql;
pub mod store;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod tick;
pub mod vocabulary;

#[cfg(target_arch = "wasm32")]
mod runtime;
