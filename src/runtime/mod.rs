//! The only code that knows about `worker`: the `Town` Durable Object, the Worker's fetch entry
//! and the platform adapters of the ports. Compiled for wasm32 only.

mod adapters;
mod entry;
mod fence;
mod http;
mod live;
mod sql;
mod ticking;
mod town;
