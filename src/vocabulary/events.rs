//! The 11 town events (GASTOWN-DOMAIN.md 2.2) as a typed enum with typed payloads.
//!
//! An event is a fact reported to the town; it is recorded at the door (where an invalid payload
//! is refused, never stored) and applied by the next tick. Stored rows keep the original's
//! columns: `event_type` plus a JSON `payload`, with `agent_id` / `bead_id` beside them.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

/// How an agent process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExitStatus {
    Completed,
    Failed,
}

/// The terminal state a cancelled bead goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CancelStatus {
    Closed,
    Failed,
}

/// `agent_done`: the agent finished its hooked work (`POST …/agents/{a}/done`). Read
/// tolerantly, as the original does: keys it does not know are ignored, never stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentDone {
    pub branch: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pr_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
}

/// `agent_completed`: the agent's process exited (`POST …/agents/{a}/completed`). The
/// container also sends `agentId`, which the path already names: ignored like any unknown key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentCompleted {
    pub status: ExitStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// `pr_status_changed`: the PR host reported a final state for an MR's pull request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PrStatusChanged {
    pub pr_url: String,
    pub pr_state: String,
}

/// `bead_created`: audit of a new bead (the reconciler picks the bead up by itself).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BeadCreated {
    pub bead_type: String,
    #[serde(default)]
    pub rig_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub convoy_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub has_blockers: Option<bool>,
}

/// `bead_cancelled`: a person closed or failed a bead through the API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BeadCancelled {
    pub cancel_status: CancelStatus,
}

/// `convoy_started`: a staged convoy was started.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConvoyStarted {
    pub convoy_id: String,
}

/// `container_status`: the container reported a non-running agent process.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContainerStatus {
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_reason: Option<String>,
}

/// `pr_feedback_detected`: a polled PR has unresolved comments or failing/unchecked CI.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PrFeedbackDetected {
    pub mr_bead_id: String,
    pub pr_url: String,
    pub pr_number: u64,
    pub repo: String,
    pub branch: String,
    pub has_unresolved_comments: bool,
    pub has_failing_checks: bool,
    pub has_unchecked_runs: bool,
}

/// `pr_auto_merge`: a polled PR stayed green through the grace period.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PrAutoMerge {
    pub mr_bead_id: String,
    pub pr_url: String,
}

/// An event without payload fields (`container_eviction`, `nudge_timeout`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NoPayload {}

/// The typed payload of each of the 11 event types.
///
/// It serializes as `{"event_type", "payload"}`; it is read back by [`EventKind::from_parts`],
/// which picks the payload type by name instead of serde's derived reader for adjacently tagged
/// enums (which buffers the whole object to accept either field order: slower, and the largest
/// function of the Wasm).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event_type", content = "payload", rename_all = "snake_case")]
pub enum EventKind {
    AgentDone(AgentDone),
    AgentCompleted(AgentCompleted),
    PrStatusChanged(PrStatusChanged),
    BeadCreated(BeadCreated),
    BeadCancelled(BeadCancelled),
    ConvoyStarted(ConvoyStarted),
    ContainerStatus(ContainerStatus),
    ContainerEviction(NoPayload),
    NudgeTimeout(NoPayload),
    PrFeedbackDetected(PrFeedbackDetected),
    PrAutoMerge(PrAutoMerge),
}

/// A payload that does not fit its event type.
#[derive(Debug, Clone, PartialEq)]
pub struct PayloadError(pub String);

impl std::fmt::Display for PayloadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl EventKind {
    /// The stored `event_type`.
    pub fn type_name(&self) -> &'static str {
        match self {
            EventKind::AgentDone(_) => "agent_done",
            EventKind::AgentCompleted(_) => "agent_completed",
            EventKind::PrStatusChanged(_) => "pr_status_changed",
            EventKind::BeadCreated(_) => "bead_created",
            EventKind::BeadCancelled(_) => "bead_cancelled",
            EventKind::ConvoyStarted(_) => "convoy_started",
            EventKind::ContainerStatus(_) => "container_status",
            EventKind::ContainerEviction(_) => "container_eviction",
            EventKind::NudgeTimeout(_) => "nudge_timeout",
            EventKind::PrFeedbackDetected(_) => "pr_feedback_detected",
            EventKind::PrAutoMerge(_) => "pr_auto_merge",
        }
    }

    /// The stored `payload` JSON.
    pub fn payload(&self) -> Json {
        match serde_json::to_value(self).expect("events serialize") {
            Json::Object(mut m) => m
                .remove("payload")
                .unwrap_or_else(|| Json::Object(Default::default())),
            _ => unreachable!("adjacently tagged enums serialize as objects"),
        }
    }

    /// Rebuilds a typed event from its stored columns.
    pub fn parse(event_type: &str, payload: &str) -> Result<Self, PayloadError> {
        let payload: Json = serde_json::from_slice(payload.as_bytes())
            .map_err(|e| PayloadError(format!("payload is not JSON: {e}")))?;
        Self::from_parts(event_type, payload)
    }

    /// Builds a typed event from a type name and a JSON payload.
    pub fn from_parts(event_type: &str, payload: Json) -> Result<Self, PayloadError> {
        // Through `json::read`, as request bodies are read (`http::handler::body`).
        fn typed<T: DeserializeOwned>(payload: Json) -> Result<T, serde_json::Error> {
            crate::json::read(payload).map_err(|misfit| misfit.error)
        }
        let kind = match event_type {
            "agent_done" => typed(payload).map(EventKind::AgentDone),
            "agent_completed" => typed(payload).map(EventKind::AgentCompleted),
            "pr_status_changed" => typed(payload).map(EventKind::PrStatusChanged),
            "bead_created" => typed(payload).map(EventKind::BeadCreated),
            "bead_cancelled" => typed(payload).map(EventKind::BeadCancelled),
            "convoy_started" => typed(payload).map(EventKind::ConvoyStarted),
            "container_status" => typed(payload).map(EventKind::ContainerStatus),
            "container_eviction" => typed(payload).map(EventKind::ContainerEviction),
            "nudge_timeout" => typed(payload).map(EventKind::NudgeTimeout),
            "pr_feedback_detected" => typed(payload).map(EventKind::PrFeedbackDetected),
            "pr_auto_merge" => typed(payload).map(EventKind::PrAutoMerge),
            other => return Err(PayloadError(format!("unknown event type `{other}`"))),
        };
        kind.map_err(|e| PayloadError(format!("{event_type}: {e}")))
    }
}

/// An event as stored in `town_events`.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedEvent {
    pub event_id: String,
    pub agent_id: Option<String>,
    pub bead_id: Option<String>,
    pub created_at: String,
    pub retry_count: i64,
    /// The typed event, or why its stored payload no longer parses.
    pub kind: Result<EventKind, PayloadError>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn round_trips_through_type_and_payload() {
        let e = EventKind::AgentDone(AgentDone {
            branch: "gt/toast/abc".into(),
            pr_url: None,
            summary: Some("did it".into()),
        });
        assert_eq!(e.type_name(), "agent_done");
        assert_eq!(
            e.payload(),
            json!({"branch": "gt/toast/abc", "summary": "did it"})
        );
        assert_eq!(
            EventKind::parse("agent_done", &e.payload().to_string()).unwrap(),
            e
        );
        let ev = EventKind::ContainerEviction(NoPayload {});
        assert_eq!(ev.payload(), json!({}));
        assert_eq!(EventKind::parse("container_eviction", "{}").unwrap(), ev);
    }

    #[test]
    fn every_type_reads_back_under_its_own_name() {
        let text = |s: &str| s.to_owned();
        let all = [
            EventKind::AgentDone(AgentDone {
                branch: text("b"),
                pr_url: Some(text("u")),
                summary: None,
            }),
            EventKind::AgentCompleted(AgentCompleted {
                status: ExitStatus::Failed,
                reason: Some(text("oom")),
            }),
            EventKind::PrStatusChanged(PrStatusChanged {
                pr_url: text("u"),
                pr_state: text("merged"),
            }),
            EventKind::BeadCreated(BeadCreated {
                bead_type: text("issue"),
                rig_id: Some(text("r")),
                convoy_id: None,
                has_blockers: Some(true),
            }),
            EventKind::BeadCancelled(BeadCancelled {
                cancel_status: CancelStatus::Closed,
            }),
            EventKind::ConvoyStarted(ConvoyStarted {
                convoy_id: text("c"),
            }),
            EventKind::ContainerStatus(ContainerStatus {
                status: text("exited"),
                exit_reason: None,
            }),
            EventKind::ContainerEviction(NoPayload {}),
            EventKind::NudgeTimeout(NoPayload {}),
            EventKind::PrFeedbackDetected(PrFeedbackDetected {
                mr_bead_id: text("m"),
                pr_url: text("u"),
                pr_number: 7,
                repo: text("o/r"),
                branch: text("b"),
                has_unresolved_comments: true,
                has_failing_checks: false,
                has_unchecked_runs: false,
            }),
            EventKind::PrAutoMerge(PrAutoMerge {
                mr_bead_id: text("m"),
                pr_url: text("u"),
            }),
        ];
        for e in all {
            let stored = serde_json::to_value(&e).unwrap();
            assert_eq!(stored["event_type"], e.type_name());
            let back = EventKind::from_parts(e.type_name(), e.payload()).unwrap();
            assert_eq!(back, e);
        }
    }

    #[test]
    fn refuses_bad_payloads_and_unknown_types() {
        assert!(EventKind::from_parts("agent_done", json!({})).is_err());
        assert!(EventKind::from_parts("agent_done", json!({"branch": 3})).is_err());
        assert!(EventKind::from_parts("agent_completed", json!({"status": "exploded"})).is_err());
        assert!(EventKind::from_parts("agent_teleported", json!({})).is_err());
        assert!(EventKind::parse("agent_done", "{not json").is_err());
    }
}
