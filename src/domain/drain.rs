//! Draining (GASTOWN-DOMAIN.md 5.3): while the container is being evicted, dispatches pause.
//! Eviction starts a drain with a fresh nonce; it ends when the container reports ready with
//! that nonce, or when a heartbeat comes from a different container instance.

use super::error::Result;
use super::{Ctx, DomainError};
use crate::store::events::Subject;
use crate::store::{container, town};
use crate::vocabulary::events::{EventKind, NoPayload};

/// The current drain nonce, `None` when not draining.
pub fn nonce(ctx: &Ctx<'_>) -> Result<Option<String>> {
    Ok(current(ctx)?.drain.map(|d| d.nonce))
}

fn current(ctx: &Ctx<'_>) -> Result<town::Town> {
    town::get(ctx.sql)?.ok_or_else(|| DomainError::not_found("town", "(this town)"))
}

/// The container is being evicted: records `container_eviction`, starts draining with a new
/// nonce and returns it.
pub fn evict(ctx: &Ctx<'_>) -> Result<String> {
    current(ctx)?;
    ctx.record(
        &EventKind::ContainerEviction(NoPayload {}),
        &Subject::town(),
    )?;
    let nonce = ctx.ids.new_id();
    town::start_drain(ctx.sql, &nonce, ctx.now)?;
    Ok(nonce)
}

/// The replacement container is ready: ends the drain when `nonce` matches. Returns whether
/// the town is no longer draining: `true` when it was not draining or the nonce matched, `false`
/// (nothing changed) on a mismatch.
pub fn container_ready(ctx: &Ctx<'_>, nonce: &str) -> Result<bool> {
    match current(ctx)?.drain {
        None => Ok(true),
        Some(d) if d.nonce == nonce => {
            town::clear_drain(ctx.sql)?;
            Ok(true)
        }
        Some(_) => Ok(false),
    }
}

/// A heartbeat named its container instance: a different instance than the one last seen
/// ends a drain (the old container is gone). The instance is remembered.
pub fn saw_instance(ctx: &Ctx<'_>, instance_id: &str) -> Result<()> {
    let draining = current(ctx)?.drain.is_some();
    let previous = container::instance_id(ctx.sql)?;
    if draining && previous.as_deref().is_some_and(|p| p != instance_id) {
        town::clear_drain(ctx.sql)?;
    }
    if previous.as_deref() != Some(instance_id) {
        container::set_instance_id(ctx.sql, instance_id)?;
    }
    Ok(())
}
