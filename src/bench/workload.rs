//! Seeded workloads: a town of a given size in realistic states plus a backlog of pending events
//! of a realistic mix, written through the SQL port with multi-row INSERTs.
//!
//! For `beads` = N (at least [`MIN_BEADS`]) the town holds exactly N beads:
//! - N/500 rigs (at least one; every other one on the PR strategy);
//! - N/20 polecats (60% working with a fresh heartbeat, each hooked to its in-progress issue,
//!   5% stalled and hooked, the rest idle), one refinery per rig and the mayor;
//! - N/40 issues in review, each tracked by a merge request: every other one a PR under polling,
//!   the rest direct (one in progress per rig, hooked by its working refinery, the others queued);
//! - N/200 convoys of four members (one closed) chained by `blocks` edges, one in ten staged;
//! - 12% open issues (a quarter blocked by another, a fifth with recent dispatch attempts, at most
//!   five failed dispatches in the breaker window), 2% failed issues, 1% escalations, 2% messages;
//! - the rest closed history, two thirds of it merged through a closed merge request;
//!
//! plus one `bead_events` row per bead that left `open` (already reported as domain events, as
//! earlier ticks would have: the analytics watermark is at its end), a warn nudge per stalled
//! agent, a delivered nudge per tenth working polecat, and N processed events over the last six
//! days.
//! Then `events` pending events, spread over the last minute, about the town's own agents, beads,
//! merge requests and convoys: container_status 25%, bead_created 25%, agent_done 15%,
//! agent_completed 15%, pr_status_changed 8%, pr_feedback_detected, pr_auto_merge and
//! bead_cancelled 3% each, convoy_started 2%, container_eviction and nudge_timeout 0.5% each.
//!
//! [`Kind::Steady`] gives instead a town at rest, with no pending event (`workload/steady.rs`
//! says what it holds).
//!
//! Every choice comes from a splitmix64 generator seeded with `seed` and every time is relative to
//! `now`, so one spec gives the same town in any runtime at any time.

mod steady;

use super::rng::Rng;
use super::MAX_BOUND_PARAMS;
use crate::sql::{atomically, Sql, SqlError, Value};
use crate::vocabulary::events::{
    AgentCompleted, AgentDone, BeadCancelled, BeadCreated, CancelStatus, ContainerStatus,
    ConvoyStarted, EventKind, ExitStatus, NoPayload, PrAutoMerge, PrFeedbackDetected,
    PrStatusChanged,
};
use crate::vocabulary::time::{iso, Millis, HOUR, MINUTE, SECOND};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value as Json};
use std::collections::BTreeMap;

/// The smallest town: its fixed minimums (rigs, agents, reviews, a convoy) must fit.
pub const MIN_BEADS: u32 = 100;
/// The largest town and backlog the generator accepts.
pub const MAX_BEADS: u32 = 100_000;
pub const MAX_EVENTS: u32 = 100_000;

/// Which town to generate.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Work waiting in every state, plus `events` pending events (the module's description).
    #[default]
    Backlog,
    /// A town at rest, with no pending event (`workload/steady.rs`).
    Steady,
}

/// What to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    pub beads: u32,
    pub events: u32,
    pub seed: u64,
}

/// Why a spec cannot be generated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecError(pub String);

impl Spec {
    /// Checks the sizes against [`MIN_BEADS`], [`MAX_BEADS`] and [`MAX_EVENTS`].
    pub fn check(&self) -> Result<(), SpecError> {
        if !(MIN_BEADS..=MAX_BEADS).contains(&self.beads) {
            return Err(SpecError(format!(
                "beads must be from {MIN_BEADS} to {MAX_BEADS}"
            )));
        }
        if self.events > MAX_EVENTS {
            return Err(SpecError(format!("events must be at most {MAX_EVENTS}")));
        }
        Ok(())
    }
}

/// Rows written per table by [`seed`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Seeded {
    pub rows: BTreeMap<&'static str, u64>,
}

/// Why a workload was not seeded.
#[derive(Debug, Clone, PartialEq)]
pub enum SeedError {
    /// The spec is out of range (nothing was written).
    Spec(SpecError),
    Sql(SqlError),
}

impl From<SqlError> for SeedError {
    fn from(e: SqlError) -> Self {
        SeedError::Sql(e)
    }
}

/// Replaces the town's contents with the workload of `spec`: empties every table but the town
/// row and the migrations ledger, clears the town's drain, breaker, container upkeep and
/// analytics state, then inserts. One atomic unit; the town row must exist.
pub fn seed(sql: &dyn Sql, spec: &Spec, now: Millis) -> Result<Seeded, SeedError> {
    seed_kind(sql, Kind::Backlog, spec, now)
}

/// As [`seed`], the town of `kind`: a steady town's `spec.events` must be 0.
pub fn seed_kind(sql: &dyn Sql, kind: Kind, spec: &Spec, now: Millis) -> Result<Seeded, SeedError> {
    spec.check().map_err(SeedError::Spec)?;
    if kind == Kind::Steady && spec.events > 0 {
        let refused = SpecError("a steady town has no pending events".into());
        return Err(SeedError::Spec(refused));
    }
    let tables = plan(kind, spec, now);
    atomically(sql, || {
        wipe(sql)?;
        for table in &tables {
            table.write(sql)?;
        }
        // The seeded history is the town's past: earlier ticks reported it already.
        sql.execute(
            "UPDATE town SET analytics_mark = (SELECT COALESCE(MAX(rowid), 0) FROM bead_events)
             WHERE singleton = 1",
            &[],
        )?;
        Ok(Seeded {
            rows: tables.iter().map(|t| (t.name, t.rows() as u64)).collect(),
        })
    })
}

fn wipe(sql: &dyn Sql) -> Result<(), SqlError> {
    let tables = sql.query(
        "SELECT name FROM sqlite_master
         WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'
           AND name NOT LIKE '\\_cf\\_%' ESCAPE '\\'
           AND name NOT IN ('town', 'schema_migrations', 'beads')",
        &[],
    )?;
    for row in tables {
        sql.execute(&format!("DELETE FROM \"{}\"", row.text("name")?), &[])?;
    }
    // Last: the satellite tables refer to beads.
    sql.execute("DELETE FROM beads", &[])?;
    sql.execute(
        "UPDATE town SET draining = 0, drain_nonce = NULL, drain_started_at = NULL,
           breaker_notified_at = NULL, polecat_seq = 21,
           container_token_pushed_at = NULL, container_config_digest = NULL
         WHERE singleton = 1",
        &[],
    )?;
    Ok(())
}

/// The rows of one table, inserted [`MAX_BOUND_PARAMS`] values per statement at most.
struct Table {
    name: &'static str,
    /// Comma-separated.
    columns: &'static str,
    width: usize,
    values: Vec<Value>,
}

impl Table {
    fn new(name: &'static str, columns: &'static str) -> Self {
        Self {
            name,
            columns,
            width: columns.split(',').count(),
            values: Vec::new(),
        }
    }

    fn push<const N: usize>(&mut self, row: [Value; N]) {
        assert_eq!(N, self.width, "a row of {} fits its columns", self.name);
        self.values.extend(row);
    }

    fn rows(&self) -> usize {
        self.values.len() / self.width
    }

    fn write(&self, sql: &dyn Sql) -> Result<(), SqlError> {
        let per_statement = MAX_BOUND_PARAMS / self.width;
        let tuple = format!("({})", vec!["?"; self.width].join(", "));
        let statement = |rows: usize| {
            format!(
                "INSERT INTO {} ({}) VALUES {}",
                self.name,
                self.columns,
                vec![tuple.as_str(); rows].join(", ")
            )
        };
        let full = statement(per_statement);
        for chunk in self.values.chunks(per_statement * self.width) {
            let rows = chunk.len() / self.width;
            if rows == per_statement {
                sql.query(&full, chunk)?;
            } else {
                sql.query(&statement(rows), chunk)?;
            }
        }
        Ok(())
    }
}

/// A bead to insert; `closed_at` follows from a terminal status.
struct Bead<'a> {
    kind: &'static str,
    status: &'static str,
    title: String,
    rig: Option<&'a str>,
    assignee: Option<&'a str>,
    labels: &'static str,
    metadata: Json,
    attempts: i64,
    last_attempt: Option<Millis>,
    last_error: Option<&'static str>,
    created_by: Option<&'a str>,
    created: Millis,
    updated: Millis,
}

/// A merge request to seed ([`Plan::merge_request`]).
struct MergeRequest<'a> {
    id: &'a str,
    rig: &'a str,
    issue: &'a str,
    branch: String,
    author: &'a str,
    metadata: Json,
    status: &'static str,
    assignee: Option<&'a str>,
    updated: Millis,
    pr_url: Option<&'a str>,
}

impl<'a> Bead<'a> {
    fn new(kind: &'static str, status: &'static str, title: String, created: Millis) -> Self {
        Self {
            kind,
            status,
            title,
            rig: None,
            assignee: None,
            labels: "[]",
            metadata: json!({}),
            attempts: 0,
            last_attempt: None,
            last_error: None,
            created_by: None,
            created,
            updated: created,
        }
    }
}

/// An agent to insert, with its bead.
struct Agent<'a> {
    id: &'a str,
    role: &'static str,
    name: &'a str,
    identity: String,
    rig: Option<&'a str>,
    status: &'static str,
    hook: Option<&'a str>,
    last_activity: Millis,
}

/// An agent whose events the backlog reports.
struct Worker {
    id: String,
    name: String,
    rig: String,
    hook: String,
}

/// A PR merge request whose events the backlog reports.
struct PullRequest {
    mr: String,
    url: String,
    number: u64,
    rig: String,
    branch: String,
}

/// An open issue: its rig and, for a convoy member, the convoy.
struct OpenIssue {
    id: String,
    rig: String,
    convoy: Option<String>,
    blocked: bool,
}

const POLECAT_NAMES: [&str; 20] = [
    "Toast", "Maple", "Birch", "Shadow", "Clover", "Ember", "Sage", "Dusk", "Flint", "Coral",
    "Slate", "Reed", "Thorn", "Pike", "Moss", "Wren", "Blaze", "Gale", "Drift", "Lark",
];

const WORDS: [&str; 24] = [
    "the", "agent", "should", "retry", "dispatch", "when", "the", "box", "answers", "with", "an",
    "error", "and", "keep", "bead", "status", "stable", "across", "ticks", "under", "load",
    "review", "merge", "branch",
];

const DAY: Millis = 24 * HOUR;

/// The tables in the order they are written (every row refers only to rows written before).
struct Plan {
    rigs: Table,
    beads: Table,
    agents: Table,
    reviews: Table,
    convoys: Table,
    escalations: Table,
    dependencies: Table,
    bead_events: Table,
    nudges: Table,
    events: Table,
    rng: Rng,
    now: Millis,
    next_id: u32,
    // What the events are about.
    working: Vec<Worker>,
    active: Vec<String>,
    open_issues: Vec<OpenIssue>,
    pull_requests: Vec<PullRequest>,
    convoy_ids: Vec<String>,
}

impl Plan {
    fn new(seed: u64, now: Millis) -> Self {
        Plan {
            rigs: Table::new(
                "rigs",
                "rig_id, name, git_url, default_branch, merge_strategy, created_at",
            ),
            beads: Table::new(
                "beads",
                "bead_id, type, status, title, body, rig_id, assignee_agent_bead_id, priority, \
                 labels, metadata, dispatch_attempts, last_dispatch_attempt_at, \
                 last_dispatch_error, created_by, created_at, updated_at, closed_at",
            ),
            agents: Table::new(
                "agent_metadata",
                "bead_id, role, name, identity, rig_id, container_process_id, status, \
                 current_hook_bead_id, dispatch_attempts, last_activity_at, last_event_type, \
                 last_event_at, active_tools, stalled_at",
            ),
            reviews: Table::new(
                "review_metadata",
                "bead_id, branch, target_branch, merge_commit, pr_url, last_feedback_check_at",
            ),
            convoys: Table::new(
                "convoy_metadata",
                "bead_id, total_beads, closed_beads, feature_branch, merge_mode, staged",
            ),
            escalations: Table::new(
                "escalation_metadata",
                "bead_id, severity, category, acknowledged",
            ),
            dependencies: Table::new(
                "bead_dependencies",
                "bead_id, depends_on_bead_id, dependency_type",
            ),
            bead_events: Table::new(
                "bead_events",
                "bead_event_id, bead_id, event_type, old_value, new_value, created_at",
            ),
            nudges: Table::new(
                "agent_nudges",
                "nudge_id, agent_bead_id, message, source, created_at, delivered_at",
            ),
            events: Table::new(
                "town_events",
                "event_id, event_type, agent_id, bead_id, payload, created_at, processed_at",
            ),
            rng: Rng::new(seed),
            now,
            next_id: 0,
            working: Vec::new(),
            active: Vec::new(),
            open_issues: Vec::new(),
            pull_requests: Vec::new(),
            convoy_ids: Vec::new(),
        }
    }

    /// The backlog town (the module's description).
    fn backlog(&mut self, n: usize, events: usize) {
        let rigs = self.rigs(n);
        let polecats = self.polecats(&rigs, n);
        let reviewing = self.reviews(&rigs, &polecats, n);
        self.refineries_and_mayor(&rigs, &reviewing);
        self.convoys(&rigs, n);
        self.open_issues(&rigs, n);
        self.settled(&rigs, n, false);
        self.history(&rigs, n);
        self.history_events(n);
        self.pending_events(events);
    }
}

fn plan(kind: Kind, spec: &Spec, now: Millis) -> Vec<Table> {
    let mut p = Plan::new(spec.seed, now);
    let n = spec.beads as usize;
    match kind {
        Kind::Backlog => p.backlog(n, spec.events as usize),
        Kind::Steady => p.steady(n),
    }
    vec![
        p.rigs,
        p.beads,
        p.agents,
        p.reviews,
        p.convoys,
        p.escalations,
        p.dependencies,
        p.bead_events,
        p.nudges,
        p.events,
    ]
}

fn text(s: &str) -> Value {
    Value::from(s)
}

fn opt(s: Option<&str>) -> Value {
    Value::from(s)
}

fn time(at: Millis) -> Value {
    Value::Text(iso(at))
}

impl Plan {
    fn id(&mut self, prefix: &str) -> String {
        self.next_id += 1;
        format!("{prefix}-{:05}", self.next_id)
    }

    /// A time in the last `span`.
    fn ago(&mut self, span: Millis) -> Millis {
        self.now - self.rng.within(span)
    }

    fn body(&mut self) -> String {
        let words = 40 + self.rng.below(60) as usize;
        let mut body = String::with_capacity(words * 8);
        for i in 0..words {
            if i > 0 {
                body.push(' ');
            }
            let word: &&str = self.rng.pick(&WORDS);
            body.push_str(word);
        }
        body
    }

    fn bead(&mut self, id: &str, b: Bead<'_>) {
        let body = match b.kind {
            "issue" | "escalation" | "merge_request" => text(&self.body()),
            _ => Value::Null,
        };
        let priority = *self
            .rng
            .pick(&["low", "medium", "medium", "high", "critical"]);
        let terminal = matches!(b.status, "closed" | "failed");
        self.beads.push([
            text(id),
            text(b.kind),
            text(b.status),
            Value::Text(b.title),
            body,
            opt(b.rig),
            opt(b.assignee),
            text(priority),
            text(b.labels),
            Value::Text(b.metadata.to_string()),
            Value::Integer(b.attempts),
            b.last_attempt.map_or(Value::Null, time),
            opt(b.last_error),
            opt(b.created_by),
            time(b.created),
            time(b.updated),
            if terminal {
                time(b.updated)
            } else {
                Value::Null
            },
        ]);
        if b.status != "open" && b.kind != "agent" {
            self.bead_events.push([
                Value::Text(format!("be-{id}")),
                text(id),
                text("status_changed"),
                text("open"),
                text(b.status),
                time(b.updated),
            ]);
        }
    }

    fn dependency(&mut self, bead: &str, depends_on: &str, kind: &str) {
        self.dependencies
            .push([text(bead), text(depends_on), text(kind)]);
    }

    fn agent(&mut self, a: Agent<'_>) {
        let created = self.ago(20 * DAY);
        self.bead(
            a.id,
            Bead {
                rig: a.rig,
                ..Bead::new("agent", "open", a.name.to_owned(), created)
            },
        );
        let active = matches!(a.status, "working" | "stalled");
        let when_active = |v: Value| if active { v } else { Value::Null };
        self.agents.push([
            text(a.id),
            text(a.role),
            text(a.name),
            Value::Text(a.identity),
            opt(a.rig),
            when_active(Value::Text(format!("proc-{}", a.id))),
            text(a.status),
            opt(a.hook),
            Value::Integer(i64::from(active)),
            time(a.last_activity),
            when_active(text("tool_use")),
            time(a.last_activity),
            text(if a.status == "working" {
                "[\"bash\"]"
            } else {
                "[]"
            }),
            if a.status == "stalled" {
                time(a.last_activity + 5 * MINUTE)
            } else {
                Value::Null
            },
        ]);
    }

    fn nudge(&mut self, agent: &str, tier: &str, source: &str, message: &str, at: Millis) {
        let delivered = (source == "system").then_some(at + SECOND);
        self.nudges.push([
            Value::Text(format!("nudge-{agent}-{tier}")),
            text(agent),
            text(message),
            text(source),
            time(at),
            delivered.map_or(Value::Null, time),
        ]);
    }

    fn rigs(&mut self, n: usize) -> Vec<String> {
        let rigs: Vec<String> = (0..(n / 500).max(1))
            .map(|i| format!("rig-{i:02}"))
            .collect();
        for (i, rig) in rigs.iter().enumerate() {
            self.rigs.push([
                text(rig),
                text(rig),
                Value::Text(format!("https://github.com/gastown/{rig}.git")),
                text("main"),
                if i % 2 == 1 { text("pr") } else { Value::Null },
                time(self.now - 60 * DAY),
            ]);
        }
        rigs
    }

    /// The polecats (id, name); each active one hooked to its in-progress issue.
    fn polecats(&mut self, rigs: &[String], n: usize) -> Vec<(String, String)> {
        let count = (n / 20).max(5);
        let mut polecats = Vec::with_capacity(count);
        for i in 0..count {
            let rig = rigs[i % rigs.len()].clone();
            let id = self.id("agent");
            let name = POLECAT_NAMES
                .get(i)
                .map_or_else(|| format!("Polecat-{}", i + 1), |s| (*s).to_owned());
            let identity = format!("{name}-polecat-{rig}@bench");
            // 12 in 20 work, 1 is stalled, the rest idle.
            let state = (i * 7) % 20;
            if state > 12 {
                let last_activity = self.ago(20 * HOUR);
                self.agent(Agent {
                    id: &id,
                    role: "polecat",
                    name: &name,
                    identity,
                    rig: Some(&rig),
                    status: "idle",
                    hook: None,
                    last_activity,
                });
                polecats.push((id, name));
                continue;
            }
            let working = state < 12;
            let hook = self.id("issue");
            let last_activity = if working {
                self.ago(30 * SECOND)
            } else {
                self.now - 10 * MINUTE - self.rng.within(20 * MINUTE)
            };
            let created = self.ago(3 * DAY);
            let dispatched = self.now - 20 * MINUTE - self.rng.within(HOUR);
            let updated = self.ago(4 * MINUTE);
            self.bead(
                &hook,
                Bead {
                    rig: Some(&rig),
                    assignee: Some(&id),
                    attempts: 1,
                    last_attempt: Some(dispatched),
                    updated,
                    ..Bead::new("issue", "in_progress", format!("Task {hook}"), created)
                },
            );
            self.agent(Agent {
                id: &id,
                role: "polecat",
                name: &name,
                identity,
                rig: Some(&rig),
                status: if working { "working" } else { "stalled" },
                hook: Some(&hook),
                last_activity,
            });
            self.active.push(id.clone());
            if !working {
                let message =
                    "You have been quiet for 15 minutes: report progress or call gt_done.";
                let source = crate::vocabulary::actions::NudgeTier::Warn.source();
                self.nudge(&id, "warn", source, message, self.now - 10 * MINUTE);
            } else if i % 10 == 0 {
                let message = "Check the review comments before finishing.";
                self.nudge(&id, "mail", "system", message, self.now - 2 * HOUR);
            }
            if working {
                self.working.push(Worker {
                    id: id.clone(),
                    name: name.clone(),
                    rig,
                    hook,
                });
            }
            polecats.push((id, name));
        }
        polecats
    }

    /// Issues in review and their merge requests: every other one a PR under polling; of the
    /// direct ones, the first of each rig in progress with the rig's refinery. Returns the
    /// direct review in progress of each rig.
    fn reviews(
        &mut self,
        rigs: &[String],
        polecats: &[(String, String)],
        n: usize,
    ) -> BTreeMap<String, String> {
        let mut reviewing = BTreeMap::new();
        for k in 0..(n / 40).max(2) {
            let rig = rigs[k % rigs.len()].clone();
            let (author, author_name) = &polecats[k % polecats.len()];
            let (issue, updated) = self.issue_in_review(&rig, author);
            let mr = self.id("mr");
            let branch = format!("gt/{}/{issue}", author_name.to_ascii_lowercase());
            let pr = (k % 2 == 1).then(|| {
                let number = k as u64 + 1;
                PullRequest {
                    mr: mr.clone(),
                    url: format!("https://github.com/gastown/{rig}/pull/{number}"),
                    number,
                    rig: rig.clone(),
                    branch: branch.clone(),
                }
            });
            let refinery = format!("refinery-{rig}");
            let mut metadata = json!({"source_bead_id": issue, "source_agent_id": author});
            let (status, assignee) = match &pr {
                Some(pr) => {
                    metadata["pr_url"] = pr.url.clone().into();
                    metadata["last_poll_at"] = iso(self.ago(50 * SECOND)).into();
                    ("in_progress", None)
                }
                None if !reviewing.contains_key(&rig) => {
                    reviewing.insert(rig.clone(), mr.clone());
                    ("in_progress", Some(refinery.as_str()))
                }
                None => ("open", None),
            };
            self.merge_request(MergeRequest {
                id: &mr,
                rig: &rig,
                issue: &issue,
                branch,
                author,
                metadata,
                status,
                assignee,
                updated,
                pr_url: pr.as_ref().map(|p| p.url.as_str()),
            });
            self.pull_requests.extend(pr);
        }
        reviewing
    }

    /// An issue in review on `rig`, by `author`, dispatched once, a day ago; returns its id and
    /// when it was last updated (its merge request's too).
    fn issue_in_review(&mut self, rig: &str, author: &str) -> (String, Millis) {
        let issue = self.id("issue");
        let created = self.ago(2 * DAY);
        let updated = self.ago(3 * MINUTE);
        self.bead(
            &issue,
            Bead {
                rig: Some(rig),
                assignee: Some(author),
                attempts: 1,
                last_attempt: Some(created + HOUR),
                updated,
                ..Bead::new("issue", "in_review", format!("Task {issue}"), created)
            },
        );
        (issue, updated)
    }

    /// A merge request bead, its review row (a PR's checked a minute ago) and its `tracks` edge
    /// to the issue under review.
    fn merge_request(&mut self, mr: MergeRequest<'_>) {
        self.bead(
            mr.id,
            Bead {
                rig: Some(mr.rig),
                assignee: mr.assignee,
                labels: "[\"gt:merge-request\"]",
                metadata: mr.metadata,
                created_by: Some(mr.author),
                updated: mr.updated,
                ..Bead::new(
                    "merge_request",
                    mr.status,
                    format!("Review: {}", mr.branch),
                    mr.updated,
                )
            },
        );
        let checked = mr.pr_url.map(|_| self.ago(MINUTE));
        self.reviews.push([
            text(mr.id),
            Value::Text(mr.branch),
            text("main"),
            Value::Null,
            opt(mr.pr_url),
            checked.map_or(Value::Null, time),
        ]);
        self.dependency(mr.id, mr.issue, "tracks");
    }

    /// The refinery of `rig`, working on `hook` (heartbeating) or idle for an hour; its id.
    fn refinery(&mut self, rig: &str, hook: Option<&str>) -> String {
        let id = format!("refinery-{rig}");
        let (status, last_activity) = match hook {
            Some(_) => ("working", self.ago(30 * SECOND)),
            None => ("idle", self.ago(HOUR)),
        };
        self.agent(Agent {
            id: &id,
            role: "refinery",
            name: "refinery",
            identity: format!("refinery-{rig}@bench"),
            rig: Some(rig),
            status,
            hook,
            last_activity,
        });
        id
    }

    /// One refinery per rig, working on the rig's direct review if it has one, and the mayor.
    fn refineries_and_mayor(&mut self, rigs: &[String], reviewing: &BTreeMap<String, String>) {
        for rig in rigs {
            self.refinery(rig, reviewing.get(rig).map(String::as_str));
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
    }

    /// An open convoy bead of four members, one of them done, landing on `branch` after review.
    fn convoy_bead(
        &mut self,
        id: &str,
        branch: &str,
        title: String,
        created: Millis,
        staged: bool,
    ) {
        self.bead(
            id,
            Bead {
                labels: "[\"gt:convoy\"]",
                metadata: json!({"feature_branch": branch}),
                ..Bead::new("convoy", "open", title, created)
            },
        );
        self.convoys.push([
            text(id),
            Value::Integer(4),
            Value::Integer(1),
            text(branch),
            text("review-then-land"),
            Value::Integer(i64::from(staged)),
        ]);
    }

    /// Convoys of four members: member k waits for member k-1; the first member is done.
    fn convoys(&mut self, rigs: &[String], n: usize) {
        for c in 0..(n / 200).max(1) {
            let rig = rigs[c % rigs.len()].clone();
            let convoy = self.id("convoy");
            let branch = format!("convoy/bench-feature-{c}/{convoy}/head");
            let created = self.ago(5 * DAY);
            self.convoy_bead(
                &convoy,
                &branch,
                format!("Feature {c}"),
                created,
                c % 10 == 9,
            );
            let mut previous: Option<String> = None;
            for m in 0..4 {
                let member = self.id("issue");
                self.bead(
                    &member,
                    Bead {
                        rig: Some(&rig),
                        metadata: json!({"convoy_id": convoy, "feature_branch": branch}),
                        updated: created + HOUR,
                        ..Bead::new(
                            "issue",
                            if m == 0 { "closed" } else { "open" },
                            format!("Step {m} of {convoy}"),
                            created,
                        )
                    },
                );
                self.dependency(&member, &convoy, "tracks");
                if let Some(before) = &previous {
                    self.dependency(&member, before, "blocks");
                    self.open_issues.push(OpenIssue {
                        id: member.clone(),
                        rig: rig.clone(),
                        convoy: Some(convoy.clone()),
                        blocked: m > 1,
                    });
                }
                previous = Some(member);
            }
            self.convoy_ids.push(convoy);
        }
    }

    /// Open issues: a quarter blocked by the one before, a fifth with recent dispatch attempts,
    /// the first five of those failed.
    fn open_issues(&mut self, rigs: &[String], n: usize) {
        let mut failed_dispatches = 0;
        let mut previous: Option<String> = None;
        for j in 0..n * 12 / 100 {
            let rig = rigs[j % rigs.len()].clone();
            let id = self.id("issue");
            let created = self.ago(7 * DAY);
            let mut b = Bead::new("issue", "open", format!("Task {id}"), created);
            b.rig = Some(&rig);
            if j % 5 == 0 {
                b.attempts = 1 + self.rng.below(3) as i64;
                b.last_attempt = Some(self.ago(10 * MINUTE));
                if failed_dispatches < 5 {
                    failed_dispatches += 1;
                    b.last_error = Some("container answered 503");
                }
            }
            self.bead(&id, b);
            let blocker = previous.as_ref().filter(|_| j % 4 == 3);
            if let Some(before) = blocker {
                self.dependency(&id, before, "blocks");
            }
            self.open_issues.push(OpenIssue {
                id: id.clone(),
                rig,
                convoy: None,
                blocked: blocker.is_some(),
            });
            previous = Some(id);
        }
    }

    /// Failed issues, escalations (open, with their metadata; every other one acknowledged, or
    /// all of them) and delivered messages.
    fn settled(&mut self, rigs: &[String], n: usize, all_acknowledged: bool) {
        for j in 0..n / 50 {
            let rig = &rigs[j % rigs.len()];
            let id = self.id("issue");
            let created = self.ago(10 * DAY);
            self.bead(
                &id,
                Bead {
                    rig: Some(rig),
                    metadata: json!({"failureReason": "agent_failed",
                                     "failureMessage": "the agent exited with status 1"}),
                    attempts: 5,
                    last_attempt: Some(created + HOUR),
                    updated: created + 2 * HOUR,
                    ..Bead::new("issue", "failed", format!("Task {id}"), created)
                },
            );
        }
        for j in 0..(n / 100).max(1) {
            let id = self.id("esc");
            let created = self.ago(3 * DAY);
            self.bead(
                &id,
                Bead {
                    labels: "[\"gt:escalation\",\"severity:high\"]",
                    ..Bead::new("escalation", "open", format!("Merge conflict {j}"), created)
                },
            );
            self.escalations.push([
                text(&id),
                text("high"),
                text("merge_conflict"),
                Value::Integer(i64::from(all_acknowledged || j % 2 == 0)),
            ]);
        }
        for j in 0..n / 50 {
            let id = self.id("msg");
            let created = self.ago(10 * DAY);
            self.bead(
                &id,
                Bead {
                    updated: created + MINUTE,
                    ..Bead::new("message", "closed", format!("Mail {j}"), created)
                },
            );
        }
    }

    /// Closed issues up to exactly `n` beads, two thirds of them merged through a closed
    /// merge request.
    fn history(&mut self, rigs: &[String], n: usize) {
        let remaining = n.saturating_sub(self.beads.rows());
        let merged = remaining / 3;
        for j in 0..remaining - merged {
            let rig = rigs[j % rigs.len()].clone();
            let issue = self.id("issue");
            let created = self.ago(30 * DAY);
            let closed = created + self.rng.within(DAY);
            self.bead(
                &issue,
                Bead {
                    rig: Some(&rig),
                    attempts: 1,
                    last_attempt: Some(created + MINUTE),
                    updated: closed,
                    ..Bead::new("issue", "closed", format!("Task {issue}"), created)
                },
            );
            if j >= merged {
                continue;
            }
            let mr = self.id("mr");
            let branch = format!("gt/bench/{issue}");
            self.bead(
                &mr,
                Bead {
                    rig: Some(&rig),
                    labels: "[\"gt:merge-request\"]",
                    metadata: json!({"source_bead_id": issue}),
                    updated: closed,
                    ..Bead::new(
                        "merge_request",
                        "closed",
                        format!("Review: {branch}"),
                        closed,
                    )
                },
            );
            let commit = format!("{:016x}", self.rng.next_u64());
            self.reviews.push([
                text(&mr),
                Value::Text(branch),
                text("main"),
                Value::Text(commit),
                Value::Null,
                Value::Null,
            ]);
            self.dependency(&mr, &issue, "tracks");
        }
    }

    /// One event of the mix, with its agent and bead.
    fn event(&mut self) -> (EventKind, Option<String>, Option<String>) {
        let roll = self.rng.below(1000);
        let rng = &mut self.rng;
        match roll {
            0..250 => {
                let agent = rng.pick(&self.active).clone();
                let status = *rng.pick(&["exited", "not_found", "unknown"]);
                let kind = EventKind::ContainerStatus(ContainerStatus {
                    status: status.into(),
                    exit_reason: (status == "exited").then(|| "process exited".into()),
                });
                (kind, Some(agent), None)
            }
            250..500 => {
                let issue = rng.pick(&self.open_issues);
                let kind = EventKind::BeadCreated(BeadCreated {
                    bead_type: "issue".into(),
                    rig_id: Some(issue.rig.clone()),
                    convoy_id: issue.convoy.clone(),
                    has_blockers: Some(issue.blocked),
                });
                (kind, None, Some(issue.id.clone()))
            }
            500..650 => {
                let w = rng.pick(&self.working);
                let pr_url = (rng.below(2) == 1)
                    .then(|| format!("https://github.com/gastown/{}/pull/{}", w.rig, roll));
                let kind = EventKind::AgentDone(AgentDone {
                    branch: format!("gt/{}/{}", w.name.to_ascii_lowercase(), w.hook),
                    pr_url,
                    summary: Some(format!("Finished {}", w.hook)),
                });
                (kind, Some(w.id.clone()), None)
            }
            650..800 => {
                let w = rng.pick(&self.working);
                let failed = rng.below(5) == 0;
                let kind = EventKind::AgentCompleted(AgentCompleted {
                    status: if failed {
                        ExitStatus::Failed
                    } else {
                        ExitStatus::Completed
                    },
                    reason: failed.then(|| "exit code 1".into()),
                });
                (kind, Some(w.id.clone()), None)
            }
            800..880 => {
                let pr = rng.pick(&self.pull_requests);
                let state = if rng.below(10) < 7 {
                    "merged"
                } else {
                    "closed"
                };
                let kind = EventKind::PrStatusChanged(PrStatusChanged {
                    pr_url: pr.url.clone(),
                    pr_state: state.into(),
                });
                (kind, None, Some(pr.mr.clone()))
            }
            880..910 => {
                let pr = rng.pick(&self.pull_requests);
                let kind = EventKind::PrFeedbackDetected(PrFeedbackDetected {
                    mr_bead_id: pr.mr.clone(),
                    pr_url: pr.url.clone(),
                    pr_number: pr.number,
                    repo: format!("gastown/{}", pr.rig),
                    branch: pr.branch.clone(),
                    has_unresolved_comments: rng.below(2) == 0,
                    has_failing_checks: rng.below(2) == 0,
                    has_unchecked_runs: false,
                });
                (kind, None, Some(pr.mr.clone()))
            }
            910..940 => {
                let pr = rng.pick(&self.pull_requests);
                let kind = EventKind::PrAutoMerge(PrAutoMerge {
                    mr_bead_id: pr.mr.clone(),
                    pr_url: pr.url.clone(),
                });
                (kind, None, Some(pr.mr.clone()))
            }
            940..970 => {
                let issue = rng.pick(&self.open_issues);
                let cancel_status = if rng.below(2) == 0 {
                    CancelStatus::Closed
                } else {
                    CancelStatus::Failed
                };
                let kind = EventKind::BeadCancelled(BeadCancelled { cancel_status });
                (kind, None, Some(issue.id.clone()))
            }
            970..990 => {
                let convoy_id = rng.pick(&self.convoy_ids).clone();
                (
                    EventKind::ConvoyStarted(ConvoyStarted { convoy_id }),
                    None,
                    None,
                )
            }
            990..995 => (EventKind::ContainerEviction(NoPayload {}), None, None),
            _ => (EventKind::NudgeTimeout(NoPayload {}), None, None),
        }
    }

    fn push_event(&mut self, id: String, created: Millis, processed: Option<Millis>) {
        let (kind, agent, bead) = self.event();
        self.events.push([
            Value::Text(id),
            text(kind.type_name()),
            Value::from(agent),
            Value::from(bead),
            Value::Text(kind.payload().to_string()),
            time(created),
            processed.map_or(Value::Null, time),
        ]);
    }

    /// One processed event per bead over the last six days (all within the retention).
    fn history_events(&mut self, n: usize) {
        let span = 6 * DAY;
        for i in 0..n {
            let created = self.now - span + span * i as Millis / n as Millis;
            self.push_event(format!("ev-h-{i:06}"), created, Some(created + 2 * SECOND));
        }
    }

    /// The backlog, oldest first, over the last minute.
    fn pending_events(&mut self, n: usize) {
        for i in 0..n {
            let created = self.now - MINUTE + MINUTE * i as Millis / n as Millis;
            self.push_event(format!("ev-p-{i:06}"), created, None);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconciler::invariants;
    use crate::reconciler::load;
    use crate::sql::native::NativeSql;
    use crate::store::{events, migrate, town};
    use crate::vocabulary::config::TownConfig;

    const NOW: Millis = 1_795_920_000_000;

    fn town_db() -> NativeSql {
        let db = NativeSql::in_memory();
        migrate::migrate(&db, NOW).unwrap();
        town::put(&db, "bench", "owner", &TownConfig::default(), NOW).unwrap();
        db
    }

    fn count(db: &NativeSql, query: &str) -> i64 {
        db.one(&format!("SELECT COUNT(*) AS n FROM {query}"), &[])
            .unwrap()
            .int("n")
            .unwrap()
    }

    fn dump(db: &NativeSql) -> Vec<Vec<Value>> {
        let mut rows = Vec::new();
        for table in [
            "beads",
            "agent_metadata",
            "bead_dependencies",
            "town_events",
        ] {
            rows.extend(
                db.query(&format!("SELECT * FROM {table} ORDER BY rowid"), &[])
                    .unwrap()
                    .values,
            );
        }
        rows
    }

    #[test]
    fn a_town_has_exactly_its_beads_in_every_state_with_its_backlog() {
        let db = town_db();
        let spec = Spec {
            beads: 1_000,
            events: 300,
            seed: 7,
        };
        let seeded = seed(&db, &spec, NOW).unwrap();
        assert_eq!(seeded.rows["beads"], 1_000);
        assert_eq!(count(&db, "beads"), 1_000);
        assert_eq!(seeded.rows["town_events"], 1_300);
        assert_eq!(
            count(&db, "town_events WHERE processed_at IS NULL"),
            300,
            "the backlog"
        );
        assert_eq!(count(&db, "agent_metadata"), 50 + 2 + 1);
        // 12 polecats in 20 work, and the refinery of the rig with direct reviews.
        assert_eq!(
            count(&db, "agent_metadata WHERE status = 'working'"),
            31 + 1
        );
        for status in ["open", "in_progress", "in_review", "closed", "failed"] {
            assert!(count(&db, &format!("beads WHERE status = '{status}'")) > 0);
        }
        assert_eq!(count(&db, "review_metadata WHERE pr_url IS NOT NULL"), 12);
        assert!(count(&db, "review_metadata WHERE pr_url IS NULL") > 12);
        assert_eq!(count(&db, "convoy_metadata"), 5);
        assert!(count(&db, "bead_dependencies WHERE dependency_type = 'blocks'") > 0);
        assert_eq!(
            count(&db, "beads WHERE last_dispatch_error IS NOT NULL"),
            5,
            "below the breaker's threshold"
        );
        // Every pending event parses and refers to rows of this town.
        for e in events::pending(&db, 1_000, i64::MAX).unwrap() {
            assert!(e.kind.is_ok(), "{e:?}");
            if let Some(agent) = &e.agent_id {
                assert_eq!(
                    count(&db, &format!("agent_metadata WHERE bead_id = '{agent}'")),
                    1
                );
            }
            if let Some(bead) = &e.bead_id {
                assert_eq!(count(&db, &format!("beads WHERE bead_id = '{bead}'")), 1);
            }
        }
    }

    #[test]
    fn the_town_is_consistent_and_gives_the_reconciler_work() {
        let db = town_db();
        let spec = Spec {
            beads: 10_000,
            events: 0,
            seed: 42,
        };
        seed(&db, &spec, NOW).unwrap();
        let snap = load::snapshot(&db, NOW).unwrap();
        assert_eq!(invariants::check(&snap), vec![]);
        let actions =
            crate::reconciler::reconcile(&snap, &crate::reconciler::Options::of(&snap), NOW);
        assert!(actions.len() > 100, "{} actions", actions.len());
        assert!(
            snap.beads().len() < 5_000,
            "history stays out of the snapshot"
        );
    }

    #[test]
    fn the_seeded_history_counts_as_reported() {
        let db = town_db();
        let spec = Spec {
            beads: 100,
            events: 0,
            seed: 42,
        };
        seed(&db, &spec, NOW).unwrap();
        let mark = db
            .one("SELECT analytics_mark FROM town", &[])
            .unwrap()
            .int("analytics_mark")
            .unwrap();
        assert!(mark > 0);
        assert_eq!(count(&db, &format!("bead_events WHERE rowid > {mark}")), 0);
    }

    #[test]
    fn the_same_spec_gives_the_same_rows_and_reseeding_replaces_them() {
        let spec = Spec {
            beads: 100,
            events: 100,
            seed: 1,
        };
        let (a, b) = (town_db(), town_db());
        seed(&a, &spec, NOW).unwrap();
        seed(&b, &Spec { seed: 2, ..spec }, NOW).unwrap();
        assert_ne!(dump(&a), dump(&b));
        a.execute("UPDATE town SET draining = 1", &[]).unwrap();
        seed(&b, &spec, NOW).unwrap();
        seed(&a, &spec, NOW).unwrap();
        assert_eq!(dump(&a), dump(&b));
        assert_eq!(count(&a, "beads"), 100);
        assert!(town::get(&a).unwrap().unwrap().drain.is_none());
    }

    #[test]
    fn no_statement_binds_more_than_the_durable_object_allows() {
        struct Checked(NativeSql);
        impl Sql for Checked {
            fn query(&self, sql: &str, params: &[Value]) -> Result<crate::sql::Rows, SqlError> {
                assert!(params.len() <= MAX_BOUND_PARAMS, "{}", params.len());
                self.0.query(sql, params)
            }
            fn batch(&self, sql: &str) -> Result<(), SqlError> {
                self.0.batch(sql)
            }
            fn atomic(&self, body: &mut dyn FnMut() -> bool) -> Result<(), SqlError> {
                self.0.atomic(body)
            }
            fn counters(&self) -> crate::sql::IoCounters {
                self.0.counters()
            }
        }
        let db = Checked(town_db());
        let spec = Spec {
            beads: 100,
            events: 10,
            seed: 3,
        };
        seed(&db, &spec, NOW).unwrap();
    }

    #[test]
    fn refuses_sizes_out_of_range() {
        let db = town_db();
        for (beads, events) in [(99, 0), (MAX_BEADS + 1, 0), (100, MAX_EVENTS + 1)] {
            let spec = Spec {
                beads,
                events,
                seed: 0,
            };
            assert!(spec.check().is_err());
            assert!(matches!(seed(&db, &spec, NOW), Err(SeedError::Spec(_))));
        }
    }
}
