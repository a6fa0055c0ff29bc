//! The town's domain events as Analytics Engine points (GASTOWN-DOMAIN.md section 7), derived
//! from the bead history rather than sprinkled through the operations: each tick reports the
//! `bead_events` rows recorded since the last report (the `town.analytics_mark` watermark), so an
//! event is written once whether an HTTP request or the tick caused it. A tick writes at most a
//! budget of them; the rest follow with the next tick.
//!
//! | history row | point (label = blob10, duration = double1) |
//! |---|---|
//! | `created` | `bead.created` (beadType); also `convoy.created` for a convoy |
//! | `status_changed` | `bead.status_changed` (label = new status); then `bead.closed` (duration = age) or `bead.failed`; `convoy.landed` when a convoy closes |
//! | `review_submitted` | `review.submitted` |
//! | `review_completed` | `review.completed` (merged) or `review.failed` (label = failed or conflict) |
//!
//! `convoy.started` comes from the `convoy_started` events this tick applied.

use super::layout::{blob, double};
use super::writer::Analytics;
use crate::params;
use crate::sql::{Sql, SqlError};
use crate::vocabulary::time::{iso, parse_iso, Millis};

/// Writes the domain events recorded since the last report, at most `budget` points.
pub fn report(
    sql: &dyn Sql,
    analytics: &Analytics<'_>,
    now: Millis,
    budget: u32,
) -> Result<u32, SqlError> {
    let mark = sql
        .one("SELECT analytics_mark FROM town WHERE singleton = 1", &[])?
        .int("analytics_mark")?;
    let rows = sql.query(
        "SELECT e.rowid AS seq, e.bead_id, e.agent_id, e.event_type, e.new_value,
                b.type AS bead_type, b.rig_id, b.created_at AS bead_created_at
         FROM bead_events e LEFT JOIN beads b ON b.bead_id = e.bead_id
         WHERE e.rowid > ? ORDER BY e.rowid LIMIT ?",
        &params![mark, i64::from(budget / 2)],
    )?;
    let mut written = 0;
    let mut last = mark;
    for row in rows {
        let points = points_of(&row, analytics, now)?;
        if written + points.len() as u32 > budget {
            break;
        }
        written += points.len() as u32;
        points.into_iter().for_each(|p| analytics.write(p));
        last = row.int("seq")?;
    }
    if last != mark {
        sql.execute(
            "UPDATE town SET analytics_mark = ? WHERE singleton = 1",
            &params![last],
        )?;
    }
    let started = sql.query(
        "SELECT json_extract(payload, '$.convoy_id') AS convoy_id FROM town_events
         WHERE event_type = 'convoy_started' AND processed_at = ? AND poisoned = 0",
        &params![iso(now)],
    )?;
    for row in started {
        if written >= budget {
            break;
        }
        let mut p = analytics.internal("convoy.started");
        p.set_blob(
            blob::CONVOY_ID,
            &row.opt_text("convoy_id")?.unwrap_or_default(),
        );
        analytics.write(p);
        written += 1;
    }
    Ok(written)
}

fn points_of(
    row: &crate::sql::Row,
    analytics: &Analytics<'_>,
    now: Millis,
) -> Result<Vec<crate::metrics::point::DataPoint>, SqlError> {
    let bead_id = row.text("bead_id")?;
    let bead_type = row.opt_text("bead_type")?.unwrap_or_default();
    let new_value = row.opt_text("new_value")?.unwrap_or_default();
    let point = |event: &str| {
        let mut p = analytics.internal(event);
        p.set_blob(blob::BEAD_ID, &bead_id)
            .set_blob(blob::BEAD_TYPE, &bead_type)
            .set_blob(
                blob::RIG_ID,
                &row.opt_text("rig_id").ok().flatten().unwrap_or_default(),
            )
            .set_blob(
                blob::AGENT_ID,
                &row.opt_text("agent_id").ok().flatten().unwrap_or_default(),
            );
        p
    };
    let labelled = |event: &str, label: &str| {
        let mut p = point(event);
        p.set_blob(blob::LABEL, label);
        p
    };
    let is_convoy = bead_type == "convoy";
    Ok(match row.text("event_type")?.as_str() {
        "created" if is_convoy => vec![point("bead.created"), point("convoy.created")],
        "created" => vec![point("bead.created")],
        "status_changed" => {
            let mut out = vec![labelled("bead.status_changed", &new_value)];
            match new_value.as_str() {
                "closed" => {
                    let age = row
                        .opt_text("bead_created_at")?
                        .and_then(|t| parse_iso(&t))
                        .map_or(0, |t| (now - t).max(0));
                    let mut closed = point("bead.closed");
                    closed.set_double(double::DURATION_MS, age as f64);
                    out.push(closed);
                    if is_convoy {
                        let mut landed = point("convoy.landed");
                        landed.set_blob(blob::CONVOY_ID, &bead_id);
                        out.push(landed);
                    }
                }
                "failed" => out.push(point("bead.failed")),
                _ => {}
            }
            out
        }
        "review_submitted" => vec![point("review.submitted")],
        "review_completed" if new_value == "merged" => {
            vec![labelled("review.completed", &new_value)]
        }
        "review_completed" => vec![labelled("review.failed", &new_value)],
        _ => Vec::new(),
    })
}
