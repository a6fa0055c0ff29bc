//! Loads the reconciler's [`Snapshot`] with a fixed number of queries (nine, or ten when some
//! edge ends at a finished bead, whatever the size of the town; four for the invariants' part of
//! it), decoded by `store::rows`.
//!
//! Closed history only grows, so the snapshot holds live work and just the finished beads a rule
//! or invariant can ask about: every non-terminal bead, plus (any status) beads an agent is
//! hooked to, beads at the other end of a dependency of a live bead (finished blockers, tracked
//! sources, convoy members, merge requests of an issue in review), failed convoy beads (invariant
//! #5), and beads whose failed dispatch falls in the circuit breaker's window. The dependency edges are those
//! touching a live bead; review rows and convoy metadata those of live beads. Each part is read
//! through an index (`idx_beads_status`, `idx_beads_dispatch_failed`, the dependency indexes),
//! never by scanning the closed history. Beads come without their bodies. The edges' finished
//! ends are read by id after the edges, rather than found again by the bead query walking every
//! live bead's edges twice.

use crate::reconciler::constants::{CIRCUIT_BREAKER_WINDOW_MINUTES, NUDGE_DEDUPE_WINDOW_MS};
use crate::reconciler::{Snapshot, SnapshotBuilder, TownState};
use crate::sql::{id_list, Sql, SqlError, Value};
use crate::store::rows::{self, AGENT_COLUMNS, AGENT_FROM, BEAD_COLUMNS};
use crate::store::town;
use crate::vocabulary::actions::NudgeTier;
use crate::vocabulary::time::{iso, Millis, MINUTE};
use std::fmt;

/// Why a snapshot could not be loaded.
#[derive(Debug, Clone, PartialEq)]
pub enum SnapshotError {
    /// There is no town (it was never created, or was deleted).
    NoTown,
    Sql(SqlError),
}

impl fmt::Display for SnapshotError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SnapshotError::NoTown => f.write_str("no town"),
            SnapshotError::Sql(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for SnapshotError {}

impl From<SqlError> for SnapshotError {
    fn from(e: SqlError) -> Self {
        SnapshotError::Sql(e)
    }
}

/// Statuses of live work, as SQL.
const LIVE: &str = "('open', 'in_progress', 'in_review')";

/// The beads [`crate::reconciler::invariants::check`] can find broken: failed convoys (#5), merge requests
/// open or in progress (#3, and the trackers #4 looks for) and issues in review (#4). It reads
/// agents, hooks and `tracks` edges too. A new invariant about other beads must widen this.
const INVARIANT_BEADS: &str = "(b.type = 'convoy' AND b.status = 'failed')
     OR (b.type = 'merge_request' AND b.status IN ('open', 'in_progress'))
     OR (b.type = 'issue' AND b.status = 'in_review')";

/// The agents it looks at: working ones (#7) and hooked ones (#6).
const INVARIANT_AGENTS: &str = "WHERE a.status = 'working' OR a.current_hook_bead_id IS NOT NULL";

/// The edges it follows: merge requests tracking an issue in review (#4).
const INVARIANT_EDGES: &str =
    "FROM beads x JOIN bead_dependencies d ON d.depends_on_bead_id = x.bead_id
     WHERE x.type = 'issue' AND x.status = 'in_review' AND d.dependency_type = 'tracks'";

/// Reads the town as the reconciler sees it at `now`.
pub fn snapshot(sql: &dyn Sql, now: Millis) -> Result<Snapshot, SnapshotError> {
    let town = town::get(sql)?.ok_or(SnapshotError::NoTown)?;
    let row = sql.one(
        "SELECT breaker_notified_at,
                (SELECT at FROM tick_metrics
                 WHERE tick_id = (SELECT MAX(tick_id) FROM tick_metrics)) AS previous_tick_at
         FROM town WHERE singleton = 1",
        &[],
    )?;
    let breaker_notified_at = row.opt_text("breaker_notified_at")?;
    let previous_tick_at = row.opt_text("previous_tick_at")?;
    let snapshot = SnapshotBuilder::new().town(TownState {
        draining: town.drain.is_some(),
        refinery_code_review: town.config.refinery.code_review,
        breaker_notified_at,
        previous_tick_at,
    });
    let window = iso(now - CIRCUIT_BREAKER_WINDOW_MINUTES * MINUTE);
    let reads = Reads {
        beads: &beads_query(),
        params: &[window.into()],
        agents: "",
        dependencies: &dependencies_query(),
    };
    let mut snapshot = reads.read_into(sql, snapshot)?;
    let ends = snapshot.missing_ends();
    if !ends.is_empty() {
        let far_ends = format!(
            "SELECT {}, {DISPATCH_FAILED} FROM beads b
             WHERE b.type <> 'agent' AND b.bead_id IN (SELECT value FROM json_each(?))",
            bead_columns()
        );
        snapshot = beads_into(sql, &far_ends, &[id_list(&ends)], snapshot)?;
    }
    let convoys = live("convoy", "convoy_metadata c", rows::CONVOY_COLUMNS);
    for row in sql.query(&convoys, &[])? {
        snapshot = snapshot.convoy(rows::convoy(&row)?);
    }
    let since = iso(now - NUDGE_DEDUPE_WINDOW_MS - MINUTE);
    for row in sql.query(
        &nudges_query(),
        &crate::params![
            NudgeTier::Warn.source(),
            NudgeTier::Escalate.source(),
            &since[..10],
            since.as_str()
        ],
    )? {
        snapshot = snapshot.nudge(rows::nudge(&row)?);
    }
    for row in sql.query(&format!("SELECT {} FROM rigs g", rows::RIG_COLUMNS), &[])? {
        snapshot = snapshot.rig(rows::rig(&row)?);
    }
    Ok(snapshot.build())
}

/// Only what [`crate::reconciler::invariants::check`] reads, for the check after a tick's side effects: the
/// beads of [`INVARIANT_BEADS`], the working or hooked agents, the live reviews and the edges of
/// [`INVARIANT_EDGES`], in four statements (no town row, convoy progress, nudges or rigs). The
/// same violations as from [`load`], from a fraction of the rows of a busy town and without the
/// full bead query's subqueries.
pub fn for_invariants(sql: &dyn Sql) -> Result<Snapshot, SnapshotError> {
    let reads = Reads {
        beads: &format!(
            "SELECT {}, 0 AS dispatch_failed FROM beads b WHERE {INVARIANT_BEADS}",
            bead_columns()
        ),
        params: &[],
        agents: INVARIANT_AGENTS,
        dependencies: &format!("SELECT {} {INVARIANT_EDGES}", rows::DEPENDENCY_COLUMNS),
    };
    Ok(reads.read_into(sql, SnapshotBuilder::new())?.build())
}

/// The statements both loads run: beads (with a `dispatch_failed` column) and their `params`,
/// the condition on agents (`WHERE ...`, or empty for all) and the dependency edges; the live
/// reviews are the same for both.
struct Reads<'a> {
    beads: &'a str,
    params: &'a [Value],
    agents: &'a str,
    dependencies: &'a str,
}

impl Reads<'_> {
    fn read_into(
        self,
        sql: &dyn Sql,
        mut snapshot: SnapshotBuilder,
    ) -> Result<SnapshotBuilder, SqlError> {
        snapshot = beads_into(sql, self.beads, self.params, snapshot)?;
        let agents = format!("SELECT {AGENT_COLUMNS} FROM {AGENT_FROM} {}", self.agents);
        for row in sql.query(&agents, &[])? {
            snapshot = snapshot.agent(rows::agent(&row)?);
        }
        let reviews = live("merge_request", "review_metadata r", rows::REVIEW_COLUMNS);
        for row in sql.query(&reviews, &[])? {
            snapshot = snapshot.review(rows::review(&row)?);
        }
        for row in sql.query(self.dependencies, &[])? {
            snapshot = snapshot.dependency(rows::dependency(&row)?);
        }
        Ok(snapshot)
    }
}

/// The beads `query` finds (with their `dispatch_failed` column), into `snapshot`.
fn beads_into(
    sql: &dyn Sql,
    query: &str,
    params: &[Value],
    mut snapshot: SnapshotBuilder,
) -> Result<SnapshotBuilder, SqlError> {
    for row in sql.query(query, params)? {
        let bead = rows::bead(&row)?;
        if row.bool("dispatch_failed")? {
            snapshot = snapshot.dispatch_failed(&bead.bead_id);
        }
        snapshot = snapshot.bead(bead);
    }
    Ok(snapshot)
}

/// The beads of the snapshot but the far ends of its edges, which [`snapshot`] reads by id once
/// it has the edges (see the module docs); `?` is the breaker window's start.
///
/// One SELECT with OR-ed conditions rather than a compound SELECT: the Durable Object's SQLite
/// refuses compound SELECTs of this many terms ("too many terms in compound SELECT"). Each
/// condition is indexable, so SQLite still reads through indexes (multi-index OR).
fn beads_query() -> String {
    format!(
        "SELECT {}, {DISPATCH_FAILED}
         FROM beads b
         WHERE b.type <> 'agent' AND (
           b.status IN {LIVE}
           OR b.bead_id IN (SELECT a.current_hook_bead_id FROM agent_metadata a)
           OR (b.type = 'convoy' AND b.status = 'failed')
           OR (b.last_dispatch_error IS NOT NULL AND b.last_dispatch_attempt_at >= ?)
         )",
        bead_columns()
    )
}

/// The `dispatch_failed` column of both bead reads: the bead's last dispatch failed.
const DISPATCH_FAILED: &str = "b.last_dispatch_error IS NOT NULL AS dispatch_failed";

/// The bead columns a snapshot reads: all but the body (`NULL`), which no rule or invariant reads
/// and which is most of a bead's bytes; a start reads its bead whole
/// (`domain::dispatch::find`).
fn bead_columns() -> String {
    BEAD_COLUMNS.replacen("b.body", "NULL AS body", 1)
}

/// `columns` of the metadata `table` (`name alias`) of the live beads of `bead_type`.
fn live(bead_type: &str, table: &str, columns: &str) -> String {
    let alias = table.rsplit(' ').next().unwrap_or(table);
    format!(
        "SELECT {columns} FROM beads b JOIN {table} ON {alias}.bead_id = b.bead_id
         WHERE b.type = '{bead_type}' AND b.status IN {LIVE}"
    )
}

/// The nudges of the two de-duplicated GUPP tiers (`?`, `?`) created since a time (its date,
/// then itself). `created_at` is ISO text or, in old rows, SQLite's `YYYY-MM-DD HH:MM:SS`
/// (#1412). The range on the raw text from the date (both formats of that day sort after it)
/// keeps the read on `idx_nudges_source`; `datetime()` then compares both formats as times. It
/// keeps whole seconds, so the time is a minute early and the rule decides to the millisecond.
fn nudges_query() -> String {
    format!(
        "SELECT {} FROM agent_nudges n
         WHERE n.source IN (?, ?) AND n.created_at >= ?
           AND datetime(n.created_at) >= datetime(?)",
        rows::NUDGE_COLUMNS
    )
}

/// The dependency edges touching a live bead.
fn dependencies_query() -> String {
    let select = format!("SELECT {}", rows::DEPENDENCY_COLUMNS);
    format!(
        "{select} FROM beads x JOIN bead_dependencies d ON d.bead_id = x.bead_id
         WHERE x.status IN {LIVE}
         UNION
         {select} FROM beads x JOIN bead_dependencies d ON d.depends_on_bead_id = x.bead_id
         WHERE x.status IN {LIVE}"
    )
}
