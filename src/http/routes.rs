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
    MayorMessage,
    ListEscalations,
    AcknowledgeEscalation(String),
    /// `/api/towns/{t}/rigs/{r}/agents/{a}/<call>`: the container or the agent plugin.
    Agent {
        rig: String,
        agent: String,
        call: AgentCall,
    },
    /// `/api/towns/{t}/rigs/{r}/<tool>`: an agent's tool; the caller is named by its token or
    /// the `X-Gastown-Agent-Id` header.
    Rig {
        rig: String,
        tool: RigTool,
    },
    /// `/api/towns/{t}/<route>`: the container about itself.
    Container(ContainerCall),
    DebugStatus,
    /// `GET /debug/towns/{t}/status/ws`: the live status over a WebSocket.
    DebugStatusSocket,
    DebugMetrics,
    DebugDryRun,
    DebugReplay,
    DebugTick,
    DebugDrainStatus,
    DebugNudges,
    DebugBead(String),
    DebugClock,
    /// Dev only: a deliberate panic, whose logged stack the runtime tests symbolize.
    DebugPanic,
    DebugFault,
    DebugBenchSeed,
    DebugBenchFloor,
    DebugBenchStatements,
    DebugBenchCalls,
    DebugBenchCounters,
}

/// What an agent-scoped container route does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentCall {
    Heartbeat,
    Done,
    Completed,
    Waiting,
    RequestChanges,
    PendingNudges,
    NudgeDelivered,
    Prime,
    Status,
    Checkpoint,
    Mail,
    EvictionContext,
}

/// A rig-scoped agent tool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RigTool {
    TriageResolve,
    Nudge,
    SendMail,
    Escalate,
    GetBead(String),
    CloseBead(String),
    AgentEvents,
}

/// A town-scoped container route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContainerCall {
    Eviction,
    Ready,
    RefreshToken,
    DrainStatus,
    MayorId,
}

/// Who may call a route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    None,
    /// `GASTOWN_API_TOKEN`.
    Api,
    /// A container token of the town, or the agent token of this rig (and agent, when named).
    Jwt {
        rig: String,
        agent: Option<String>,
    },
    /// A container token of the town (an expired one when `tolerate_expired`), or the API token.
    ContainerOrApi {
        tolerate_expired: bool,
    },
    /// `GASTOWN_DEBUG_TOKEN`.
    Debug,
    /// `GASTOWN_DEBUG_TOKEN`, or a status ticket of the town offered as a WebSocket protocol
    /// (a browser cannot set `Authorization` on a WebSocket; `debug::ticket`).
    DebugOrTicket,
}

/// Which body shape a route answers with (API.md "Two answer shapes").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// `{"error": {"code", "message"}}` on errors; bodies as listed.
    People,
    /// The original's `{success, data}` / `{success: false, error, code}`.
    Envelope,
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
            Agent { rig, agent, .. } => Credential::Jwt {
                rig: rig.clone(),
                agent: Some(agent.clone()),
            },
            Rig { rig, .. } => Credential::Jwt {
                rig: rig.clone(),
                agent: None,
            },
            Container(call) => Credential::ContainerOrApi {
                tolerate_expired: *call == ContainerCall::RefreshToken,
            },
            DebugStatus | DebugMetrics | DebugDryRun | DebugReplay | DebugTick
            | DebugDrainStatus | DebugNudges | DebugBead(_) | DebugClock | DebugPanic
            | DebugFault | DebugBenchSeed | DebugBenchFloor | DebugBenchStatements
            | DebugBenchCalls | DebugBenchCounters => Credential::Debug,
            DebugStatusSocket => Credential::DebugOrTicket,
            _ => Credential::Api,
        }
    }

    /// The answer shape of the route.
    pub fn shape(&self) -> Shape {
        match self.route {
            Route::Agent { .. } | Route::Rig { .. } | Route::Container(_) => Shape::Envelope,
            _ => Shape::People,
        }
    }

    /// Whether the route reads a body. One that does not still accepts none or `{}` (clients
    /// send an empty object), but any other body is a 400: a route never acts on a body it
    /// ignored.
    pub fn takes_body(&self) -> bool {
        use Route::*;
        match &self.route {
            Agent { call, .. } => !matches!(
                call,
                AgentCall::PendingNudges | AgentCall::Prime | AgentCall::Mail
            ),
            Rig { tool, .. } => !matches!(tool, RigTool::GetBead(_)),
            Container(call) => *call == ContainerCall::Ready,
            route => matches!(
                route,
                PutTown
                    | PatchConfig
                    | CreateRig
                    | CreateBead
                    | PatchBead(_)
                    | CreateConvoy
                    | MayorMessage
                    | DebugReplay
                    | DebugClock
                    | DebugFault
                    | DebugBenchSeed
                    | DebugBenchFloor
                    | DebugBenchStatements
                    | DebugBenchCalls
            ),
        }
    }

    /// Whether the route changes state (and so honours `Idempotency-Key`).
    pub fn mutates(&self) -> bool {
        use Route::*;
        match &self.route {
            Agent { call, .. } => !matches!(call, AgentCall::PendingNudges | AgentCall::Prime),
            Rig { tool, .. } => !matches!(tool, RigTool::GetBead(_)),
            Container(call) => !matches!(call, ContainerCall::DrainStatus | ContainerCall::MayorId),
            route => !matches!(
                route,
                Health
                    | GetTown
                    | ListRigs
                    | ListBeads
                    | GetBead(_)
                    | GetConvoy(_)
                    | ListAgents
                    | ListReviews
                    | ListEscalations
                    | DebugStatus
                    | DebugStatusSocket
                    | DebugMetrics
                    | DebugDryRun
                    | DebugReplay
                    | DebugDrainStatus
                    | DebugNudges
                    | DebugBead(_)
                    | DebugPanic
                    | DebugBenchCounters
            ),
        }
    }
}

/// The answer shape of a request that matched no route: container-facing paths (under
/// `/api/towns/{t}/rigs/{r}/…` and the town's container routes) answer in the envelope.
pub fn shape_of_path(req: &Request) -> Shape {
    match req.segments().as_slice() {
        ["api", "towns", _, "rigs", _, _, ..] => Shape::Envelope,
        ["api", "towns", _, name] if CONTAINER_ROUTES.contains(name) => Shape::Envelope,
        _ => Shape::People,
    }
}

/// The town-scoped routes the container calls (some are not served: a 404 in the envelope).
const CONTAINER_ROUTES: [&str; 8] = [
    "container-eviction",
    "container-ready",
    "refresh-container-token",
    "drain-status",
    "mayor-id",
    "container-registry",
    "container-events",
    "db-snapshot",
];

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
        ["health"] => (None, pick(vec![("GET", Health), ("HEAD", Health)])?),
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
                ["rigs", r, "agents", a, call] => {
                    let (rig, agent) = (id(r, "rig id")?, id(a, "agent id")?);
                    let (method, call) = agent_call(call).ok_or_else(not_found)?;
                    pick(vec![(method, Agent { rig, agent, call })])?
                }
                ["rigs", r, tool @ ..] => {
                    let rig = id(r, "rig id")?;
                    let (method, tool) = rig_tool(tool)?.ok_or_else(not_found)?;
                    pick(vec![(method, Rig { rig, tool })])?
                }
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
                ["mayor", "message"] => pick(vec![("POST", MayorMessage)])?,
                ["escalations"] => pick(vec![("GET", ListEscalations)])?,
                ["escalations", e, "acknowledge"] => pick(vec![(
                    "POST",
                    AcknowledgeEscalation(id(e, "escalation id")?),
                )])?,
                [name] => {
                    let (method, call) = container_call(name).ok_or_else(not_found)?;
                    pick(vec![(method, Container(call))])?
                }
                _ => return Err(not_found()),
            };
            (Some(t), r)
        }
        ["debug", "towns", t, rest @ ..] => {
            let t = id(t, "town id")?;
            let r = match rest {
                ["status"] => pick(vec![("GET", DebugStatus)])?,
                ["status", "ws"] => pick(vec![("GET", DebugStatusSocket)])?,
                ["metrics"] => pick(vec![("GET", DebugMetrics)])?,
                ["reconcile-dry-run"] => pick(vec![("POST", DebugDryRun)])?,
                ["replay-events"] => pick(vec![("POST", DebugReplay)])?,
                ["tick"] => pick(vec![("POST", DebugTick)])?,
                ["drain-status"] => pick(vec![("GET", DebugDrainStatus)])?,
                ["nudges"] => pick(vec![("GET", DebugNudges)])?,
                ["beads", b] => pick(vec![("GET", DebugBead(id(b, "bead id")?))])?,
                ["clock"] => pick(vec![("POST", DebugClock)])?,
                ["panic"] => pick(vec![("POST", DebugPanic)])?,
                ["fault"] => pick(vec![("POST", DebugFault)])?,
                ["bench", "seed"] => pick(vec![("POST", DebugBenchSeed)])?,
                ["bench", "floor"] => pick(vec![("POST", DebugBenchFloor)])?,
                ["bench", "statements"] => pick(vec![("POST", DebugBenchStatements)])?,
                ["bench", "calls"] => pick(vec![("POST", DebugBenchCalls)])?,
                ["bench", "counters"] => pick(vec![("GET", DebugBenchCounters)])?,
                _ => return Err(not_found()),
            };
            (Some(t), r)
        }
        _ => return Err(not_found()),
    };
    Ok(Routed {
        town_id: town,
        route,
    })
}

fn not_found() -> ApiError {
    ApiError::no_route()
}

fn agent_call(name: &str) -> Option<(&'static str, AgentCall)> {
    use AgentCall::*;
    Some(match name {
        "heartbeat" => ("POST", Heartbeat),
        "done" => ("POST", Done),
        "completed" => ("POST", Completed),
        "waiting" => ("POST", Waiting),
        "request-changes" => ("POST", RequestChanges),
        "pending-nudges" => ("GET", PendingNudges),
        "nudge-delivered" => ("POST", NudgeDelivered),
        "prime" => ("GET", Prime),
        "status" => ("POST", Status),
        "checkpoint" => ("POST", Checkpoint),
        "mail" => ("GET", Mail),
        "eviction-context" => ("POST", EvictionContext),
        _ => return None,
    })
}

fn rig_tool(path: &[&str]) -> Result<Option<(&'static str, RigTool)>, ApiError> {
    use RigTool::*;
    Ok(Some(match path {
        ["triage", "resolve"] => ("POST", TriageResolve),
        ["nudge"] => ("POST", Nudge),
        ["mail"] => ("POST", SendMail),
        ["escalations"] => ("POST", Escalate),
        ["beads", b] => ("GET", GetBead(id(b, "bead id")?)),
        ["beads", b, "close"] => ("POST", CloseBead(id(b, "bead id")?)),
        ["agent-events"] => ("POST", AgentEvents),
        _ => return Ok(None),
    }))
}

fn container_call(name: &str) -> Option<(&'static str, ContainerCall)> {
    use ContainerCall::*;
    Some(match name {
        "container-eviction" => ("POST", Eviction),
        "container-ready" => ("POST", Ready),
        "refresh-container-token" => ("POST", RefreshToken),
        "drain-status" => ("GET", DrainStatus),
        "mayor-id" => ("GET", MayorId),
        _ => return None,
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
        let got = r("POST", "/api/towns/t1/rigs/r1/agents/a-1/done").unwrap();
        assert_eq!(got.town_id.as_deref(), Some("t1"));
        assert_eq!(
            got.route,
            Route::Agent {
                rig: "r1".into(),
                agent: "a-1".into(),
                call: AgentCall::Done
            }
        );
        assert_eq!(
            got.credential(),
            Credential::Jwt {
                rig: "r1".into(),
                agent: Some("a-1".into())
            }
        );
        assert_eq!(got.shape(), Shape::Envelope);
        let events = r("POST", "/api/towns/t1/rigs/r1/agent-events").unwrap();
        assert_eq!(
            events.route,
            Route::Rig {
                rig: "r1".into(),
                tool: RigTool::AgentEvents
            }
        );
        assert_eq!(
            r("GET", "/api/towns/t1/rigs/r1/agent-events")
                .unwrap_err()
                .status,
            405
        );
        let close = r("POST", "/api/towns/t1/rigs/r1/beads/b1/close").unwrap();
        assert_eq!(
            close.credential(),
            Credential::Jwt {
                rig: "r1".into(),
                agent: None
            }
        );
        assert_eq!(
            r("POST", "/api/towns/t1/refresh-container-token")
                .unwrap()
                .credential(),
            Credential::ContainerOrApi {
                tolerate_expired: true
            }
        );
        assert_eq!(
            r("GET", "/api/towns/t1/agents").unwrap().credential(),
            Credential::Api
        );
        assert_eq!(
            r("GET", "/api/towns/t1/agents").unwrap().shape(),
            Shape::People
        );
        assert_eq!(
            r("GET", "/debug/towns/t1/status").unwrap().credential(),
            Credential::Debug
        );
        assert_eq!(r("GET", "/health").unwrap().credential(), Credential::None);
    }

    #[test]
    fn the_panic_route_is_a_debug_route_without_body_or_effect() {
        let panic = r("POST", "/debug/towns/t1/panic").unwrap();
        assert_eq!(panic.route, Route::DebugPanic);
        assert_eq!(panic.credential(), Credential::Debug);
        assert!(!panic.takes_body() && !panic.mutates());
        assert_eq!(r("GET", "/debug/towns/t1/panic").unwrap_err().status, 405);
    }

    #[test]
    fn the_first_revision_s_callback_paths_are_gone() {
        for (m, p) in [
            ("POST", "/api/towns/t1/agents/a1/heartbeat"),
            ("POST", "/api/towns/t1/agents/a1/done"),
            ("GET", "/api/towns/t1/agents/a1/nudges"),
            ("POST", "/api/towns/t1/agents/a1/nudges/n1/delivered"),
        ] {
            assert_eq!(r(m, p).unwrap_err().status, 404, "{p}");
        }
    }

    #[test]
    fn unknown_container_paths_answer_in_the_envelope() {
        let shape = |p: &str| shape_of_path(&Request::new("GET", p));
        assert_eq!(shape("/api/towns/t/rigs/r/agents/a/nope"), Shape::Envelope);
        assert_eq!(shape("/api/towns/t/container-registry"), Shape::Envelope);
        assert_eq!(shape("/api/towns/t/nope"), Shape::People);
        assert_eq!(shape("/api/towns/t/rigs"), Shape::People);
    }

    #[test]
    fn tells_unknown_paths_wrong_methods_and_bad_ids_apart() {
        assert_eq!(r("GET", "/nope").unwrap_err().status, 404);
        assert_eq!(r("GET", "/api/towns/t1/whatever").unwrap_err().status, 404);
        assert_eq!(r("POST", "/api/towns/t1").unwrap_err().status, 405);
        assert_eq!(
            r("GET", "/api/towns/t1/rigs/r1/agents/a1/done")
                .unwrap_err()
                .status,
            405
        );
        assert_eq!(r("GET", "/api/towns/t%201").unwrap_err().status, 400);
        assert_eq!(
            r("GET", "/api/towns/t1/rigs/r%201/agents/a/prime")
                .unwrap_err()
                .status,
            400
        );
        assert_eq!(
            r("GET", &format!("/api/towns/{}", "x".repeat(129)))
                .unwrap_err()
                .status,
            400
        );
        assert!(r("GET", &format!("/api/towns/{}", "x".repeat(128))).is_ok());
    }
}
