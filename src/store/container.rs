//! The container instance the town last heard from (`town.container_instance_id`), which tells
//! a replacement container apart from the one being drained.

use crate::params;
use crate::sql::{Sql, SqlError};

pub fn instance_id(sql: &dyn Sql) -> Result<Option<String>, SqlError> {
    match sql.first(
        "SELECT container_instance_id FROM town WHERE singleton = 1",
        &[],
    )? {
        Some(row) => row.opt_text("container_instance_id"),
        None => Ok(None),
    }
}

pub fn set_instance_id(sql: &dyn Sql, instance_id: &str) -> Result<(), SqlError> {
    sql.execute(
        "UPDATE town SET container_instance_id = ? WHERE singleton = 1",
        &params![instance_id],
    )?;
    Ok(())
}
