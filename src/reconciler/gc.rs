//! reconcileGC (GASTOWN-DOMAIN.md 3.8): unhooked idle or dead workers (polecats, refineries)
//! silent for more than 24 hours are deleted.
//!
//! An agent younger than the 24-hour retention (its bead's `created_at`) is never deleted, even
//! one that never heartbeated. The original treated a NULL `last_activity_at` as stale and so
//! deleted a freshly registered, never-dispatched agent on the next tick.

use super::constants::AGENT_GC_RETENTION_MS;
use super::snapshot::Snapshot;
use super::timing::is_stale;
use crate::actions::Action;
use crate::domain::model::{AgentRole, AgentStatus};
use crate::time::Millis;

pub fn reconcile(snapshot: &Snapshot, now: Millis) -> Vec<Action> {
    snapshot
        .agents()
        .iter()
        .filter(|a| {
            matches!(a.status, AgentStatus::Idle | AgentStatus::Dead)
                && matches!(a.role, AgentRole::Polecat | AgentRole::Refinery)
                && a.current_hook_bead_id.is_none()
                && is_stale(a.last_activity_at.as_deref(), now, AGENT_GC_RETENTION_MS)
                && is_stale(Some(&a.created_at), now, AGENT_GC_RETENTION_MS)
        })
        .map(|a| Action::DeleteAgent {
            agent_id: a.agent_id.clone(),
            reason: "GC: idle > 24h".to_owned(),
        })
        .collect()
}
