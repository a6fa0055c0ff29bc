//! The floor a tick is measured against: the same number of rows read and written by a bare SQL
//! script with no logic, in the same runtime and through the same SQL port.
//!
//! Writes come first, as `UPDATE beads SET updated_at = ?` over the first rows by rowid (no index
//! covers `updated_at`), as many statements as the table's size needs; reads follow as
//! `SELECT <bead columns> FROM beads LIMIT ?`, again repeated until enough rows came back. "Rows"
//! are those that SQLite hands back or changes, as `NativeSql` counts them; the Durable Object's
//! own counters (rows scanned) are reported beside them by the caller.
//!
//! The tick's remote calls have a floor of their own ([`calls`]): as many bare requests through
//! the same HTTP port, with the tick's timeouts and concurrency, and nothing done with the answers.

use crate::concurrency::run_bounded;
use crate::effects::remotes::Remotes;
use crate::params;
use crate::ports::Http;
use crate::sql::{Sql, SqlError};
use crate::store::rows::BEAD_COLUMNS;
use crate::vocabulary::time::{iso, Millis};
use serde::{Deserialize, Serialize};

/// Rows read (returned) and written (changed).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rows {
    pub reads: u64,
    pub writes: u64,
}

/// Reads and writes `target` rows of `beads`; returns what it did, which falls short only when
/// the table is empty.
pub fn run(sql: &dyn Sql, target: Rows, now: Millis) -> Result<Rows, SqlError> {
    let mut done = Rows::default();
    let at = iso(now);
    while done.writes < target.writes {
        let written = sql.execute(
            "UPDATE beads SET updated_at = ?
             WHERE rowid IN (SELECT rowid FROM beads ORDER BY rowid LIMIT ?)",
            &params![at.as_str(), (target.writes - done.writes) as i64],
        )?;
        if written == 0 {
            break;
        }
        done.writes += written;
    }
    let select = format!("SELECT {BEAD_COLUMNS} FROM beads b LIMIT ?");
    while done.reads < target.reads {
        let read = sql
            .query(&select, &params![(target.reads - done.reads) as i64])?
            .len() as u64;
        if read == 0 {
            break;
        }
        done.reads += read;
    }
    Ok(done)
}

/// The floor of a statement: `count` point reads of the town row by its primary key, the least a
/// statement can do. A tick of `n` statements costs at least `n` of these, whatever its rows.
pub fn statements(sql: &dyn Sql, count: u64) -> Result<u64, SqlError> {
    for _ in 0..count {
        sql.query("SELECT town_id FROM town WHERE singleton = 1", &[])?;
    }
    Ok(count)
}

/// The floor of `count` remote calls: `GET /health` (with an empty town config) to the
/// container through `http`, with the tick's timeouts and at most `remotes.concurrency` in
/// flight, as the tick's calls go. Answers how many were answered with a 2xx.
pub async fn calls<H: Http>(http: &H, remotes: &Remotes, count: u64) -> u64 {
    let container = remotes.container(http);
    let answers = run_bounded(
        (0..count).map(|_| container.health("{}", None)).collect(),
        remotes.concurrency,
    )
    .await;
    answers.iter().filter(|a| a.is_ok()).count() as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::workload::{seed, Spec};
    use crate::sql::native::NativeSql;
    use crate::store::{migrate, town};
    use crate::vocabulary::config::TownConfig;

    const NOW: Millis = 1_795_920_000_000;

    #[test]
    fn moves_exactly_the_rows_asked_for_even_beyond_the_table() {
        let db = NativeSql::in_memory();
        migrate::migrate(&db, NOW).unwrap();
        town::put(&db, "bench", "owner", &TownConfig::default(), NOW).unwrap();
        let spec = Spec {
            beads: 100,
            events: 0,
            seed: 5,
        };
        seed(&db, &spec, NOW).unwrap();
        for target in [
            Rows::default(),
            Rows {
                reads: 7,
                writes: 3,
            },
            Rows {
                reads: 250,
                writes: 130,
            },
        ] {
            let before = db.counters();
            assert_eq!(run(&db, target, NOW).unwrap(), target);
            let after = db.counters();
            assert_eq!(after.rows_read - before.rows_read, target.reads);
            assert_eq!(after.rows_written - before.rows_written, target.writes);
        }
    }

    #[test]
    fn calls_go_to_the_container_and_count_only_the_answered() {
        use crate::testing::http::{block_on, path_of, remotes, FakeHttp, Reply};
        let remotes = remotes();
        let http = FakeHttp::new();
        http.times(2, "GET", "/health", Reply::status(503)).always(
            "GET",
            "/health",
            Reply::ok(serde_json::json!({"status": "running"})),
        );
        assert_eq!(block_on(calls(&http, &remotes, 0)), 0);
        assert_eq!(block_on(calls(&http, &remotes, 15)), 13);
        let sent = http.requests();
        assert_eq!(sent.len(), 15);
        assert!(sent.iter().all(|r| r.method == "GET"
            && r.url.starts_with("http://container.test")
            && path_of(&r.url) == "/health"));
    }

    #[test]
    fn an_empty_table_ends_the_script() {
        let db = NativeSql::in_memory();
        migrate::migrate(&db, NOW).unwrap();
        let target = Rows {
            reads: 5,
            writes: 5,
        };
        assert_eq!(run(&db, target, NOW).unwrap(), Rows::default());
    }
}
