//! Triage requests (GASTOWN-DOMAIN.md 1.7): questions about an agent that need a decision,
//! filed as `gt:triage-request` issue beads, de-duplicated and capped.

use super::beads;
use super::error::Result;
use super::model::{labels, Bead, BeadType, TriageType};
use super::{agents, object, Ctx, SYSTEM};
use crate::store::beads::NewBead;
use crate::store::triage as store;
use serde_json::json;

/// Most open non-escalation triage requests in a town.
pub const OPEN_CAP: i64 = 5;

/// What the resolver may do with a request filed by the reconciler.
pub const OPTIONS: [&str; 3] = ["RESTART", "CLOSE", "ESCALATE"];

/// Files a triage request about `agent_id` (title `Triage: <reason>`, assignee = the agent,
/// body = the JSON context, metadata `{triage_type, agent_bead_id, hooked_bead_id, context,
/// options}`). Returns `None`, writing nothing, when an open request of the same type exists
/// for the agent, or when the type is not `escalation` and 5 such requests are already open.
pub fn create_request(
    ctx: &Ctx<'_>,
    agent_id: &str,
    triage_type: TriageType,
    reason: &str,
) -> Result<Option<Bead>> {
    let agent = agents::get(ctx, agent_id)?;
    if store::open_exists(ctx.sql, triage_type.as_str(), agent_id)? {
        return Ok(None);
    }
    if triage_type != TriageType::Escalation && store::open_non_escalation(ctx.sql)? >= OPEN_CAP {
        crate::log::warn(
            "triage_cap_reached",
            &[
                ("agent_id", agent_id),
                ("triage_type", triage_type.as_str()),
            ],
        );
        return Ok(None);
    }
    let context = json!({"reason": reason});
    let mut bead = NewBead::new(
        &ctx.ids.new_id(),
        BeadType::Issue,
        &format!("Triage: {reason}"),
    );
    bead.body = Some(context.to_string());
    bead.rig_id = agent.rig_id.clone();
    bead.assignee_agent_bead_id = Some(agent_id.to_owned());
    bead.labels = vec![labels::TRIAGE_REQUEST.to_owned()];
    bead.metadata = object(json!({
        "triage_type": triage_type.as_str(),
        "agent_bead_id": agent_id,
        "hooked_bead_id": agent.current_hook_bead_id,
        "context": context,
        "options": OPTIONS,
    }));
    bead.created_by = Some(SYSTEM.to_owned());
    beads::create(ctx, &bead).map(Some)
}
