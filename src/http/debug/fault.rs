//! The injected tick failure of the fault suite (development only): `POST
//! /debug/towns/{t}/fault {fail_after}` makes the town's next tick panic right after the named
//! phase ends, as if the isolate had died there. With `--panic-unwind` the panic fails the alarm
//! handler, and the platform retries the alarm; what the phases before it committed stays.
//!
//! The arming lives in the isolate's memory, keyed by town, and is used up by the tick it fails.
//! The Worker carries it in every build, but only `ENVIRONMENT=development` lets the route arm
//! it (403 otherwise, as the test clock), so a production town never fails this way.

use super::DebugEnv;
use crate::domain::Ctx;
use crate::http::{ApiError, Request, Response};
use crate::tick::phases::{Phase, PhaseWatch};
use serde::Deserialize;
use serde_json::json;
use std::cell::RefCell;
use std::collections::HashMap;

thread_local! {
    static ARMED: RefCell<HashMap<String, Phase>> = RefCell::new(HashMap::new());
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FaultBody {
    fail_after: String,
}

/// Arms the failure of the town's next tick.
pub fn arm(ctx: &Ctx<'_>, env: &DebugEnv, req: &Request) -> Result<Response, ApiError> {
    if !env.development {
        return Err(ApiError::forbidden(
            "injected failures exist only when ENVIRONMENT=development",
        ));
    }
    let town = super::existing_town(ctx)?;
    let body: FaultBody = crate::http::handler::body(req)?;
    let phase = Phase::ALL
        .into_iter()
        .find(|p| p.name() == body.fail_after)
        .ok_or_else(|| {
            let names: Vec<&str> = Phase::ALL.iter().map(|p| p.name()).collect();
            ApiError::invalid("fail_after", format!("must be one of {}", names.join(", ")))
        })?;
    ARMED.with(|a| a.borrow_mut().insert(town.town_id, phase));
    Ok(Response::json(200, &json!({"fail_after": phase.name()})))
}

/// The phase hook of a town's tick: panics at the end of the armed phase, once.
pub struct Injected<'a> {
    pub town_id: &'a str,
}

impl PhaseWatch for Injected<'_> {
    fn ended(&self, phase: Phase) {
        let armed = ARMED.with(|a| {
            let mut armed = a.borrow_mut();
            let hit = armed.get(self.town_id) == Some(&phase);
            if hit {
                armed.remove(self.town_id);
            }
            hit
        });
        if armed {
            panic!("injected failure after the {} phase", phase.name());
        }
    }
}
