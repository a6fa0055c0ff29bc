//! The tick's side effects as data, in the manner of a plan handed out and its results reported
//! back: [`plan`] turns the effects the actions left into [`call::Call`]s (synchronous
//! bookkeeping first: dispatch counters, start bodies); [`calls`] makes them (concurrently, none
//! started after the tick's deadline) and hands back each one's [`call::Outcome`] as a value;
//! [`settle`] decides what each outcome means for the town, in one exhaustive `match`.
//! [`pull_requests`] is what a poll or a merge attempt means for a merge request.

pub mod call;
pub mod calls;
pub mod plan;
pub mod pull_requests;
pub mod settle;

use crate::domain::Ctx;
use crate::effects::remotes::{Remotes, Tally};
use crate::metrics::writer::Analytics;
use crate::ports::{Clock, Http};
use crate::vocabulary::actions::Effect;
use crate::vocabulary::time::Millis;

/// Performs `effects`: plan, calls, settle; returns their tally.
pub async fn perform<H: Http>(
    ctx: &Ctx<'_>,
    clock: &dyn Clock,
    analytics: &Analytics<'_>,
    http: &H,
    remotes: &Remotes,
    effects: &[Effect],
    started_at: Millis,
) -> Tally {
    let plan = plan::plan(ctx, remotes, effects);
    let header = plan.header.clone();
    let ran = calls::run(http, clock, remotes, plan, started_at + remotes.deadline_ms).await;
    let settle_ctx = Ctx {
        sql: ctx.sql,
        ids: ctx.ids,
        now: clock.now_ms().max(ctx.now),
    };
    settle::settle(&settle_ctx, analytics, ran, &header)
}
