//! Fixture builders for tests and simulations: entities with sensible defaults (created and
//! updated at [`T0`], status `open` / `idle`), refined by chained setters, fed to
//! [`SnapshotBuilder`](super::snapshot::SnapshotBuilder) or inserted as rows.
//!
//! ```
//! use gastown_town::testing::snapshot::*;
//! use gastown_town::reconciler::snapshot::SnapshotBuilder;
//! use gastown_town::vocabulary::model::{AgentStatus, BeadStatus};
//! use gastown_town::vocabulary::time::MINUTE;
//!
//! let snapshot = SnapshotBuilder::new()
//!     .bead(issue("b1", "r1").status(BeadStatus::InProgress).updated(T0 - 6 * MINUTE))
//!     .agent(polecat("a1", "r1").status(AgentStatus::Working).hook("b1").active(T0))
//!     .build();
//! assert_eq!(snapshot.hooked_to("b1").count(), 1);
//! ```

use crate::store::agents::NewAgent;
use crate::vocabulary::config::MergeStrategy;
use crate::vocabulary::model::*;
use crate::vocabulary::time::{iso, Millis};
use serde_json::{Map, Value as Json};

/// The fixtures' default time (2026-11-29T01:20:00Z).
pub const T0: Millis = 1_795_920_000_000;

/// A bead under construction.
#[derive(Debug, Clone)]
pub struct BeadFixture(Bead);

/// A bead of any type: open, medium priority, no rig, created and updated at [`T0`].
pub fn bead(bead_id: &str, bead_type: BeadType) -> BeadFixture {
    BeadFixture(Bead {
        bead_id: bead_id.to_owned(),
        bead_type,
        status: BeadStatus::Open,
        title: bead_id.to_owned(),
        body: None,
        rig_id: None,
        parent_bead_id: None,
        assignee_agent_bead_id: None,
        priority: Priority::Medium,
        labels: Vec::new(),
        metadata: Map::new(),
        dispatch_attempts: 0,
        last_dispatch_attempt_at: None,
        created_by: None,
        created_at: iso(T0),
        updated_at: iso(T0),
        closed_at: None,
    })
}

/// An open issue bead of `rig_id`.
pub fn issue(bead_id: &str, rig_id: &str) -> BeadFixture {
    bead(bead_id, BeadType::Issue).rig(rig_id)
}

/// An open merge request bead of `rig_id`.
pub fn merge_request(bead_id: &str, rig_id: &str) -> BeadFixture {
    bead(bead_id, BeadType::MergeRequest)
        .rig(rig_id)
        .label(labels::MERGE_REQUEST)
}

/// An open convoy bead (convoys have no rig).
pub fn convoy_bead(bead_id: &str) -> BeadFixture {
    bead(bead_id, BeadType::Convoy).label(labels::CONVOY)
}

impl BeadFixture {
    pub fn status(mut self, status: BeadStatus) -> Self {
        self.0.status = status;
        self
    }

    pub fn rig(mut self, rig_id: &str) -> Self {
        self.0.rig_id = Some(rig_id.to_owned());
        self
    }

    pub fn no_rig(mut self) -> Self {
        self.0.rig_id = None;
        self
    }

    pub fn assignee(mut self, agent_id: &str) -> Self {
        self.0.assignee_agent_bead_id = Some(agent_id.to_owned());
        self
    }

    pub fn label(mut self, label: &str) -> Self {
        self.0.labels.push(label.to_owned());
        self
    }

    pub fn meta(mut self, key: &str, value: impl Into<Json>) -> Self {
        self.0.metadata.insert(key.to_owned(), value.into());
        self
    }

    pub fn attempts(mut self, n: i64) -> Self {
        self.0.dispatch_attempts = n;
        self
    }

    pub fn last_attempt(mut self, at: Millis) -> Self {
        self.0.last_dispatch_attempt_at = Some(iso(at));
        self
    }

    pub fn created(mut self, at: Millis) -> Self {
        self.0.created_at = iso(at);
        self
    }

    pub fn updated(mut self, at: Millis) -> Self {
        self.0.updated_at = iso(at);
        self
    }

    pub fn bead(self) -> Bead {
        self.0
    }
}

impl From<BeadFixture> for Bead {
    fn from(f: BeadFixture) -> Bead {
        f.0
    }
}

/// An agent under construction.
#[derive(Debug, Clone)]
pub struct AgentFixture(Agent);

/// An idle, unhooked agent that never heartbeated, created at [`T0`].
pub fn agent(agent_id: &str, role: AgentRole, rig_id: Option<&str>) -> AgentFixture {
    AgentFixture(
        NewAgent {
            agent_id: agent_id.to_owned(),
            role,
            name: agent_id.to_owned(),
            identity: format!("{agent_id}-{role}"),
            rig_id: rig_id.map(str::to_owned),
        }
        .registered(iso(T0)),
    )
}

pub fn polecat(agent_id: &str, rig_id: &str) -> AgentFixture {
    agent(agent_id, AgentRole::Polecat, Some(rig_id))
}

pub fn refinery(agent_id: &str, rig_id: &str) -> AgentFixture {
    agent(agent_id, AgentRole::Refinery, Some(rig_id))
}

pub fn mayor(agent_id: &str) -> AgentFixture {
    agent(agent_id, AgentRole::Mayor, None)
}

impl AgentFixture {
    pub fn status(mut self, status: AgentStatus) -> Self {
        self.0.status = status;
        self
    }

    pub fn hook(mut self, bead_id: &str) -> Self {
        self.0.current_hook_bead_id = Some(bead_id.to_owned());
        self
    }

    /// Last heartbeat at `at`.
    pub fn active(mut self, at: Millis) -> Self {
        self.0.last_activity_at = Some(iso(at));
        self
    }

    /// Last SDK event at `at`.
    pub fn event_at(mut self, at: Millis) -> Self {
        self.0.last_event_type = Some("message".to_owned());
        self.0.last_event_at = Some(iso(at));
        self
    }

    pub fn tools(mut self, tools: &[&str]) -> Self {
        self.0.active_tools = tools.iter().map(|t| (*t).to_owned()).collect();
        self
    }

    pub fn stalled_at(mut self, at: Millis) -> Self {
        self.0.stalled_at = Some(iso(at));
        self
    }

    pub fn created(mut self, at: Millis) -> Self {
        self.0.created_at = iso(at);
        self
    }

    pub fn agent(self) -> Agent {
        self.0
    }
}

impl From<AgentFixture> for Agent {
    fn from(f: AgentFixture) -> Agent {
        f.0
    }
}

/// A review row under construction.
#[derive(Debug, Clone)]
pub struct ReviewFixture(Review);

/// A direct-strategy review of `mr_id` (branch `gt/<mr_id>`, target `main`, no PR).
pub fn review(mr_id: &str) -> ReviewFixture {
    ReviewFixture(Review {
        bead_id: mr_id.to_owned(),
        branch: format!("gt/{mr_id}"),
        target_branch: "main".to_owned(),
        merge_commit: None,
        pr_url: None,
        retry_count: 0,
        auto_merge_ready_since: None,
        last_feedback_check_at: None,
    })
}

impl ReviewFixture {
    pub fn pr(mut self, pr_url: &str) -> Self {
        self.0.pr_url = Some(pr_url.to_owned());
        self
    }
}

impl From<ReviewFixture> for Review {
    fn from(f: ReviewFixture) -> Review {
        f.0
    }
}

/// Convoy metadata under construction.
#[derive(Debug, Clone)]
pub struct ConvoyFixture(Convoy);

/// A started review-then-land convoy without a feature branch and no progress.
pub fn convoy(convoy_id: &str) -> ConvoyFixture {
    ConvoyFixture(Convoy {
        bead_id: convoy_id.to_owned(),
        total_beads: 0,
        closed_beads: 0,
        landed_at: None,
        feature_branch: None,
        merge_mode: Some(MergeMode::ReviewThenLand),
        staged: false,
    })
}

impl ConvoyFixture {
    pub fn staged(mut self) -> Self {
        self.0.staged = true;
        self
    }

    pub fn feature_branch(mut self, branch: &str) -> Self {
        self.0.feature_branch = Some(branch.to_owned());
        self
    }

    pub fn merge_mode(mut self, mode: Option<MergeMode>) -> Self {
        self.0.merge_mode = mode;
        self
    }

    pub fn progress(mut self, closed: i64, total: i64) -> Self {
        self.0.closed_beads = closed;
        self.0.total_beads = total;
        self
    }
}

impl From<ConvoyFixture> for Convoy {
    fn from(f: ConvoyFixture) -> Convoy {
        f.0
    }
}

/// An undelivered, urgent, immediate nudge to `agent_id` from `source`, created at `created_at`
/// (given as text: old rows use SQLite's `YYYY-MM-DD HH:MM:SS`).
pub fn nudge(nudge_id: &str, agent_id: &str, source: &str, created_at: &str) -> Nudge {
    Nudge {
        nudge_id: nudge_id.to_owned(),
        agent_bead_id: agent_id.to_owned(),
        message: format!("nudge {nudge_id}"),
        mode: NudgeMode::Immediate,
        priority: NudgePriority::Urgent,
        source: source.to_owned(),
        created_at: created_at.to_owned(),
        delivered_at: None,
        expires_at: None,
    }
}

/// A rig with `default_branch`, created at [`T0`].
pub fn rig(rig_id: &str, default_branch: &str) -> Rig {
    Rig {
        rig_id: rig_id.to_owned(),
        name: rig_id.to_owned(),
        git_url: format!("https://github.com/gastown/{rig_id}.git"),
        default_branch: default_branch.to_owned(),
        merge_strategy: Some(MergeStrategy::Direct),
        created_at: iso(T0),
    }
}
