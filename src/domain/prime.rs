//! What an agent is told when its session starts or is compacted (`GET …/prime`): itself, its
//! hooked bead, its undelivered mail (left undelivered: checking mail delivers it) and the open
//! issues of its rig (of the town for the mayor).

use super::error::Result;
use super::{agents, beads, mail, Ctx};
use crate::store::beads::{self as store, Filter};
use crate::vocabulary::model::{Agent, Bead, BeadStatus, BeadType, Mail};
use serde::Serialize;

/// Most open beads listed.
pub const OPEN_BEADS_MAX: usize = 50;

/// The prime context.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Prime {
    pub agent: Agent,
    pub hooked_bead: Option<Bead>,
    pub undelivered_mail: Vec<Mail>,
    pub open_beads: Vec<Bead>,
}

pub fn prime(ctx: &Ctx<'_>, agent_id: &str) -> Result<Prime> {
    let agent = agents::get(ctx, agent_id)?;
    let hooked_bead = match agent.current_hook_bead_id.as_deref() {
        Some(b) => Some(beads::get(ctx, b)?),
        None => None,
    };
    let mut open_beads = store::list(
        ctx.sql,
        &Filter {
            status: Some(BeadStatus::Open),
            bead_type: Some(BeadType::Issue),
            rig_id: agent.rig_id.clone(),
        },
    )?;
    open_beads.truncate(OPEN_BEADS_MAX);
    Ok(Prime {
        undelivered_mail: mail::undelivered(ctx, agent_id)?,
        hooked_bead,
        open_beads,
        agent,
    })
}
