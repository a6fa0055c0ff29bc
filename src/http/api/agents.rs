//! `GET /agents`, a page at a time (the agents' own calls are in [`crate::http::wire`]).

use super::{ok, page, show};
use crate::domain::{agents, Ctx};
use crate::http::handler::Outcome;
use crate::http::{ApiError, Request};

pub fn list(ctx: &Ctx<'_>, req: &Request) -> Result<Outcome, ApiError> {
    let found = agents::page(ctx, &page::requested(req)?)?;
    Ok(ok(page::answer("agents", found, |a| show(&a))))
}
