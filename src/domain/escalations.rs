//! Escalations an agent raises (the plugin's `gt_escalate`): an `escalation` bead with its
//! `escalation_metadata` row (severity = the priority, category `agent`).

use super::beads;
use super::error::Result;
use super::model::{labels, Bead, BeadType, Priority};
use super::{Ctx, DomainError};
use crate::store::beads::NewBead;
use crate::store::escalations;
use serde_json::{Map, Value as Json};

/// What an agent escalates.
#[derive(Debug, Clone, PartialEq)]
pub struct Raise<'a> {
    pub rig_id: &'a str,
    pub agent_id: Option<&'a str>,
    pub title: &'a str,
    pub body: Option<&'a str>,
    pub priority: Priority,
    pub metadata: Map<String, Json>,
}

pub fn raise(ctx: &Ctx<'_>, r: &Raise<'_>) -> Result<Bead> {
    if r.title.trim().is_empty() {
        return Err(DomainError::invalid("title", "must not be empty"));
    }
    let mut bead = NewBead::new(&ctx.ids.new_id(), BeadType::Escalation, r.title);
    bead.body = r.body.map(str::to_owned);
    bead.rig_id = Some(r.rig_id.to_owned());
    bead.priority = r.priority;
    bead.labels = vec![
        labels::ESCALATION.to_owned(),
        format!("severity:{}", r.priority.as_str()),
    ];
    bead.metadata = r.metadata.clone();
    bead.created_by = r.agent_id.map(str::to_owned);
    let escalation = beads::create(ctx, &bead)?;
    escalations::insert(ctx.sql, &escalation.bead_id, r.priority.as_str(), "agent")?;
    Ok(escalation)
}
