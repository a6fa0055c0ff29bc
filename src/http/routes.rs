//! The route table of API.md: path shape, method, the ids in the path and which credential a
//! route needs. The Worker uses it to admit and forward; the town uses it to dispatch.

use super::{ApiError, Request};

/// A route with the ids taken from its path (already validated).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Health,
    PutTown,
    GetTown,
    DeleteTown,
    PatchConfig,
    CreateRig,
    ListRigs,
    CreateBead,
    ListBeads,
    GetBead(String),
    PatchBead(String),
    CreateConvoy,
    StartConvoy(String),
    GetConvoy(String),
    ListAgents,
    ListReviews,
    ContainerEviction,
    ContainerReady,
    Heartbeat(String),
    Done(String),
    Completed(String),
    RequestChanges(String),
    AgentNudges(String),
    NudgeDelivered { agent: String, nudge: String },
    DebugStatus,
    DebugMetrics,
    DebugDryRun,
    DebugReplay,
    DebugTick,
    DebugDrainStatus,
    DebugNudges,
    DebugBead(String),
    DebugClock,
    DebugBenchSeed,
    DebugBenchFloor,
    DebugBenchStatements,
    DebugBenchCalls,
    DebugBenchCounters,
}

/// Who may call a route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    None,
    /// `GASTOWN_API_TOKEN`.
    Api,
    /// The per-agent token of this agent.
    Agent(String),
    /// `GASTOWN_DEBUG_TOKEN`.
    Debug,
}

/// A request matched to a route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Routed {
    pub town_id: Option<String>,
    pub route: Route,
}

impl Routed {
    /// The credential the route needs.
    pub fn credential(&self) -> Credential {
        use Route::*;
        match &self.route {
            Health => Credential::None,
            Heartbeat(a) | Done(a) | Completed(a) | RequestChanges(a) | AgentNudges(a) => {
                Credential::Agent(a.clone())
            }
            NudgeDelivered { agent, .. } => Credential::Agent(agent.clone()),
            DebugStatus | DebugMetrics | DebugDryRun | DebugReplay | DebugTick
            | DebugDrainStatus | DebugNudges | DebugBead(_) | DebugClock | DebugBenchSeed
            | DebugBenchFloor | DebugBenchStatements | DebugBenchCalls | DebugBenchCounters => {
                Credential::Debug
            }
            _ => Credential::Api,
        }
    }

    /// Whether the route changes state (and so honours `Idempotency-Key`).
    pub fn mutates(&self) -> bool {
        use Route::*;
        !matches!(
            self.route,
            Health
                | GetTown
                | ListRigs
                | ListBeads
                | GetBead(_)
                | GetConvoy(_)
                | ListAgents
                | ListReviews
                | AgentNudges(_)
                | DebugStatus
                | DebugMetrics
                | DebugDryRun
                | DebugReplay
                | DebugDrainStatus
                | DebugNudges
                | DebugBead(_)
                | DebugBenchCounters
        )
    }
}

/// Whether `s` is a valid id: 1-128 characters of `[A-Za-z0-9._:-]`.
pub fn valid_id(s: &str) -> bool {
    (1..=128).contains(&s.len())
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b':' | b'-'))
}

fn id(s: &str, what: &str) -> Result<String, ApiError> {
    if valid_id(s) {
        Ok(s.to_owned())
    } else {
        Err(ApiError::bad_id(what))
    }
}

/// Matches a request to its route: 404 for an unknown path, 405 for a known path with another
/// method, 400 for a malformed id.
pub fn route(req: &Request) -> Result<Routed, ApiError> {
    use Route::*;
    let segs = req.segments();
    let m = req.method.as_str();
    let pick = |options: Vec<(&str, Route)>| -> Result<Route, ApiError> {
        options
            .into_iter()
            .find(|(method, _)| *method == m)
            .map(|(_, r)| r)
            .ok_or_else(|| ApiError::method_not_allowed(m, &req.path))
    };
    let (town, route) = match segs.as_slice() {
        ["health"] => (None, pick(vec![("GET", Health)])?),
        ["api", "towns", t, rest @ ..] => {
            let t = id(t, "town id")?;
            let r = match rest {
                [] => pick(vec![
                    ("PUT", PutTown),
                    ("GET", GetTown),
                    ("DELETE", DeleteTown),
                ])?,
                ["config"] => pick(vec![("PATCH", PatchConfig)])?,
                ["rigs"] => pick(vec![("POST", CreateRig), ("GET", ListRigs)])?,
                ["beads"] => pick(vec![("POST", CreateBead), ("GET", ListBeads)])?,
                ["beads", b] => {
                    let b = id(b, "bead id")?;
                    pick(vec![("GET", GetBead(b.clone())), ("PATCH", PatchBead(b))])?
                }
                ["convoys"] => pick(vec![("POST", CreateConvoy)])?,
                ["convoys", c] => pick(vec![("GET", GetConvoy(id(c, "convoy id")?))])?,
                ["convoys", c, "start"] => pick(vec![("POST", StartConvoy(id(c, "convoy id")?))])?,
                ["agents"] => pick(vec![("GET", ListAgents)])?,
                ["reviews"] => pick(vec![("GET", ListReviews)])?,
                ["container-eviction"] => pick(vec![("POST", ContainerEviction)])?,
                ["container-ready"] => pick(vec![("POST", ContainerReady)])?,
                ["agents", a, action] => {
                    let a = id(a, "agent id")?;
                    match *action {
                        "heartbeat" => pick(vec![("POST", Heartbeat(a))])?,
                        "done" => pick(vec![("POST", Done(a))])?,
                        "completed" => pick(vec![("POST", Completed(a))])?,
                        "request-changes" => pick(vec![("POST", RequestChanges(a))])?,
                        "nudges" => pick(vec![("GET", AgentNudges(a))])?,
                        _ => return Err(ApiError::not_found("route")),
                    }
                }
                ["agents", a, "nudges", n, "delivered"] => {
                    let agent = id(a, "agent id")?;
                    let nudge = id(n, "nudge id")?;
                    pick(vec![("POST", NudgeDelivered { agent, nudge })])?
                }
                _ => return Err(ApiError::not_found("route")),
            };
            (Some(t), r)
        }
        ["debug", "towns", t, rest @ ..] => {
            let t = id(t, "town id")?;
            let r = match rest {
                ["status"] => pick(vec![("GET", DebugStatus)])?,
                ["metrics"] => pick(vec![("GET", DebugMetrics)])?,
                ["reconcile-dry-run"] => pick(vec![("POST", DebugDryRun)])?,
                ["replay-events"] => pick(vec![("POST", DebugReplay)])?,
                ["tick"] => pick(vec![("POST", DebugTick)])?,
                ["drain-status"] => pick(vec![("GET", DebugDrainStatus)])?,
                ["nudges"] => pick(vec![("GET", DebugNudges)])?,
                ["beads", b] => pick(vec![("GET", DebugBead(id(b, "bead id")?))])?,
                ["clock"] => pick(vec![("POST", DebugClock)])?,
                ["bench", "seed"] => pick(vec![("POST", DebugBenchSeed)])?,
                ["bench", "floor"] => pick(vec![("POST", DebugBenchFloor)])?,
                ["bench", "statements"] => pick(vec![("POST", DebugBenchStatements)])?,
                ["bench", "calls"] => pick(vec![("POST", DebugBenchCalls)])?,
                ["bench", "counters"] => pick(vec![("GET", DebugBenchCounters)])?,
                _ => return Err(ApiError::not_found("route")),
            };
            (Some(t), r)
        }
        _ => return Err(ApiError::not_found("route")),
    };
    Ok(Routed {
        town_id: town,
        route,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(method: &str, path: &str) -> Result<Routed, ApiError> {
        route(&Request::new(method, path))
    }

    #[test]
    fn matches_routes_with_their_ids() {
        let got = r("POST", "/api/towns/t1/agents/a-1/done").unwrap();
        assert_eq!(got.town_id.as_deref(), Some("t1"));
        assert_eq!(got.route, Route::Done("a-1".into()));
        assert_eq!(got.credential(), Credential::Agent("a-1".into()));
        assert_eq!(
            r("GET", "/api/towns/t1/agents").unwrap().credential(),
            Credential::Api
        );
        assert_eq!(
            r("GET", "/debug/towns/t1/status").unwrap().credential(),
            Credential::Debug
        );
        assert_eq!(r("GET", "/health").unwrap().credential(), Credential::None);
    }

    #[test]
    fn tells_unknown_paths_wrong_methods_and_bad_ids_apart() {
        assert_eq!(r("GET", "/nope").unwrap_err().status, 404);
        assert_eq!(r("GET", "/api/towns/t1/whatever").unwrap_err().status, 404);
        assert_eq!(r("POST", "/api/towns/t1").unwrap_err().status, 405);
        assert_eq!(r("GET", "/api/towns/t%201").unwrap_err().status, 400);
        assert_eq!(
            r("GET", &format!("/api/towns/{}", "x".repeat(129)))
                .unwrap_err()
                .status,
            400
        );
        assert!(r("GET", &format!("/api/towns/{}", "x".repeat(128))).is_ok());
    }
}
