//! The snapshot loader over real SQLite: it reads exactly the live work and the finished beads
//! the rules can ask about, with a fixed number of queries, each through an index.

mod recording;

use gastown_town::params;
use gastown_town::reconciler::load::{self, SnapshotError};
use gastown_town::reconciler::{Snapshot, SnapshotBuilder};
use gastown_town::sql::native::NativeSql;
use gastown_town::sql::{Sql, Value};
use gastown_town::store::{migrate, town};
use gastown_town::testing::snapshot::*;
use gastown_town::vocabulary::config::TownConfig;
use gastown_town::vocabulary::model::*;
use gastown_town::vocabulary::time::{iso, Millis, MINUTE, SECOND};
use recording::Recording;

const NOW: Millis = T0 + 10 * MINUTE;

/// A database and the snapshot expected of it, filled side by side.
struct Seed {
    db: NativeSql,
    expected: SnapshotBuilder,
}

impl Seed {
    fn new() -> Self {
        let db = NativeSql::in_memory();
        migrate::migrate(&db, T0).unwrap();
        town::put(&db, "town-1", "user-1", &TownConfig::default(), T0).unwrap();
        Seed {
            db,
            expected: SnapshotBuilder::new(),
        }
    }

    /// A bead the snapshot must hold (`error`: its last dispatch failed).
    fn bead(mut self, bead: impl Into<Bead>, error: Option<&str>) -> Self {
        let bead = bead.into();
        insert_bead(&self.db, &bead, error);
        if error.is_some() {
            self.expected = self.expected.dispatch_failed(&bead.bead_id);
        }
        self.expected = self.expected.bead(bead);
        self
    }

    /// A bead the snapshot must leave out.
    fn history(self, bead: impl Into<Bead>, error: Option<&str>) -> Self {
        insert_bead(&self.db, &bead.into(), error);
        self
    }

    fn agent(mut self, agent: AgentFixture) -> Self {
        let agent = agent.agent();
        insert_bead(&self.db, &agent_bead(&agent), None);
        self.db
            .execute(
                "INSERT INTO agent_metadata (bead_id, role, name, identity, status,
                   current_hook_bead_id, dispatch_attempts, checkpoint, last_activity_at,
                   last_event_type, last_event_at, active_tools, stalled_at)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                &params![
                    agent.agent_id.as_str(),
                    agent.role.as_str(),
                    agent.name.as_str(),
                    agent.identity.as_str(),
                    agent.status.as_str(),
                    agent.current_hook_bead_id.clone(),
                    agent.dispatch_attempts,
                    agent.checkpoint.clone(),
                    agent.last_activity_at.clone(),
                    agent.last_event_type.clone(),
                    agent.last_event_at.clone(),
                    serde_json::to_string(&agent.active_tools).unwrap(),
                    agent.stalled_at.clone()
                ],
            )
            .unwrap();
        self.expected = self.expected.agent(agent);
        self
    }

    /// A review row, expected when `live`.
    fn review(mut self, review: ReviewFixture, live: bool) -> Self {
        let r: Review = review.into();
        self.db
            .execute(
                "INSERT INTO review_metadata (bead_id, branch, target_branch, pr_url)
                 VALUES (?, ?, ?, ?)",
                &params![
                    r.bead_id.as_str(),
                    r.branch.as_str(),
                    r.target_branch.as_str(),
                    r.pr_url.clone()
                ],
            )
            .unwrap();
        if live {
            self.expected = self.expected.review(r);
        }
        self
    }

    /// Convoy metadata, expected when `live`.
    fn convoy(mut self, convoy: ConvoyFixture, live: bool) -> Self {
        let c: Convoy = convoy.into();
        self.db
            .execute(
                "INSERT INTO convoy_metadata (bead_id, total_beads, closed_beads, feature_branch,
                   merge_mode, staged) VALUES (?, ?, ?, ?, ?, ?)",
                &params![
                    c.bead_id.as_str(),
                    c.total_beads,
                    c.closed_beads,
                    c.feature_branch.clone(),
                    c.merge_mode.map(MergeMode::as_str),
                    c.staged
                ],
            )
            .unwrap();
        if live {
            self.expected = self.expected.convoy(c);
        }
        self
    }

    /// A dependency edge, expected when `live`.
    fn edge(mut self, from: &str, to: &str, kind: DependencyType, live: bool) -> Self {
        self.db
            .execute(
                "INSERT INTO bead_dependencies (bead_id, depends_on_bead_id, dependency_type)
                 VALUES (?, ?, ?)",
                &params![from, to, kind.as_str()],
            )
            .unwrap();
        if live {
            self.expected = self.expected.dependency(Dependency {
                bead_id: from.into(),
                depends_on_bead_id: to.into(),
                dependency_type: kind,
            });
        }
        self
    }

    /// A nudge, expected when `recent`.
    fn nudge(mut self, nudge: Nudge, recent: bool) -> Self {
        self.db
            .execute(
                "INSERT INTO agent_nudges (nudge_id, agent_bead_id, message, mode, priority,
                   source, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                &params![
                    nudge.nudge_id.as_str(),
                    nudge.agent_bead_id.as_str(),
                    nudge.message.as_str(),
                    nudge.mode.as_str(),
                    nudge.priority.as_str(),
                    nudge.source.as_str(),
                    nudge.created_at.as_str()
                ],
            )
            .unwrap();
        if recent {
            self.expected = self.expected.nudge(nudge);
        }
        self
    }

    fn rig(mut self, rig: Rig) -> Self {
        self.db
            .execute(
                "INSERT INTO rigs (rig_id, name, git_url, default_branch, merge_strategy,
                   created_at) VALUES (?, ?, ?, ?, ?, ?)",
                &params![
                    rig.rig_id.as_str(),
                    rig.name.as_str(),
                    rig.git_url.as_str(),
                    rig.default_branch.as_str(),
                    rig.merge_strategy.map(|_| "direct"),
                    rig.created_at.as_str()
                ],
            )
            .unwrap();
        self.expected = self.expected.rig(rig);
        self
    }
}

fn insert_bead(db: &NativeSql, b: &Bead, dispatch_error: Option<&str>) {
    db.execute(
        "INSERT INTO beads (bead_id, type, status, title, body, rig_id, parent_bead_id,
           assignee_agent_bead_id, priority, labels, metadata, dispatch_attempts,
           last_dispatch_attempt_at, created_by, created_at, updated_at, closed_at,
           last_dispatch_error)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        &params![
            b.bead_id.as_str(),
            b.bead_type.as_str(),
            b.status.as_str(),
            b.title.as_str(),
            b.body.clone(),
            b.rig_id.clone(),
            b.parent_bead_id.clone(),
            b.assignee_agent_bead_id.clone(),
            b.priority.as_str(),
            serde_json::to_string(&b.labels).unwrap(),
            serde_json::to_string(&b.metadata).unwrap(),
            b.dispatch_attempts,
            b.last_dispatch_attempt_at.clone(),
            b.created_by.clone(),
            b.created_at.as_str(),
            b.updated_at.as_str(),
            b.closed_at.clone(),
            dispatch_error
        ],
    )
    .unwrap();
}

/// The `agent` bead behind an agent (its rig and creation time are read from it).
fn agent_bead(a: &Agent) -> Bead {
    let mut b: Bead = bead(&a.agent_id, BeadType::Agent).into();
    b.rig_id = a.rig_id.clone();
    b.created_at = a.created_at.clone();
    b
}

fn sqlite_time(at: Millis) -> String {
    iso(at).replace('T', " ")[..19].to_owned()
}

/// A town with a bit of everything: live work, finished beads the rules ask about, and history
/// they never need.
fn busy_town() -> Seed {
    use BeadStatus::*;
    use DependencyType::{Blocks, Tracks};
    let old = T0 - 3 * 24 * 60 * MINUTE;
    Seed::new()
        .rig(rig("r", "trunk"))
        // Live work.
        .bead(issue("open", "r").meta("convoy_id", "cv"), None)
        .bead(
            issue("working", "r").status(InProgress).assignee("p1"),
            None,
        )
        .bead(
            issue("reviewing", "r").status(InReview).assignee("p3"),
            None,
        )
        .bead(merge_request("mr-live", "r").status(InProgress), None)
        .review(review("mr-live").pr("https://github.com/o/r/pull/1"), true)
        .bead(
            convoy_bead("cv").meta("feature_branch", "convoy/x/head"),
            None,
        )
        .convoy(
            convoy("cv")
                .staged()
                .feature_branch("convoy/x/head")
                .progress(1, 2),
            true,
        )
        // Finished beads a rule can ask about.
        .bead(issue("hooked-done", "r").status(Closed), None)
        .bead(issue("blocker-done", "r").status(Closed), None)
        .bead(merge_request("mr-failed", "r").status(Failed), None)
        .review(review("mr-failed"), false)
        .bead(issue("member-done", "r").status(Closed), None)
        .bead(convoy_bead("cv-failed").status(Failed).created(old), None)
        .convoy(convoy("cv-failed"), false)
        .bead(
            issue("dispatch-failed", "r")
                .status(Failed)
                .attempts(5)
                .last_attempt(NOW - 30 * MINUTE),
            Some("container returned false"),
        )
        // History.
        .history(issue("ancient", "r").status(Closed).created(old), None)
        .history(
            issue("old-failure", "r")
                .status(Failed)
                .attempts(5)
                .last_attempt(NOW - 31 * MINUTE),
            Some("container returned false"),
        )
        .history(
            merge_request("mr-old", "r").status(Closed).created(old),
            None,
        )
        .review(review("mr-old"), false)
        .edge("open", "blocker-done", Blocks, true)
        .edge("open", "cv", Tracks, true)
        .edge("member-done", "cv", Tracks, true)
        .edge("mr-live", "reviewing", Tracks, true)
        .edge("mr-failed", "reviewing", Tracks, true)
        .edge("mr-old", "ancient", Tracks, false)
        .agent(
            polecat("p1", "r")
                .status(AgentStatus::Working)
                .hook("working")
                .active(NOW - 20 * SECOND)
                .event_at(NOW - 5 * MINUTE)
                .tools(&["bash"]),
        )
        .agent(polecat("p2", "r").hook("hooked-done").created(T0 + 1))
        .agent(refinery("ref", "r").created(old))
        .nudge(
            nudge("n-recent", "p1", "reconciler:warn", &iso(NOW - 30 * MINUTE)),
            true,
        )
        .nudge(
            nudge(
                "n-sqlite",
                "p1",
                "reconciler:escalate",
                &sqlite_time(NOW - 10 * MINUTE),
            ),
            true,
        )
        // The query reads a minute early; the rule decides to the millisecond.
        .nudge(
            nudge(
                "n-edge",
                "p1",
                "reconciler:warn",
                &iso(NOW - 60 * MINUTE - 30 * SECOND),
            ),
            true,
        )
        .nudge(
            nudge("n-old", "p1", "reconciler:warn", &iso(NOW - 62 * MINUTE)),
            false,
        )
        .nudge(
            nudge(
                "n-old-sqlite",
                "p1",
                "reconciler:warn",
                &sqlite_time(NOW - 62 * MINUTE),
            ),
            false,
        )
        .nudge(nudge("n-mail", "p1", "system", &iso(NOW)), false)
}

#[test]
fn loads_live_work_and_the_finished_beads_rules_ask_about_and_nothing_else() {
    let seed = busy_town();
    town::start_drain(&seed.db, "nonce", NOW).unwrap();
    let config = TownConfig::default()
        .patched(&serde_json::json!({"refinery": {"code_review": false}}))
        .unwrap();
    town::set_config(&seed.db, &config, NOW).unwrap();
    seed.db
        .execute(
            "UPDATE town SET breaker_notified_at = ? WHERE singleton = 1",
            &params![iso(NOW - MINUTE)],
        )
        .unwrap();
    // No rule reads a body: the snapshot leaves it out (the expected beads have none).
    let described = "UPDATE beads SET body = 'Steps to reproduce: ...' WHERE bead_id = 'open'";
    assert_eq!(seed.db.execute(described, &[]).unwrap(), 1);
    let expected = seed
        .expected
        .draining(true)
        .refinery_code_review(false)
        .breaker_notified_at(&iso(NOW - MINUTE))
        .build();
    let loaded = load::snapshot(&seed.db, NOW).unwrap();
    assert_eq!(loaded, expected);
    // The edges between loaded beads are indexed both ways.
    assert!(!loaded.is_blocked("open"));
    assert_eq!(loaded.blockers("open").count(), 1);
    assert_eq!(loaded.tracked_by("reviewing").count(), 2);
    assert_eq!(loaded.tracked_by("cv").count(), 2);
    assert_eq!(loaded.hooked_to("hooked-done").count(), 1);
}

#[test]
fn reads_the_default_town_state() {
    let seed = Seed::new();
    let loaded = load::snapshot(&seed.db, NOW).unwrap();
    assert_eq!(loaded, SnapshotBuilder::new().build());
    assert!(loaded.town().refinery_code_review && !loaded.town().draining);
}

#[test]
fn a_missing_town_is_an_error() {
    let db = NativeSql::in_memory();
    migrate::migrate(&db, T0).unwrap();
    assert_eq!(load::snapshot(&db, NOW), Err(SnapshotError::NoTown));
}

fn recorded_load(db: &NativeSql) -> (Snapshot, Vec<(String, Vec<Value>)>) {
    let rec = Recording::new(db);
    let snapshot = load::snapshot(&rec, NOW).unwrap();
    (snapshot, rec.into_statements())
}

#[test]
fn the_number_of_queries_does_not_grow_with_the_town() {
    let (_, empty) = recorded_load(&Seed::new().db);
    assert_eq!(empty.len(), 9, "no edge, so no finished far end to read");
    let (_, small) = recorded_load(&busy_town().db);
    let mut seed = busy_town();
    for i in 0..300 {
        let live = i % 3 == 0;
        let b = issue(&format!("extra-{i}"), "r").created(T0 + i);
        seed = if live {
            seed.bead(b, None)
        } else {
            seed.history(b.status(BeadStatus::Closed), None)
        };
    }
    let (snapshot, big) = recorded_load(&seed.db);
    assert_eq!(snapshot.beads().len(), 100 + 11);
    assert_eq!(snapshot.agents().len(), 3);
    assert_eq!(small.len(), big.len());
    assert_eq!(big.len(), 10);
}

#[test]
fn every_query_reads_beads_dependencies_and_nudges_through_an_index() {
    let (_, queries) = recorded_load(&busy_town().db);
    for (sql, params) in queries {
        let plan = busy_town()
            .db
            .query(&format!("EXPLAIN QUERY PLAN {sql}"), &params)
            .unwrap();
        for row in plan {
            let detail = row.text("detail").unwrap();
            let scanned = detail
                .strip_prefix("SCAN ")
                .map(|rest| rest.split_whitespace().next().unwrap_or(""));
            assert!(
                !matches!(scanned, Some("b" | "x" | "d" | "n" | "beads")),
                "{detail}\n in {sql}"
            );
        }
    }
}
