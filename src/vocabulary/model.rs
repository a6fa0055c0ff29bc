//! The entities of a town (GASTOWN-DOMAIN.md section 1) as Rust types, with the exact state
//! names the rules and the stored rows use.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json};

/// A closed set of names stored as text: `as_str` gives the stored name, `parse` reads it back.
macro_rules! names {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum $name {
            $($(#[$vdoc])* #[serde(rename = $text)] $variant),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }

            pub fn parse(s: &str) -> Option<Self> {
                match s {
                    $($text => Some($name::$variant),)+
                    _ => None,
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

names!(
    /// What a bead is.
    BeadType {
        Issue = "issue",
        Message = "message",
        Escalation = "escalation",
        MergeRequest = "merge_request",
        Convoy = "convoy",
        Molecule = "molecule",
        Agent = "agent",
    }
);

names!(
    /// Where a bead is; `closed` and `failed` are terminal and immutable.
    BeadStatus {
        Open = "open",
        InProgress = "in_progress",
        InReview = "in_review",
        Closed = "closed",
        Failed = "failed",
    }
);

impl BeadStatus {
    pub fn is_terminal(self) -> bool {
        matches!(self, BeadStatus::Closed | BeadStatus::Failed)
    }
}

names!(
    Priority {
        Low = "low",
        Medium = "medium",
        High = "high",
        Critical = "critical",
    }
);

names!(
    /// An agent's job.
    AgentRole {
        Polecat = "polecat",
        Refinery = "refinery",
        Mayor = "mayor",
        /// Legacy, accepted on read.
        Witness = "witness",
    }
);

names!(
    AgentStatus {
        Idle = "idle",
        Working = "working",
        Stalled = "stalled",
        Dead = "dead",
        Waiting = "waiting",
    }
);

names!(
    /// `A blocks B`: B waits for A; `tracks`: MR -> source, member -> convoy.
    DependencyType {
        Blocks = "blocks",
        Tracks = "tracks",
        ParentChild = "parent-child",
    }
);

names!(
    MergeMode {
        ReviewThenLand = "review-then-land",
        ReviewAndMerge = "review-and-merge",
    }
);

names!(
    NudgeMode {
        WaitIdle = "wait-idle",
        Immediate = "immediate",
        Queue = "queue",
    }
);

names!(
    NudgePriority {
        Normal = "normal",
        Urgent = "urgent",
    }
);

names!(
    /// Kinds of triage request (label `gt:triage-request`).
    TriageType {
        DirtyPolecat = "dirty_polecat",
        StuckAgent = "stuck_agent",
        HelpRequest = "help_request",
        ZombieConfirm = "zombie_confirm",
        CrashLoop = "crash_loop",
        Escalation = "escalation",
    }
);

/// Well-known labels.
pub mod labels {
    pub const TRIAGE_REQUEST: &str = "gt:triage-request";
    pub const TRIAGE: &str = "gt:triage";
    pub const REWORK: &str = "gt:rework";
    pub const PR_FEEDBACK: &str = "gt:pr-feedback";
    pub const PR_FIXUP: &str = "gt:pr-fixup";
    pub const MERGE_REQUEST: &str = "gt:merge-request";
    pub const CONVOY: &str = "gt:convoy";
    pub const ESCALATION: &str = "gt:escalation";
}

/// A bead row.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Bead {
    pub bead_id: String,
    #[serde(rename = "type")]
    pub bead_type: BeadType,
    pub status: BeadStatus,
    pub title: String,
    pub body: Option<String>,
    pub rig_id: Option<String>,
    pub parent_bead_id: Option<String>,
    pub assignee_agent_bead_id: Option<String>,
    pub priority: Priority,
    pub labels: Vec<String>,
    pub metadata: Map<String, Json>,
    pub dispatch_attempts: i64,
    pub last_dispatch_attempt_at: Option<String>,
    pub created_by: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub closed_at: Option<String>,
}

impl Bead {
    pub fn has_label(&self, label: &str) -> bool {
        self.labels.iter().any(|l| l == label)
    }

    /// A metadata flag that the original tests for truthiness (`1`, `true`, non-empty).
    pub fn flag(&self, key: &str) -> bool {
        match self.metadata.get(key) {
            None | Some(Json::Null) => false,
            Some(Json::Bool(b)) => *b,
            Some(Json::Number(n)) => n.as_f64().is_some_and(|x| x != 0.0),
            Some(Json::String(s)) => !s.is_empty(),
            Some(_) => true,
        }
    }

    pub fn meta_str(&self, key: &str) -> Option<&str> {
        self.metadata.get(key).and_then(Json::as_str)
    }
}

/// Why a bead failed, kept with its `status_changed` event (`failure_reason` in the metadata).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailureReason {
    pub code: String,
    pub message: String,
    /// Who decided: `container`, `scheduler`, `refinery`, `user`...
    pub source: String,
}

impl FailureReason {
    pub fn new(code: &str, message: impl Into<String>, source: &str) -> Self {
        Self {
            code: code.to_owned(),
            message: message.into(),
            source: source.to_owned(),
        }
    }
}

/// One entry of a bead's history (`bead_events`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BeadEvent {
    pub bead_event_id: String,
    pub bead_id: String,
    /// The agent (or `system`, `api`) that caused it.
    pub agent_id: Option<String>,
    pub event_type: String,
    pub old_value: Option<String>,
    pub new_value: Option<String>,
    pub metadata: Map<String, Json>,
    pub created_at: String,
}

/// An agent: its bead's identity and rig plus `agent_metadata`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Agent {
    pub agent_id: String,
    pub role: AgentRole,
    pub name: String,
    pub identity: String,
    pub rig_id: Option<String>,
    pub status: AgentStatus,
    pub current_hook_bead_id: Option<String>,
    pub dispatch_attempts: i64,
    pub checkpoint: Option<String>,
    pub last_activity_at: Option<String>,
    pub last_event_type: Option<String>,
    pub last_event_at: Option<String>,
    pub active_tools: Vec<String>,
    pub stalled_at: Option<String>,
    pub created_at: String,
}

/// A merge request's review row.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Review {
    pub bead_id: String,
    pub branch: String,
    pub target_branch: String,
    pub merge_commit: Option<String>,
    pub pr_url: Option<String>,
    pub retry_count: i64,
    pub auto_merge_ready_since: Option<String>,
    pub last_feedback_check_at: Option<String>,
}

/// A convoy's row.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Convoy {
    pub bead_id: String,
    pub total_beads: i64,
    pub closed_beads: i64,
    pub landed_at: Option<String>,
    pub feature_branch: Option<String>,
    pub merge_mode: Option<MergeMode>,
    pub staged: bool,
}

/// An edge between beads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Dependency {
    pub bead_id: String,
    pub depends_on_bead_id: String,
    pub dependency_type: DependencyType,
}

/// A message queued for an agent.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Nudge {
    pub nudge_id: String,
    pub agent_bead_id: String,
    pub message: String,
    pub mode: NudgeMode,
    pub priority: NudgePriority,
    pub source: String,
    pub created_at: String,
    pub delivered_at: Option<String>,
    pub expires_at: Option<String>,
}

/// Mail from one agent to another.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Mail {
    pub mail_id: String,
    pub from_agent_id: String,
    pub to_agent_id: String,
    pub subject: String,
    pub body: String,
    pub created_at: String,
    pub delivered_at: Option<String>,
}

/// A repository the town works on.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rig {
    pub rig_id: String,
    pub name: String,
    pub git_url: String,
    pub default_branch: String,
    pub merge_strategy: Option<crate::vocabulary::config::MergeStrategy>,
    pub created_at: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_match_serde() {
        for s in BeadStatus::ALL {
            assert_eq!(BeadStatus::parse(s.as_str()), Some(*s));
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
        assert_eq!(DependencyType::ParentChild.as_str(), "parent-child");
        assert_eq!(
            MergeMode::parse("review-then-land"),
            Some(MergeMode::ReviewThenLand)
        );
        assert_eq!(BeadType::parse("nope"), None);
        assert!(BeadStatus::Failed.is_terminal() && !BeadStatus::InReview.is_terminal());
    }
}
