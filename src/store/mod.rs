//! Storage: the schema, its migrations and the queries of each table family, all as SQL text
//! run through the [`Sql`](crate::sql::Sql) port.

pub mod activity;
pub mod agent_events;
pub mod agents;
pub mod beads;
pub mod container;
pub mod convoys;
pub mod dependencies;
pub mod escalations;
pub mod events;
pub mod mail;
pub mod migrate;
pub mod nudges;
pub mod page;
pub mod reviews;
pub mod rigs;
pub mod rows;
pub mod town;
pub mod triage;
pub mod upkeep;
