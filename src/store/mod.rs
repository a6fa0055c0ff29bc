//! Storage: the schema, its migrations and the queries of each table family, all as SQL text
//! run through the [`Sql`](crate::sql::Sql) port.

pub mod activity;
pub mod events;
pub mod migrate;
pub mod rows;
pub mod snapshot;
pub mod town;
