//! reconcileGC (GASTOWN-DOMAIN.md 3.8): unhooked idle or dead workers (polecats, refineries)
//! silent for more than 24 hours are deleted.
//!
//! An agent younger than the 24-hour retention (its bead's `created_at`) is never deleted, even
//! one that never heartbeated. The original treated a NULL `last_activity_at` as stale and so
//! deleted a freshly registered, never-dispatched agent on the next tick.

use super::constants::AGENT_GC_RETENTION_MS;
use super::snapshot::Snapshot;
use super::timing::is_stale;
use crate::vocabulary::actions::Action;
use crate::vocabulary::model::{AgentRole, AgentStatus};
use crate::vocabulary::time::Millis;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconciler::snapshot::SnapshotBuilder;
    use crate::testing::snapshot::*;
    use crate::vocabulary::time::HOUR;

    const DAY: Millis = 24 * HOUR;

    fn run(agent: AgentFixture, now: Millis) -> Vec<Action> {
        reconcile(&SnapshotBuilder::new().agent(agent).build(), now)
    }

    fn deleted(id: &str) -> Vec<Action> {
        vec![Action::DeleteAgent {
            agent_id: id.into(),
            reason: "GC: idle > 24h".into(),
        }]
    }

    #[test]
    fn deletes_workers_silent_for_strictly_more_than_24_hours() {
        let old = |id| polecat(id, "r").created(T0 - 2 * DAY).active(T0);
        assert_eq!(run(old("a"), T0 + DAY), []);
        assert_eq!(run(old("a"), T0 + DAY + 1), deleted("a"));
        let dead = refinery("a", "r")
            .status(AgentStatus::Dead)
            .created(T0 - 2 * DAY);
        assert_eq!(run(dead, T0), deleted("a"));
    }

    #[test]
    fn never_deletes_an_agent_younger_than_24_hours_even_one_never_active() {
        let fresh = polecat("a", "r").created(T0);
        assert_eq!(run(fresh.clone(), T0 + DAY), []);
        assert_eq!(run(fresh, T0 + DAY + 1), deleted("a"));
    }

    #[test]
    fn keeps_hooked_busy_and_non_worker_agents() {
        let now = T0 + 3 * DAY;
        for agent in [
            polecat("a", "r").hook("b"),
            polecat("a", "r").status(AgentStatus::Working),
            polecat("a", "r").status(AgentStatus::Stalled),
            mayor("a"),
            agent("a", AgentRole::Witness, Some("r")),
        ] {
            assert_eq!(run(agent.clone(), now), [], "{agent:?}");
        }
    }
}
