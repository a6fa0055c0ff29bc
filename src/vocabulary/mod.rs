//! The town's words, at the bottom of the crate: what it is made of ([`model`], [`config`]),
//! what it hears ([`events`]), what its reconciler asks for ([`actions`]) and when ([`time`]).
//! Plain data and pure functions over it; nothing here reads the store or performs I/O.

pub mod actions;
pub mod config;
pub mod events;
pub mod model;
pub mod time;
