//! What the reconciler asks for (GASTOWN-DOMAIN.md 4.1): the 23 action types, each with typed
//! fields, its exact snake_case name and its class.
//!
//! An action is a description, never a deed: the tick applies every action in emitted order
//! (mutations change the store at once; side effects may have a synchronous part and are then run
//! after all mutations), so applying is one `match` over this enum. Serialized, an action is a
//! JSON object whose `type` field is [`Action::type_name`] (the debug endpoints return them).
//!
//! Departures from the original, on purpose:
//! - `dispatch_agent` carries `agent_id: None` where the original sent `''` for "resolve the
//!   agent when applying".
//! - `notify_mayor` carries a [`MayorNotice`] saying which fact it reports. Applying it records
//!   that fact on the town (`town.breaker_notified_at`), which is how the breaker notice is sent
//!   once per opening instead of every tick; the original's `notify_mayor` was a log line
//!   repeated every tick while the breaker stayed open.

use crate::vocabulary::model::{Agent, AgentStatus, Bead, BeadStatus, TriageType};
use serde::Serialize;
use serde_json::{Map, Value as Json};

/// One thing the reconciler wants done.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Action {
    /// Status helper on the bead (terminal guard, bead event, convoy progress). When `to` is
    /// `failed` the failure reason is `{code: "reconciler", message: reason, source: "scheduler"}`.
    /// `from` is informational: it is what the snapshot showed, not a precondition.
    TransitionBead {
        bead_id: String,
        from: Option<BeadStatus>,
        to: BeadStatus,
        reason: String,
        actor: String,
    },
    /// Set the assignee (and `updated_at`).
    AssignBead {
        bead_id: String,
        agent_id: String,
    },
    /// Clear the assignee (and touch `updated_at`), unhooking every agent hooked to the bead.
    ClearBeadAssignee {
        bead_id: String,
    },
    /// Submit work to the review queue.
    CreateMrBead {
        source_bead_id: String,
        agent_id: String,
        rig_id: String,
        branch: String,
        target_branch: String,
        pr_url: Option<String>,
        summary: Option<String>,
    },
    /// Submit the convoy's feature branch for review, as agent `system`, source = the convoy.
    CreateLandingMr {
        convoy_id: String,
        rig_id: String,
        feature_branch: String,
        target_branch: String,
    },
    /// Close the other non-terminal MRs tracking the source.
    CloseSiblingMrs {
        source_bead_id: String,
        exclude_mr_id: String,
    },
    /// Store an https PR URL in the review row and the bead metadata.
    SetReviewPrUrl {
        bead_id: String,
        pr_url: String,
    },
    /// Set the agent's status. Entering `stalled` sets `stalled_at = now` and leaving it clears
    /// `stalled_at`: the GUPP force stop relies on that to act once per stall.
    TransitionAgent {
        agent_id: String,
        from: Option<AgentStatus>,
        to: AgentStatus,
        reason: String,
    },
    HookAgent {
        agent_id: String,
        bead_id: String,
    },
    UnhookAgent {
        agent_id: String,
        reason: String,
    },
    /// `checkpoint := NULL`.
    ClearAgentCheckpoint {
        agent_id: String,
    },
    DeleteAgent {
        agent_id: String,
        reason: String,
    },
    /// `convoy_metadata.closed_beads := closed_beads`.
    UpdateConvoyProgress {
        convoy_id: String,
        closed_beads: i64,
    },
    /// `metadata.ready_to_land = 1` on the convoy bead, touching `updated_at`.
    SetConvoyReadyToLand {
        convoy_id: String,
    },
    /// Close the convoy bead (actor `system`) and set `landed_at = now`.
    CloseConvoy {
        convoy_id: String,
    },
    /// Sync part: resolve the agent when `agent_id` is `None` (a refinery for a merge request,
    /// else a polecat of the rig; get-or-create and hook it), set it `working` and the bead
    /// `in_progress`. Side effect: start the agent in the container.
    DispatchAgent {
        agent_id: Option<String>,
        bead_id: String,
        rig_id: String,
    },
    /// Side effect: stop the agent's process in the container.
    StopAgent {
        agent_id: String,
        reason: String,
    },
    /// Sync part: `updated_at` and `metadata.last_poll_at` := now. Side effect: ask the PR host.
    PollPr {
        bead_id: String,
        pr_url: String,
    },
    /// Sync part: the repository guard. Side effect: merge the pull request.
    MergePr {
        bead_id: String,
        pr_url: String,
    },
    /// Sync part: record a nudge row with source `reconciler:<tier>` (what the 60-minute
    /// de-duplication reads). Side effect: push the message to the agent.
    SendNudge {
        agent_id: String,
        message: String,
        tier: NudgeTier,
    },
    /// Create a triage request (de-duplicated and capped when applied).
    CreateTriageRequest {
        agent_id: String,
        triage_type: TriageType,
        reason: String,
    },
    /// Sync part: record the notice on the town (see [`MayorNotice`]). Side effect: tell the
    /// mayor `message`.
    NotifyMayor {
        message: String,
        notice: MayorNotice,
    },
    /// Write an analytics event `{event: event_name, townId, ...data}` at once.
    EmitEvent {
        event_name: String,
        data: Map<String, Json>,
    },
}

/// How an action is carried out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActionClass {
    /// Changes the store when applied, nothing else.
    Mutation,
    /// Yields an outbound effect (container, PR host, mayor) that runs after every mutation of
    /// the tick has been applied; it may also have a synchronous part.
    SideEffect,
    /// Writes one analytics event when applied.
    Analytics,
}

/// The three GUPP nudge levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NudgeTier {
    Warn,
    Escalate,
    ForceStop,
}

impl NudgeTier {
    /// The `source` of the nudge row the action records, which the de-duplication matches.
    pub fn source(self) -> &'static str {
        match self {
            NudgeTier::Warn => "reconciler:warn",
            NudgeTier::Escalate => "reconciler:escalate",
            NudgeTier::ForceStop => "reconciler:force_stop",
        }
    }
}

/// The fact a `notify_mayor` action reports, and what applying it records on the town.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MayorNotice {
    /// The dispatch circuit breaker opened: set `town.breaker_notified_at = now`.
    BreakerOpened,
    /// The breaker closed after an opening was reported: `town.breaker_notified_at := NULL`.
    BreakerClosed,
}

impl Action {
    /// How many action types there are (the names [`Action::type_name`] answers).
    pub const TYPE_COUNT: u32 = 23;

    /// `dispatch_agent` for an agent already hooked to `bead` (B2, R6): the rig is the bead's,
    /// else the agent's, else `''`.
    pub fn redispatch(agent: &Agent, bead: &Bead) -> Self {
        Action::DispatchAgent {
            agent_id: Some(agent.agent_id.clone()),
            bead_id: bead.bead_id.clone(),
            rig_id: bead
                .rig_id
                .clone()
                .or_else(|| agent.rig_id.clone())
                .unwrap_or_default(),
        }
    }

    /// The action's `type`, exactly as the original names it.
    pub fn type_name(&self) -> &'static str {
        match self {
            Action::TransitionBead { .. } => "transition_bead",
            Action::AssignBead { .. } => "assign_bead",
            Action::ClearBeadAssignee { .. } => "clear_bead_assignee",
            Action::CreateMrBead { .. } => "create_mr_bead",
            Action::CreateLandingMr { .. } => "create_landing_mr",
            Action::CloseSiblingMrs { .. } => "close_sibling_mrs",
            Action::SetReviewPrUrl { .. } => "set_review_pr_url",
            Action::TransitionAgent { .. } => "transition_agent",
            Action::HookAgent { .. } => "hook_agent",
            Action::UnhookAgent { .. } => "unhook_agent",
            Action::ClearAgentCheckpoint { .. } => "clear_agent_checkpoint",
            Action::DeleteAgent { .. } => "delete_agent",
            Action::UpdateConvoyProgress { .. } => "update_convoy_progress",
            Action::SetConvoyReadyToLand { .. } => "set_convoy_ready_to_land",
            Action::CloseConvoy { .. } => "close_convoy",
            Action::DispatchAgent { .. } => "dispatch_agent",
            Action::StopAgent { .. } => "stop_agent",
            Action::PollPr { .. } => "poll_pr",
            Action::MergePr { .. } => "merge_pr",
            Action::SendNudge { .. } => "send_nudge",
            Action::CreateTriageRequest { .. } => "create_triage_request",
            Action::NotifyMayor { .. } => "notify_mayor",
            Action::EmitEvent { .. } => "emit_event",
        }
    }

    pub fn class(&self) -> ActionClass {
        match self {
            Action::DispatchAgent { .. }
            | Action::StopAgent { .. }
            | Action::PollPr { .. }
            | Action::MergePr { .. }
            | Action::SendNudge { .. }
            | Action::NotifyMayor { .. } => ActionClass::SideEffect,
            Action::EmitEvent { .. } => ActionClass::Analytics,
            _ => ActionClass::Mutation,
        }
    }

    pub fn is_side_effect(&self) -> bool {
        self.class() == ActionClass::SideEffect
    }
}

/// An outbound effect, ready to run: what applying a side-effect action leaves for the tick to
/// perform (`tick::side_effects`), once every action of the pass has been applied.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Start `agent_id` on `bead_id` in the container.
    Dispatch {
        agent_id: String,
        bead_id: String,
        rig_id: String,
    },
    Stop {
        agent_id: String,
        reason: String,
    },
    PollPr {
        bead_id: String,
        pr_url: String,
    },
    MergePr {
        bead_id: String,
        pr_url: String,
    },
    /// Push the recorded nudge `nudge_id` to the agent.
    Nudge {
        agent_id: String,
        nudge_id: String,
        message: String,
    },
    /// Tell the mayor; once it heard, the notice is recorded on the town.
    NotifyMayor {
        message: String,
        notice: MayorNotice,
    },
    /// Push a working agent's undelivered mail (`mail_ids`) to it as one message; the mail is
    /// delivered once the container took it (the housekeeping's, not the reconciler's).
    DeliverMail {
        agent_id: String,
        mail_ids: Vec<String>,
        prompt: String,
    },
    /// Push the mayor's undelivered mail through the mayor-notification path: messaged when
    /// alive, else started with it as its prompt.
    MailMayor {
        mail_ids: Vec<String>,
        message: String,
    },
}

impl Effect {
    /// The action type it came from (logs and metrics).
    pub fn type_name(&self) -> &'static str {
        match self {
            Effect::Dispatch { .. } => "dispatch_agent",
            Effect::Stop { .. } => "stop_agent",
            Effect::PollPr { .. } => "poll_pr",
            Effect::MergePr { .. } => "merge_pr",
            Effect::Nudge { .. } => "send_nudge",
            Effect::NotifyMayor { .. } => "notify_mayor",
            Effect::DeliverMail { .. } => "deliver_mail",
            Effect::MailMayor { .. } => "mail_mayor",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn s(v: &str) -> String {
        v.to_owned()
    }

    /// One action of each of the 23 types with its expected name and class.
    fn catalogue() -> Vec<(Action, &'static str, ActionClass)> {
        use ActionClass::*;
        vec![
            (
                Action::TransitionBead {
                    bead_id: s("b"),
                    from: Some(BeadStatus::Open),
                    to: BeadStatus::Failed,
                    reason: s("r"),
                    actor: s("system"),
                },
                "transition_bead",
                Mutation,
            ),
            (
                Action::AssignBead {
                    bead_id: s("b"),
                    agent_id: s("a"),
                },
                "assign_bead",
                Mutation,
            ),
            (
                Action::ClearBeadAssignee { bead_id: s("b") },
                "clear_bead_assignee",
                Mutation,
            ),
            (
                Action::CreateMrBead {
                    source_bead_id: s("b"),
                    agent_id: s("a"),
                    rig_id: s("r"),
                    branch: s("gt/x"),
                    target_branch: s("main"),
                    pr_url: None,
                    summary: Some(s("done")),
                },
                "create_mr_bead",
                Mutation,
            ),
            (
                Action::CreateLandingMr {
                    convoy_id: s("c"),
                    rig_id: s("r"),
                    feature_branch: s("convoy/x"),
                    target_branch: s("main"),
                },
                "create_landing_mr",
                Mutation,
            ),
            (
                Action::CloseSiblingMrs {
                    source_bead_id: s("b"),
                    exclude_mr_id: s("m"),
                },
                "close_sibling_mrs",
                Mutation,
            ),
            (
                Action::SetReviewPrUrl {
                    bead_id: s("m"),
                    pr_url: s("https://x"),
                },
                "set_review_pr_url",
                Mutation,
            ),
            (
                Action::TransitionAgent {
                    agent_id: s("a"),
                    from: None,
                    to: AgentStatus::Stalled,
                    reason: s("r"),
                },
                "transition_agent",
                Mutation,
            ),
            (
                Action::HookAgent {
                    agent_id: s("a"),
                    bead_id: s("b"),
                },
                "hook_agent",
                Mutation,
            ),
            (
                Action::UnhookAgent {
                    agent_id: s("a"),
                    reason: s("r"),
                },
                "unhook_agent",
                Mutation,
            ),
            (
                Action::ClearAgentCheckpoint { agent_id: s("a") },
                "clear_agent_checkpoint",
                Mutation,
            ),
            (
                Action::DeleteAgent {
                    agent_id: s("a"),
                    reason: s("r"),
                },
                "delete_agent",
                Mutation,
            ),
            (
                Action::UpdateConvoyProgress {
                    convoy_id: s("c"),
                    closed_beads: 2,
                },
                "update_convoy_progress",
                Mutation,
            ),
            (
                Action::SetConvoyReadyToLand { convoy_id: s("c") },
                "set_convoy_ready_to_land",
                Mutation,
            ),
            (
                Action::CloseConvoy { convoy_id: s("c") },
                "close_convoy",
                Mutation,
            ),
            (
                Action::DispatchAgent {
                    agent_id: None,
                    bead_id: s("b"),
                    rig_id: s("r"),
                },
                "dispatch_agent",
                SideEffect,
            ),
            (
                Action::StopAgent {
                    agent_id: s("a"),
                    reason: s("r"),
                },
                "stop_agent",
                SideEffect,
            ),
            (
                Action::PollPr {
                    bead_id: s("m"),
                    pr_url: s("https://x"),
                },
                "poll_pr",
                SideEffect,
            ),
            (
                Action::MergePr {
                    bead_id: s("m"),
                    pr_url: s("https://x"),
                },
                "merge_pr",
                SideEffect,
            ),
            (
                Action::SendNudge {
                    agent_id: s("a"),
                    message: s("m"),
                    tier: NudgeTier::Warn,
                },
                "send_nudge",
                SideEffect,
            ),
            (
                Action::CreateTriageRequest {
                    agent_id: s("a"),
                    triage_type: TriageType::StuckAgent,
                    reason: s("r"),
                },
                "create_triage_request",
                Mutation,
            ),
            (
                Action::NotifyMayor {
                    message: s("m"),
                    notice: MayorNotice::BreakerOpened,
                },
                "notify_mayor",
                SideEffect,
            ),
            (
                Action::EmitEvent {
                    event_name: s("e"),
                    data: Map::new(),
                },
                "emit_event",
                Analytics,
            ),
        ]
    }

    #[test]
    fn every_type_has_its_exact_name_class_and_json_type() {
        let all = catalogue();
        assert_eq!(all.len(), 23);
        let mut names: Vec<_> = all.iter().map(|(a, _, _)| a.type_name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), 23, "type names are distinct");
        assert_eq!(names.len(), Action::TYPE_COUNT as usize);
        for (action, name, class) in all {
            assert_eq!(action.type_name(), name);
            assert_eq!(action.class(), class, "{name}");
            assert_eq!(action.is_side_effect(), class == ActionClass::SideEffect);
            let v = serde_json::to_value(&action).unwrap();
            assert_eq!(v["type"], name, "{v}");
        }
    }

    #[test]
    fn serializes_typed_fields_in_the_original_shape() {
        let a = Action::TransitionBead {
            bead_id: s("b1"),
            from: None,
            to: BeadStatus::InProgress,
            reason: s("popped for review"),
            actor: s("system"),
        };
        assert_eq!(
            serde_json::to_value(&a).unwrap(),
            json!({"type": "transition_bead", "bead_id": "b1", "from": null,
                   "to": "in_progress", "reason": "popped for review", "actor": "system"})
        );
        let n = Action::SendNudge {
            agent_id: s("a1"),
            message: s("hi"),
            tier: NudgeTier::ForceStop,
        };
        assert_eq!(serde_json::to_value(&n).unwrap()["tier"], "force_stop");
        let t = Action::CreateTriageRequest {
            agent_id: s("a1"),
            triage_type: TriageType::StuckAgent,
            reason: s("GUPP force stop"),
        };
        assert_eq!(
            serde_json::to_value(&t).unwrap()["triage_type"],
            "stuck_agent"
        );
    }

    #[test]
    fn nudge_sources_are_what_the_de_duplication_reads() {
        assert_eq!(NudgeTier::Warn.source(), "reconciler:warn");
        assert_eq!(NudgeTier::Escalate.source(), "reconciler:escalate");
        assert_eq!(NudgeTier::ForceStop.source(), "reconciler:force_stop");
    }
}
