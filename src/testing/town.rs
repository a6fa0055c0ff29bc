//! A town on real SQLite built from a short description, and a tick to run over it: the
//! fixtures of the tests that go through the store.
//!
//! ```ignore
//! let town = TownBuilder::new()
//!     .rig("r1")
//!     .bead(BeadSpec::issue("b1").rig("r1").status(BeadStatus::InProgress))
//!     .agent(AgentSpec::polecat("a1").rig("r1").hook("b1").status(AgentStatus::Working))
//!     .build();
//! ```
//! Fixture rows are written with plain SQL so a test can start from any state, including ones
//! the operations would never produce.

use crate::domain::apply::{apply_event, ApplyError};
use crate::domain::{Ctx, DomainError};
use crate::effects::remotes::Remotes;
use crate::params;
use crate::sql::atomically;
use crate::sql::native::NativeSql;
pub use crate::sql::Sql;
use crate::store::{agents, beads, convoys, events, migrate, reviews, rows, town};
use crate::testing::http::{block_on, FakeHttp};
use crate::testing::ports::{ManualClock, RecordingSink, SequentialIds};
use crate::tick::phases::Unwatched;
use crate::tick::{self, TickEnv, TickOptions, TickReport};
use crate::vocabulary::config::TownConfig;
use crate::vocabulary::events::{EventKind, RecordedEvent};
use crate::vocabulary::model::*;
use crate::vocabulary::time::{iso, Millis};
use serde_json::{json, Map, Value as Json};
use std::cell::Cell;

/// The remotes of the fixtures (answered by a `FakeHttp`), 16 calls in flight.
pub fn remotes() -> Remotes {
    Remotes {
        concurrency: 16,
        ..crate::testing::http::remotes()
    }
}

/// The fixtures' "now".
pub use super::snapshot::T0;
pub const TOWN_ID: &str = "town-0123456789";

/// A bead to put in the fixture.
#[derive(Debug, Clone)]
pub struct BeadSpec {
    id: String,
    bead_type: BeadType,
    status: BeadStatus,
    title: String,
    rig: Option<String>,
    assignee: Option<String>,
    body: Option<String>,
    labels: Vec<String>,
    metadata: Map<String, Json>,
    created_by: Option<String>,
    updated_at: Option<Millis>,
    dispatch_attempts: i64,
    review: Option<(String, String, Option<String>)>,
    convoy: Option<ConvoySpec>,
}

#[derive(Debug, Clone)]
struct ConvoySpec {
    total: i64,
    feature_branch: Option<String>,
    merge_mode: Option<MergeMode>,
    staged: bool,
}

impl BeadSpec {
    pub fn new(id: &str, bead_type: BeadType) -> Self {
        Self {
            id: id.into(),
            bead_type,
            status: BeadStatus::Open,
            title: format!("bead {id}"),
            body: None,
            rig: None,
            assignee: None,
            labels: Vec::new(),
            metadata: Map::new(),
            created_by: None,
            updated_at: None,
            dispatch_attempts: 0,
            review: None,
            convoy: None,
        }
    }

    pub fn issue(id: &str) -> Self {
        Self::new(id, BeadType::Issue)
    }

    /// A merge request of `source` on `branch` into `main`.
    pub fn mr(id: &str, source: &str, branch: &str) -> Self {
        let mut b = Self::new(id, BeadType::MergeRequest);
        b.labels.push(labels::MERGE_REQUEST.into());
        b.metadata.insert("source_bead_id".into(), source.into());
        b.review = Some((branch.into(), "main".into(), None));
        b
    }

    /// A review-then-land convoy of `total` members with a feature branch.
    pub fn convoy(id: &str, total: i64) -> Self {
        let mut b = Self::new(id, BeadType::Convoy);
        b.labels.push(labels::CONVOY.into());
        b.convoy = Some(ConvoySpec {
            total,
            feature_branch: Some(format!("convoy/{id}/head")),
            merge_mode: Some(MergeMode::ReviewThenLand),
            staged: false,
        });
        b
    }

    pub fn status(mut self, s: BeadStatus) -> Self {
        self.status = s;
        self
    }
    pub fn title(mut self, t: &str) -> Self {
        self.title = t.into();
        self
    }

    pub fn body(mut self, b: &str) -> Self {
        self.body = Some(b.into());
        self
    }
    pub fn rig(mut self, r: &str) -> Self {
        self.rig = Some(r.into());
        self
    }
    pub fn assignee(mut self, a: &str) -> Self {
        self.assignee = Some(a.into());
        self
    }
    pub fn label(mut self, l: &str) -> Self {
        self.labels.push(l.into());
        self
    }
    pub fn meta(mut self, key: &str, v: Json) -> Self {
        self.metadata.insert(key.into(), v);
        self
    }
    pub fn created_by(mut self, c: &str) -> Self {
        self.created_by = Some(c.into());
        self
    }
    pub fn updated_at(mut self, at: Millis) -> Self {
        self.updated_at = Some(at);
        self
    }
    pub fn dispatch_attempts(mut self, n: i64) -> Self {
        self.dispatch_attempts = n;
        self
    }
    pub fn pr_url(mut self, url: &str) -> Self {
        let review = self.review.as_mut().expect("pr_url is for merge requests");
        review.2 = Some(url.into());
        self.metadata.insert("pr_url".into(), url.into());
        self
    }
    pub fn target(mut self, branch: &str) -> Self {
        self.review
            .as_mut()
            .expect("target is for merge requests")
            .1 = branch.into();
        self
    }
    pub fn merge_mode(mut self, m: Option<MergeMode>) -> Self {
        self.convoy
            .as_mut()
            .expect("merge_mode is for convoys")
            .merge_mode = m;
        self
    }
    pub fn feature_branch(mut self, b: Option<&str>) -> Self {
        self.convoy
            .as_mut()
            .expect("feature_branch is for convoys")
            .feature_branch = b.map(Into::into);
        self
    }
    pub fn staged(mut self) -> Self {
        self.convoy.as_mut().expect("staged is for convoys").staged = true;
        self
    }
}

/// An agent to put in the fixture.
#[derive(Debug, Clone)]
pub struct AgentSpec {
    id: String,
    role: AgentRole,
    name: String,
    rig: Option<String>,
    status: AgentStatus,
    hook: Option<String>,
    last_activity_at: Option<Millis>,
    dispatch_attempts: i64,
    checkpoint: Option<String>,
}

impl AgentSpec {
    pub fn new(id: &str, role: AgentRole) -> Self {
        Self {
            id: id.into(),
            role,
            name: id.into(),
            rig: None,
            status: AgentStatus::Idle,
            hook: None,
            last_activity_at: None,
            dispatch_attempts: 0,
            checkpoint: None,
        }
    }
    pub fn polecat(id: &str) -> Self {
        Self::new(id, AgentRole::Polecat)
    }
    pub fn refinery(id: &str) -> Self {
        Self::new(id, AgentRole::Refinery)
    }
    pub fn mayor(id: &str) -> Self {
        Self::new(id, AgentRole::Mayor)
    }
    pub fn name(mut self, n: &str) -> Self {
        self.name = n.into();
        self
    }
    pub fn rig(mut self, r: &str) -> Self {
        self.rig = Some(r.into());
        self
    }
    pub fn status(mut self, s: AgentStatus) -> Self {
        self.status = s;
        self
    }
    pub fn hook(mut self, bead: &str) -> Self {
        self.hook = Some(bead.into());
        self
    }
    pub fn active_at(mut self, at: Millis) -> Self {
        self.last_activity_at = Some(at);
        self
    }
    pub fn dispatch_attempts(mut self, n: i64) -> Self {
        self.dispatch_attempts = n;
        self
    }
    pub fn checkpoint(mut self, c: &str) -> Self {
        self.checkpoint = Some(c.into());
        self
    }
}

/// Describes a town; [`TownBuilder::build`] writes it.
#[derive(Debug, Clone, Default)]
pub struct TownBuilder {
    config: TownConfig,
    rigs: Vec<(String, String)>,
    beads: Vec<BeadSpec>,
    agents: Vec<AgentSpec>,
    deps: Vec<(String, String, DependencyType)>,
}

impl TownBuilder {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn config(mut self, c: TownConfig) -> Self {
        self.config = c;
        self
    }
    /// A rig whose default branch is `main`.
    pub fn rig(self, id: &str) -> Self {
        self.rig_on(id, "main")
    }
    pub fn rig_on(mut self, id: &str, default_branch: &str) -> Self {
        self.rigs.push((id.into(), default_branch.into()));
        self
    }
    pub fn bead(mut self, b: BeadSpec) -> Self {
        self.beads.push(b);
        self
    }
    pub fn agent(mut self, a: AgentSpec) -> Self {
        self.agents.push(a);
        self
    }
    /// `bead` depends on `on` with an edge of `kind`.
    pub fn dep(mut self, bead: &str, on: &str, kind: DependencyType) -> Self {
        self.deps.push((bead.into(), on.into(), kind));
        self
    }

    pub fn build(self) -> Town {
        let db = NativeSql::in_memory();
        // The Durable Object's SQLite enforces foreign keys; so do the fixtures.
        db.batch("PRAGMA foreign_keys = ON").unwrap();
        migrate::migrate(&db, T0).unwrap();
        town::put(&db, TOWN_ID, "owner-1", &self.config, T0).unwrap();
        for (id, branch) in &self.rigs {
            crate::store::rigs::insert(
                &db,
                id,
                id,
                &format!("https://github.com/o/{id}"),
                branch,
                T0,
            )
            .unwrap();
        }
        for b in &self.beads {
            let mut new = beads::NewBead::new(&b.id, b.bead_type, &b.title);
            new.rig_id = b.rig.clone();
            new.body = b.body.clone();
            new.labels = b.labels.clone();
            new.metadata = b.metadata.clone();
            new.created_by = b.created_by.clone();
            beads::insert(&db, &new, T0).unwrap();
            db.execute(
                "UPDATE beads SET status = ?, updated_at = ?, dispatch_attempts = ?,
                        closed_at = CASE WHEN ? = 'closed' THEN ? END
                 WHERE bead_id = ?",
                &params![
                    b.status.as_str(),
                    iso(b.updated_at.unwrap_or(T0)),
                    b.dispatch_attempts,
                    b.status.as_str(),
                    iso(T0),
                    b.id.as_str()
                ],
            )
            .unwrap();
            if let Some((branch, target, pr_url)) = &b.review {
                reviews::insert(&db, &b.id, branch, target, pr_url.as_deref()).unwrap();
                if let Some(source) = b.metadata.get("source_bead_id").and_then(Json::as_str) {
                    db.execute(
                        "INSERT INTO bead_dependencies VALUES (?, ?, 'tracks')",
                        &params![b.id.as_str(), source],
                    )
                    .unwrap();
                }
            }
            if let Some(c) = &b.convoy {
                db.execute(
                    "INSERT INTO convoy_metadata (bead_id, total_beads, feature_branch, merge_mode, staged)
                     VALUES (?, ?, ?, ?, ?)",
                    &params![
                        b.id.as_str(),
                        c.total,
                        c.feature_branch.as_deref(),
                        c.merge_mode.map(|m| m.as_str()),
                        c.staged
                    ],
                )
                .unwrap();
            }
        }
        for a in &self.agents {
            agents::insert(
                &db,
                &agents::NewAgent {
                    agent_id: a.id.clone(),
                    role: a.role,
                    name: a.name.clone(),
                    identity: format!("{}-{}@fixture", a.name, a.role),
                    rig_id: a.rig.clone(),
                },
                T0,
            )
            .unwrap();
            db.execute(
                "UPDATE agent_metadata SET status = ?, current_hook_bead_id = ?,
                        last_activity_at = ?, dispatch_attempts = ?, checkpoint = ?
                 WHERE bead_id = ?",
                &params![
                    a.status.as_str(),
                    a.hook.as_deref(),
                    a.last_activity_at.map(iso),
                    a.dispatch_attempts,
                    a.checkpoint.as_deref(),
                    a.id.as_str()
                ],
            )
            .unwrap();
        }
        // Assignees are set after the agents exist (any id is accepted, as in the schema).
        for b in &self.beads {
            if let Some(a) = &b.assignee {
                db.execute(
                    "UPDATE beads SET assignee_agent_bead_id = ? WHERE bead_id = ?",
                    &params![a.as_str(), b.id.as_str()],
                )
                .unwrap();
            }
        }
        for (bead, on, kind) in &self.deps {
            db.execute(
                "INSERT INTO bead_dependencies VALUES (?, ?, ?)",
                &params![bead.as_str(), on.as_str(), kind.as_str()],
            )
            .unwrap();
        }
        Town {
            db,
            ids: SequentialIds::new("id"),
            now: Cell::new(T0),
        }
    }
}

/// A built town: the database, an id source and a clock the test moves.
pub struct Town {
    pub db: NativeSql,
    pub ids: SequentialIds,
    now: Cell<Millis>,
}

/// A town event as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Stored {
    pub event_type: String,
    pub agent_id: Option<String>,
    pub bead_id: Option<String>,
    pub payload: Json,
}

impl Town {
    pub fn ctx(&self) -> Ctx<'_> {
        Ctx {
            sql: &self.db,
            ids: &self.ids,
            now: self.now.get(),
        }
    }

    pub fn now(&self) -> Millis {
        self.now.get()
    }

    pub fn advance(&self, ms: Millis) {
        self.now.set(self.now.get() + ms);
    }

    /// Runs an operation in one atomic unit, as the HTTP handlers and the tick do.
    pub fn run<T>(
        &self,
        op: impl FnOnce(&Ctx<'_>) -> Result<T, DomainError>,
    ) -> Result<T, DomainError> {
        let ctx = self.ctx();
        atomically(&self.db, || op(&ctx))
    }

    /// Applies an event as the tick does (atomically; an error rolls its writes back).
    pub fn apply(
        &self,
        kind: EventKind,
        agent_id: Option<&str>,
        bead_id: Option<&str>,
    ) -> Result<(), ApplyError> {
        let event = RecordedEvent {
            event_id: self.ids_next(),
            agent_id: agent_id.map(Into::into),
            bead_id: bead_id.map(Into::into),
            created_at: iso(self.now()),
            retry_count: 0,
            kind: Ok(kind),
        };
        let ctx = self.ctx();
        atomically(&self.db, || apply_event(&ctx, &event))
    }

    /// Runs one whole tick at the town's `now`, with `http` standing in for the container and
    /// the PR host, and `sink` for Analytics Engine.
    pub fn tick_with(&self, http: &FakeHttp, sink: &RecordingSink) -> TickReport {
        let clock = ManualClock::at(self.now());
        let remotes = remotes();
        let env = TickEnv {
            sql: &self.db,
            ids: &self.ids,
            clock: &clock,
            sink,
            http,
            remotes: &remotes,
            options: TickOptions::default(),
            watch: &Unwatched,
        };
        block_on(tick::run(&env))
    }

    fn ids_next(&self) -> String {
        use crate::ports::Ids;
        self.ids.new_id()
    }

    pub fn bead(&self, id: &str) -> Bead {
        beads::get(&self.db, id)
            .unwrap()
            .unwrap_or_else(|| panic!("no bead {id}"))
    }

    pub fn has_bead(&self, id: &str) -> bool {
        beads::get(&self.db, id).unwrap().is_some()
    }

    pub fn agent(&self, id: &str) -> Agent {
        agents::get(&self.db, id)
            .unwrap()
            .unwrap_or_else(|| panic!("no agent {id}"))
    }

    pub fn convoy(&self, id: &str) -> Convoy {
        convoys::get(&self.db, id)
            .unwrap()
            .unwrap_or_else(|| panic!("no convoy {id}"))
    }

    pub fn review(&self, id: &str) -> Review {
        reviews::get(&self.db, id)
            .unwrap()
            .unwrap_or_else(|| panic!("no review {id}"))
    }

    /// The bead's history, oldest first.
    pub fn history(&self, id: &str) -> Vec<BeadEvent> {
        beads::events_of(&self.db, id).unwrap()
    }

    /// The event types of the bead's history, oldest first.
    pub fn history_types(&self, id: &str) -> Vec<String> {
        self.history(id).into_iter().map(|e| e.event_type).collect()
    }

    /// Pending town events, oldest first.
    pub fn town_events(&self) -> Vec<Stored> {
        self.db
            .query(
                "SELECT event_type, agent_id, bead_id, payload FROM town_events
                 WHERE processed_at IS NULL ORDER BY created_at, rowid",
                &[],
            )
            .unwrap()
            .into_iter()
            .map(|r| Stored {
                event_type: r.text("event_type").unwrap(),
                agent_id: r.opt_text("agent_id").unwrap(),
                bead_id: r.opt_text("bead_id").unwrap(),
                payload: serde_json::from_str(&r.text("payload").unwrap()).unwrap(),
            })
            .collect()
    }

    /// Beads matching a SQL condition on alias `b`, oldest first.
    pub fn beads_where(&self, condition: &str) -> Vec<Bead> {
        self.db
            .query(
                &format!(
                    "SELECT {} FROM beads b WHERE {condition} ORDER BY b.created_at, b.rowid",
                    rows::BEAD_COLUMNS
                ),
                &[],
            )
            .unwrap()
            .into_iter()
            .map(|r| rows::bead(&r).unwrap())
            .collect()
    }

    /// Whether the edge `bead -> on` of `kind` exists.
    pub fn has_dep(&self, bead: &str, on: &str, kind: DependencyType) -> bool {
        self.db
            .first(
                "SELECT 1 AS x FROM bead_dependencies
                 WHERE bead_id = ? AND depends_on_bead_id = ? AND dependency_type = ?",
                &params![bead, on, kind.as_str()],
            )
            .unwrap()
            .is_some()
    }

    pub fn count(&self, table: &str) -> i64 {
        self.db
            .one(&format!("SELECT COUNT(*) AS n FROM {table}"), &[])
            .unwrap()
            .int("n")
            .unwrap()
    }

    /// Every row of every table: compare before and after to prove nothing was written.
    pub fn snapshot(&self) -> Json {
        let tables = self
            .db
            .query(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'
                 ORDER BY name",
                &[],
            )
            .unwrap();
        let mut all = Map::new();
        for t in tables {
            let name = t.text("name").unwrap();
            let rows: Vec<Json> = self
                .db
                .query(&format!("SELECT * FROM \"{name}\" ORDER BY rowid"), &[])
                .unwrap()
                .into_iter()
                .map(|r| r.to_json())
                .collect();
            all.insert(name, json!(rows));
        }
        Json::Object(all)
    }

    /// Records an event the way the HTTP handlers do, for tests that run a whole tick.
    pub fn record(&self, kind: &EventKind, subject: &events::Subject) {
        self.ctx().record(kind, subject).unwrap();
    }
}
