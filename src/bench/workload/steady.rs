//! The steady town ([`Kind::Steady`](super::Kind::Steady)): N beads with the population a busy
//! town keeps while nothing waits, and no pending event. Its rigs (N/500, at least one, at most
//! [`MAX_RIGS`]; every other one, from the first, on the PR strategy) each have:
//! - [`WORKING_PER_RIG`] working polecats that heartbeated within the last 30 s, each hooked to
//!   its in-progress issue, and [`IDLE_PER_RIG`] idle ones, unhooked, active within the day;
//! - [`REVIEWS_PER_RIG`] issues in review, each tracked by a live merge request: on a PR rig, PRs
//!   under polling, last polled one to two minutes ago (so settling polls them all, and none is
//!   due again for a minute, even on a clock that runs), the refinery idle; on a direct rig, the first review in progress with the rig's working
//!   refinery, the others queued behind it;
//! - one open convoy of four steps: the first closed, the second the first polecat's work, the
//!   other two open, each blocked by the one before; and [`WAITING_PER_RIG`] open issues blocked
//!   by the rig's work in progress.
//!
//! Then the mayor (waiting), escalations (1%, all acknowledged), failed issues and delivered
//! messages (2% each), closed history up to exactly N beads and N processed events over the last
//! six days, as in the backlog town. Nothing is ready to dispatch, no heartbeat is stale, no
//! review is stuck: once the PRs are polled, the reconciler has nothing to do.

use super::{
    text, time, Agent, Bead, MergeRequest, OpenIssue, Plan, PullRequest, Worker, DAY, POLECAT_NAMES,
};
use crate::sql::Value;
use crate::vocabulary::time::{iso, Millis, HOUR, MINUTE, SECOND};
use serde_json::json;

/// The most rigs a steady town has.
pub const MAX_RIGS: usize = 20;
/// Working polecats per rig (the most the town keeps busy on one rig).
pub const WORKING_PER_RIG: usize = 5;
/// Idle polecats per rig, between two pieces of work.
pub const IDLE_PER_RIG: usize = 2;
/// Issues in review per rig.
pub const REVIEWS_PER_RIG: usize = 5;
/// Open issues per rig waiting for a blocker in progress.
pub const WAITING_PER_RIG: usize = 3;

impl Plan {
    /// The steady town of `n` beads (the module's description).
    pub(super) fn steady(&mut self, n: usize) {
        let rigs: Vec<String> = (0..(n / 500).clamp(1, MAX_RIGS))
            .map(|i| format!("rig-{i:02}"))
            .collect();
        for (i, rig) in rigs.iter().enumerate() {
            self.steady_rig(rig, i % 2 == 0);
        }
        let last_activity = self.ago(10 * MINUTE);
        self.agent(Agent {
            id: "mayor",
            role: "mayor",
            name: "mayor",
            identity: "mayor-bench".into(),
            rig: None,
            status: "waiting",
            hook: None,
            last_activity,
        });
        self.settled(&rigs, n, true);
        self.history(&rigs, n);
        self.history_events(n);
    }

    fn steady_rig(&mut self, rig: &str, pull_requests: bool) {
        self.rigs.push([
            text(rig),
            text(rig),
            Value::Text(format!("https://github.com/gastown/{rig}.git")),
            text("main"),
            if pull_requests {
                text("pr")
            } else {
                Value::Null
            },
            time(self.now - 60 * DAY),
        ]);
        let convoy = self.open_convoy(rig);
        let polecats = self.rig_polecats(rig, &convoy);
        let hooks: Vec<String> = self.working[self.working.len() - WORKING_PER_RIG..]
            .iter()
            .map(|w| w.hook.clone())
            .collect();
        for j in 0..WAITING_PER_RIG {
            let id = self.id("issue");
            let created = self.ago(7 * DAY);
            self.bead(
                &id,
                Bead {
                    rig: Some(rig),
                    ..Bead::new("issue", "open", format!("Task {id}"), created)
                },
            );
            self.dependency(&id, &hooks[j % hooks.len()], "blocks");
            self.open_issues.push(OpenIssue {
                id,
                rig: rig.to_owned(),
                convoy: None,
                blocked: true,
            });
        }
        let reviewing = self.rig_reviews(rig, pull_requests, &polecats);
        let id = self.refinery(rig, reviewing.as_deref());
        if reviewing.is_some() {
            self.active.push(id);
        }
    }

    /// The rig's open convoy and its first step, closed; the other steps come with the polecats.
    fn open_convoy(&mut self, rig: &str) -> Convoy {
        let id = self.id("convoy");
        let branch = format!("convoy/bench-feature/{id}/head");
        let created = self.ago(5 * DAY);
        self.convoy_bead(&id, &branch, format!("Feature of {rig}"), created, false);
        let first = self.id("issue");
        self.bead(
            &first,
            Bead {
                rig: Some(rig),
                metadata: json!({"convoy_id": id, "feature_branch": branch}),
                attempts: 1,
                last_attempt: Some(created + MINUTE),
                updated: created + DAY,
                ..Bead::new("issue", "closed", format!("Step 0 of {id}"), created)
            },
        );
        self.dependency(&first, &id, "tracks");
        self.convoy_ids.push(id.clone());
        Convoy {
            id,
            branch,
            created,
            first,
        }
    }

    /// The rig's polecats (id, name): the working ones hooked to their issues in progress (the
    /// first to the convoy's second step, whose last two steps then wait behind it), then the
    /// idle ones.
    fn rig_polecats(&mut self, rig: &str, convoy: &Convoy) -> Vec<(String, String)> {
        let mut polecats = Vec::new();
        for (i, name) in POLECAT_NAMES
            .iter()
            .take(WORKING_PER_RIG + IDLE_PER_RIG)
            .enumerate()
        {
            let id = self.id("agent");
            let identity = format!("{name}-polecat-{rig}@bench");
            polecats.push((id.clone(), (*name).to_owned()));
            if i >= WORKING_PER_RIG {
                let last_activity = self.ago(20 * HOUR);
                self.agent(Agent {
                    id: &id,
                    role: "polecat",
                    name,
                    identity,
                    rig: Some(rig),
                    status: "idle",
                    hook: None,
                    last_activity,
                });
                continue;
            }
            let hook = self.id("issue");
            let dispatched = self.now - 20 * MINUTE - self.rng.within(HOUR);
            let updated = self.ago(4 * MINUTE);
            let mut issue = Bead {
                rig: Some(rig),
                assignee: Some(&id),
                attempts: 1,
                last_attempt: Some(dispatched),
                updated,
                ..Bead::new("issue", "in_progress", format!("Task {hook}"), dispatched)
            };
            if i == 0 {
                issue.metadata = json!({"convoy_id": convoy.id, "feature_branch": convoy.branch});
                issue.title = format!("Step 1 of {}", convoy.id);
            }
            self.bead(&hook, issue);
            if i == 0 {
                self.dependency(&hook, &convoy.id, "tracks");
                self.dependency(&hook, &convoy.first, "blocks");
                self.convoy_waits(rig, convoy, &hook);
            }
            let last_activity = self.ago(30 * SECOND);
            self.agent(Agent {
                id: &id,
                role: "polecat",
                name,
                identity,
                rig: Some(rig),
                status: "working",
                hook: Some(&hook),
                last_activity,
            });
            self.active.push(id.clone());
            self.working.push(Worker {
                id,
                name: (*name).to_owned(),
                rig: rig.to_owned(),
                hook,
            });
        }
        polecats
    }

    /// The convoy's last two steps, open, each blocked by the step before (`after`, then the
    /// third).
    fn convoy_waits(&mut self, rig: &str, convoy: &Convoy, after: &str) {
        let mut before = after.to_owned();
        for step in 2..4 {
            let id = self.id("issue");
            self.bead(
                &id,
                Bead {
                    rig: Some(rig),
                    metadata: json!({"convoy_id": convoy.id, "feature_branch": convoy.branch}),
                    ..Bead::new(
                        "issue",
                        "open",
                        format!("Step {step} of {}", convoy.id),
                        convoy.created,
                    )
                },
            );
            self.dependency(&id, &convoy.id, "tracks");
            self.dependency(&id, &before, "blocks");
            self.open_issues.push(OpenIssue {
                id: id.clone(),
                rig: rig.to_owned(),
                convoy: Some(convoy.id.clone()),
                blocked: true,
            });
            before = id;
        }
    }

    /// The rig's issues in review and their merge requests; answers the direct review in
    /// progress, which the rig's refinery works on (none on a PR rig).
    fn rig_reviews(
        &mut self,
        rig: &str,
        pull_requests: bool,
        polecats: &[(String, String)],
    ) -> Option<String> {
        let mut reviewing = None;
        for k in 0..REVIEWS_PER_RIG {
            let (author, author_name) = &polecats[k % polecats.len()];
            let (issue, updated) = self.issue_in_review(rig, author);
            let mr = self.id("mr");
            let branch = format!("gt/{}/{issue}", author_name.to_ascii_lowercase());
            let mut metadata = json!({"source_bead_id": issue, "source_agent_id": author});
            let refinery = format!("refinery-{rig}");
            let (status, assignee, pr_url) = if pull_requests {
                let number = self.next_id as u64;
                let url = format!("https://github.com/gastown/{rig}/pull/{number}");
                metadata["pr_url"] = url.clone().into();
                let polled = self.now - MINUTE - self.rng.within(MINUTE);
                metadata["last_poll_at"] = iso(polled).into();
                self.pull_requests.push(PullRequest {
                    mr: mr.clone(),
                    url: url.clone(),
                    number,
                    rig: rig.to_owned(),
                    branch: branch.clone(),
                });
                ("in_progress", None, Some(url))
            } else if k == 0 {
                reviewing = Some(mr.clone());
                ("in_progress", Some(refinery.as_str()), None)
            } else {
                ("open", None, None)
            };
            self.merge_request(MergeRequest {
                id: &mr,
                rig,
                issue: &issue,
                branch,
                author,
                metadata,
                status,
                assignee,
                updated,
                pr_url: pr_url.as_deref(),
            });
        }
        reviewing
    }
}

/// A rig's open convoy, as its steps refer to it.
struct Convoy {
    id: String,
    branch: String,
    created: Millis,
    /// The first step, closed.
    first: String,
}

#[cfg(test)]
mod tests {
    use super::super::{seed_kind, Kind, SeedError, Spec};
    use super::*;
    use crate::metrics::point::DataPoint;
    use crate::metrics::writer::AnalyticsSink;
    use crate::reconciler::invariants;
    use crate::reconciler::load;
    use crate::sql::native::NativeSql;
    use crate::sql::Sql;
    use crate::store::{migrate, town};
    use crate::testing::http::{block_on, path_of, remotes, FakeHttp, Reply};
    use crate::testing::ports::{ManualClock, SequentialIds};
    use crate::tick::phases::Unwatched;
    use crate::tick::{run, TickEnv, TickOptions, TickReport};
    use crate::vocabulary::config::TownConfig;

    const NOW: Millis = 1_795_920_000_000;

    struct Discard;

    impl AnalyticsSink for Discard {
        fn write(&self, _point: &DataPoint) -> Result<(), String> {
            Ok(())
        }
    }

    fn steady_town(beads: u32) -> NativeSql {
        let db = NativeSql::in_memory();
        migrate::migrate(&db, NOW).unwrap();
        town::put(&db, "bench", "owner", &TownConfig::default(), NOW).unwrap();
        let spec = Spec {
            beads,
            events: 0,
            seed: 11,
        };
        seed_kind(&db, Kind::Steady, &spec, NOW).unwrap();
        db
    }

    fn counts(db: &NativeSql, query: &str) -> Vec<i64> {
        db.query(query, &[])
            .unwrap()
            .into_iter()
            .map(|r| r.int("n").unwrap())
            .collect()
    }

    #[test]
    fn holds_its_beads_with_a_bounded_population_and_no_backlog() {
        for (beads, rigs) in [(100, 1), (1_000, 2), (10_000, 20), (20_000, 20)] {
            let db = steady_town(beads);
            assert_eq!(
                counts(&db, "SELECT COUNT(*) AS n FROM beads"),
                [beads as i64]
            );
            assert_eq!(counts(&db, "SELECT COUNT(*) AS n FROM rigs"), [rigs]);
            let working = "SELECT COUNT(*) AS n FROM agent_metadata
                 WHERE role = 'polecat' AND status = 'working' GROUP BY rig_id";
            assert_eq!(
                counts(&db, working),
                vec![WORKING_PER_RIG as i64; rigs as usize]
            );
            let reviews = "SELECT COUNT(*) AS n FROM beads
                 WHERE type = 'merge_request' AND status IN ('open', 'in_progress')
                 GROUP BY rig_id";
            assert_eq!(
                counts(&db, reviews),
                vec![REVIEWS_PER_RIG as i64; rigs as usize]
            );
            let pending = "SELECT COUNT(*) AS n FROM town_events WHERE processed_at IS NULL";
            assert_eq!(counts(&db, pending), [0]);
            let snap = load::snapshot(&db, NOW).unwrap();
            assert_eq!(invariants::check(&snap), vec![]);
        }
        let refused = Spec {
            beads: 100,
            events: 1,
            seed: 0,
        };
        let db = steady_town(100);
        assert!(matches!(
            seed_kind(&db, Kind::Steady, &refused, NOW),
            Err(SeedError::Spec(_))
        ));
    }

    /// One tick at `NOW` with the remotes answering as a healthy system: agents running, every
    /// PR of the town open.
    fn tick(db: &NativeSql) -> TickReport {
        let http = FakeHttp::new();
        let prs = db
            .query(
                "SELECT pr_url FROM review_metadata WHERE pr_url IS NOT NULL",
                &[],
            )
            .unwrap();
        for row in prs {
            let url = row.text("pr_url").unwrap();
            let path = path_of(&url).replace("/pull/", "/pulls/");
            let open = Reply::ok(serde_json::json!({"state": "open", "merged": false}));
            http.always("GET", &format!("/repos{path}"), open);
        }
        http.always(
            "*",
            "*",
            Reply::ok(serde_json::json!({"status": "running"})),
        );
        let (ids, clock, remotes) = (SequentialIds::new("t"), ManualClock::at(NOW), remotes());
        block_on(run(&TickEnv {
            sql: db,
            ids: &ids,
            clock: &clock,
            sink: &Discard,
            http: &http,
            remotes: &remotes,
            options: TickOptions::default(),
            watch: &Unwatched,
        }))
    }

    #[test]
    fn settles_once_its_prs_are_polled() {
        let db = steady_town(1_000);
        let first = tick(&db).metrics;
        let prs = "SELECT COUNT(*) AS n FROM review_metadata WHERE pr_url IS NOT NULL";
        assert_eq!(counts(&db, prs), [REVIEWS_PER_RIG as i64]);
        assert_eq!(
            first.actions_by_type.into_iter().collect::<Vec<_>>(),
            [("poll_pr".to_owned(), REVIEWS_PER_RIG as u64)]
        );
        assert_eq!(first.side_effects_failed, 0);
        for _ in 0..3 {
            let quiet = tick(&db).metrics;
            assert_eq!(quiet.actions_emitted, 0, "{quiet:?}");
            assert_eq!(quiet.invariant_violations, 0);
        }
    }
}
