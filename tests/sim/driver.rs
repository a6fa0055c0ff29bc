//! The deterministic simulation: one town on real SQLite, driven tick after tick by a seeded
//! stream of what people, agents, the container plane and GitHub do, with the clock moving by
//! seconds to a day between ticks.
//!
//! Between ticks, through the domain operations and the event log as the HTTP handlers use
//! them: issues filed, convoys slung (some staged, some refused for a cycle) and started, beads
//! cancelled, the town's refinery settings changed, container evictions and drains ending; each
//! running agent process heartbeats (unless wedged; some stay stuck on one SDK event), and now
//! and then finishes: `agent_done` with or without a PR URL, `agent_completed` (completed,
//! failed, evicted), a refinery's request for changes, or a silent exit the container reports.
//! GitHub PRs get merged or closed by hand. The container and GitHub answer through a
//! [`FakeHttp`](gastown_town::testing::http::FakeHttp) scripted each tick from the
//! [`Remote`] model, with injected failures.
//!
//! After every tick [`Sim::check`] asserts:
//! - **exactly once**: every event accepted into the log (the simulation's own ledger of ids,
//!   plus the ones the tick itself records) is still there until pruned; one pending before the
//!   tick is now processed or poisoned, or counted one more failure; every processed or
//!   poisoned mark was committed exactly once per event (seen by [`WatchedSql`]), in the same
//!   unit as the event's application; the merge requests agents submitted equal the committed
//!   `agent_done` applications that submitted one; the table holds exactly the ledger's events
//!   once the 7-day prune is accounted for;
//! - **invariants** (src/reconciler/invariants.rs, run by the tick itself after its side effects): none
//!   violated, except #4 while its bead is not yet 5 minutes stale or until the next tick (B4
//!   repairs it then) and #7 until the next tick (reconcileAgents rule A idles the agent);
//! - **no phase failed**: the tick logged no error but violations and poisoned events.

use super::remote::{Proc, Remote, RemoteStats};
use super::rng::Rng;
use super::sql::{Fact, WatchedSql};
use gastown_town::domain::agents::{self, Watermark};
use gastown_town::domain::beads::{self, NewIssue};
use gastown_town::domain::convoys::{self, ConvoyTask, SlingConvoy};
use gastown_town::domain::{drain, reviews, Ctx, DomainError};
use gastown_town::effects::start::branch_name;
use gastown_town::params;
use gastown_town::reconciler::constants::ORPHANED_SOURCE_TIMEOUT_MS;
use gastown_town::reconciler::invariants;
use gastown_town::reconciler::load;
use gastown_town::sql::{atomically, Sql};
use gastown_town::store::events::{Subject, MAX_EVENT_RETRIES, RETENTION_MS, RETRY_SPACING_MS};
use gastown_town::store::{agents as agent_store, town};
use gastown_town::testing::http::block_on;
use gastown_town::testing::ports::{ManualClock, RecordingSink};
use gastown_town::testing::town::{remotes, TownBuilder, T0};
use gastown_town::tick::phases::Unwatched;
use gastown_town::tick::{self, TickEnv, TickOptions};
use gastown_town::vocabulary::config::{MergeStrategy, TownConfig};
use gastown_town::vocabulary::events::{
    AgentCompleted, AgentDone, CancelStatus, EventKind, ExitStatus,
};
use gastown_town::vocabulary::model::{AgentRole, BeadStatus, MergeMode, Priority};
use gastown_town::vocabulary::time::{iso, parse_iso, Millis, HOUR, MINUTE, SECOND};
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// Event types the tick records by itself (observation and side-effect outcomes).
const TICK_EVENTS: [&str; 4] = [
    "container_status",
    "pr_status_changed",
    "pr_feedback_detected",
    "pr_auto_merge",
];

/// Live issues and merge requests above which nobody files more work (keeps each tick small).
const MAX_LIVE_WORK: i64 = 24;

/// Error-level log messages a healthy simulation produces: a violation (judged by the
/// invariant check) and a poisoned event (the ghost `agent_done`s, judged by the ledger).
const EXPECTED_ERRORS: [&str; 2] = ["invariant_violated", "event_poisoned"];

thread_local! {
    static LOG: RefCell<VecDeque<String>> = const { RefCell::new(VecDeque::new()) };
    static ERRORS: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}

/// Keeps this thread's last warnings and errors, to show with a failure, and every error whose
/// message is not expected, for [`Sim::check`].
fn keep_log_line(line: &str) {
    if line.contains("\"level\":\"info\"") {
        return;
    }
    if line.contains("\"level\":\"error\"")
        && !EXPECTED_ERRORS
            .iter()
            .any(|m| line.contains(&format!("\"msg\":\"{m}\"")))
    {
        ERRORS.with(|e| e.borrow_mut().push(line.to_owned()));
    }
    LOG.with(|l| {
        let mut l = l.borrow_mut();
        if l.len() == 60 {
            l.pop_front();
        }
        l.push_back(line.to_owned());
    });
}

/// Routes the town's logs to [`keep_log_line`] (once per test binary).
pub fn quiet_logs() {
    gastown_town::log::install(keep_log_line);
}

fn recent_logs() -> String {
    LOG.with(|l| l.borrow().iter().cloned().collect::<Vec<_>>().join("\n"))
}

fn unexpected_errors() -> Vec<String> {
    ERRORS.with(|e| std::mem::take(&mut *e.borrow_mut()))
}

/// What the ledger knows of one event.
#[derive(Debug, Clone)]
struct Entry {
    event_type: String,
    created_at: String,
    retry_count: i64,
    /// When its next try is due after a failure (epoch ms).
    next_attempt_at: Option<i64>,
    processed: bool,
    poisoned: bool,
    /// Committed processed/poisoned marks seen.
    marks: u32,
}

/// What happened over a run.
#[derive(Debug, Default, Clone)]
pub struct Stats {
    pub ticks: u64,
    pub simulated_ms: Millis,
    pub events_recorded: u64,
    pub events_from_ticks: u64,
    pub events_processed: u64,
    pub events_poisoned: u64,
    pub event_failures: u64,
    pub events_pruned: u64,
    pub actions: BTreeMap<String, u64>,
    pub side_effects_attempted: u64,
    pub side_effects_succeeded: u64,
    pub side_effects_failed: u64,
    /// #4 violations seen within B4's 5-minute delay or before the next tick.
    pub tolerated_4: u64,
    /// #7 violations seen for one tick.
    pub tolerated_7: u64,
    pub ops: BTreeMap<&'static str, u64>,
    pub remote: RemoteStats,
}

/// One simulated town.
pub struct Sim {
    pub seed: u64,
    rng: Rng,
    pub db: WatchedSql,
    pub now: Millis,
    remote: Remote,
    config: TownConfig,
    rigs: Vec<String>,
    ledger: BTreeMap<String, Entry>,
    pending: BTreeSet<String>,
    /// Processed events by `(created_at, id)`, for predicting the prune.
    processed: BTreeSet<(String, String)>,
    /// `agent_done` applications that submitted a merge request.
    submitted_by_events: u64,
    /// The violations of the last check: (invariant, bead or agent id).
    violations: BTreeSet<(u8, String)>,
    drain_nonce: Option<String>,
    /// Violations the last tick's own invariant check reported.
    reported_violations: u64,
    pub stats: Stats,
}

impl Sim {
    pub fn new(seed: u64) -> Self {
        let mut rng = Rng::new(seed);
        let mut config = TownConfig::default();
        randomize(&mut config, &mut rng);
        config.merge_strategy = if rng.chance(0.5) {
            MergeStrategy::Pr
        } else {
            MergeStrategy::Direct
        };
        config.staged_convoys_default = rng.chance(0.2);
        let town = TownBuilder::new()
            .config(config.clone())
            .rig("r1")
            .rig("r2")
            .rig_on("r3", "trunk")
            .build();
        let gastown_town::testing::town::Town { db, .. } = town;
        Self {
            seed,
            rng,
            db: WatchedSql::new(db),
            now: T0,
            remote: Remote::default(),
            config,
            rigs: vec!["r1".into(), "r2".into(), "r3".into()],
            ledger: BTreeMap::new(),
            pending: BTreeSet::new(),
            processed: BTreeSet::new(),
            submitted_by_events: 0,
            violations: BTreeSet::new(),
            drain_nonce: None,
            reported_violations: 0,
            stats: Stats::default(),
        }
    }

    /// Runs `ticks` steps: the world acts, the town ticks, everything is checked, time moves.
    pub fn run(&mut self, ticks: u64) {
        for _ in 0..ticks {
            self.step();
        }
        self.stats.remote = self.remote.stats.clone();
    }

    pub fn step(&mut self) {
        self.before_tick();
        self.tick_and_check();
    }

    /// The world acts and its events enter the ledger.
    pub fn before_tick(&mut self) {
        let expected = self.act();
        self.admit(expected);
    }

    /// The town ticks, everything is checked, the clock moves.
    pub fn tick_and_check(&mut self) {
        self.tick();
        self.check();
        self.advance();
    }

    fn ctx(&self) -> Ctx<'_> {
        Ctx {
            sql: &self.db,
            ids: &self.db,
            now: self.now,
        }
    }

    /// Runs a domain operation in one atomic unit, as an HTTP handler does.
    fn op<T>(&self, f: impl FnOnce(&Ctx<'_>) -> Result<T, DomainError>) -> Result<T, DomainError> {
        let ctx = self.ctx();
        atomically(&self.db, || f(&ctx))
    }

    fn count(&mut self, what: &'static str) {
        *self.stats.ops.entry(what).or_default() += 1;
    }

    /// Records a fact as a callback handler does; returns 1 (the events recorded).
    fn record(&mut self, kind: EventKind, subject: Subject) -> usize {
        self.op(|ctx| Ok(ctx.record(&kind, &subject)?))
            .expect("recording an event");
        self.count(kind.type_name());
        1
    }

    fn fail(&self, message: &str) -> ! {
        panic!(
            "simulation failed: seed {seed} at tick {tick} (t = {now}): {message}\n\
             replay with GASTOWN_SIM_SEED={seed} GASTOWN_SIM_TICKS={ticks}\n\
             last log lines:\n{logs}",
            seed = self.seed,
            tick = self.stats.ticks,
            now = iso(self.now),
            ticks = self.stats.ticks + 1,
            logs = recent_logs(),
        )
    }

    fn int(&self, sql: &str, params: &[gastown_town::sql::Value]) -> i64 {
        self.db.one(sql, params).unwrap().int("n").unwrap()
    }

    fn ids(&self, sql: &str, params: &[gastown_town::sql::Value]) -> Vec<String> {
        self.db
            .query(sql, params)
            .unwrap()
            .into_iter()
            .map(|r| r.text("id").unwrap())
            .collect()
    }

    // ---- the world acts -----------------------------------------------------------------------

    /// Everything that happens before a tick; returns how many events it recorded.
    fn act(&mut self) -> usize {
        let mut recorded = 0;
        let busy = if self.remote.outage > 0 { 0.3 } else { 0.08 };
        if self.rng.chance(busy) {
            recorded += self.file_issue();
        }
        if self.rng.chance(0.025) {
            recorded += self.sling_convoy();
        }
        if self.rng.chance(0.03) {
            recorded += self.start_convoy();
        }
        if self.rng.chance(0.02) {
            recorded += self.cancel();
        }
        if self.rng.chance(0.002) {
            // An agent_done whose agent is gone by the time it is applied.
            recorded += self.record(done_event("gt/ghost/x", None), Subject::agent("ghost"));
        }
        if self.rng.chance(0.003) {
            randomize(&mut self.config, &mut self.rng);
            town::set_config(&self.db, &self.config, self.now).unwrap();
            self.count("config_changed");
        }
        if self.drain_nonce.is_none() && self.rng.chance(0.002) {
            recorded += self.evict();
        } else if self.drain_nonce.is_some() && self.rng.chance(0.05) {
            let nonce = self.drain_nonce.take().unwrap();
            // The tick may have ended the drain already (7-minute timeout): then a no-op.
            self.op(|ctx| drain::container_ready(ctx, &nonce)).unwrap();
            self.count("container_ready");
        }
        self.remote.drift(&mut self.rng);
        recorded + self.agents_act()
    }

    fn live_work(&self) -> i64 {
        self.int(
            "SELECT COUNT(*) AS n FROM beads
             WHERE type IN ('issue', 'merge_request') AND status IN ('open', 'in_progress', 'in_review')",
            &[],
        )
    }

    fn file_issue(&mut self) -> usize {
        // People keep filing work during a container outage: the backlog that opens the breaker.
        let cap = if self.remote.outage > 0 {
            2 * MAX_LIVE_WORK
        } else {
            MAX_LIVE_WORK
        };
        if self.live_work() >= cap {
            return 0;
        }
        let rig = self.rng.pick(&self.rigs).clone();
        let priority = *self.rng.pick(Priority::ALL);
        let n = self.stats.ops.get("issue_filed").copied().unwrap_or(0);
        self.op(|ctx| {
            beads::create_issue(
                ctx,
                &NewIssue {
                    rig_id: rig,
                    title: format!("Task {n}"),
                    body: Some("Do the thing.".into()),
                    priority,
                    labels: Vec::new(),
                    created_by: "api".into(),
                },
            )
        })
        .expect("filing an issue");
        self.count("issue_filed");
        1
    }

    fn sling_convoy(&mut self) -> usize {
        if self.live_work() >= MAX_LIVE_WORK {
            return 0;
        }
        let n = self.rng.between(1, 4) as usize;
        let mut tasks: Vec<ConvoyTask> = (0..n)
            .map(|i| ConvoyTask {
                title: format!("Step {i}"),
                body: None,
                depends_on: (0..i).filter(|_| self.rng.chance(0.4)).collect(),
            })
            .collect();
        let cyclic = n > 1 && self.rng.chance(0.05);
        if cyclic {
            tasks[0].depends_on.push(n - 1);
            tasks[n - 1].depends_on.push(0);
        }
        let sling = SlingConvoy {
            title: format!("Convoy {}", self.stats.ticks),
            rig_id: self.rng.pick(&self.rigs).clone(),
            merge_mode: *self.rng.pick(&[
                None,
                Some(MergeMode::ReviewThenLand),
                Some(MergeMode::ReviewAndMerge),
            ]),
            staged: *self.rng.pick(&[None, Some(true), Some(false)]),
            tasks,
            created_by: "api".into(),
        };
        let before = self.db.statements();
        match self.op(|ctx| convoys::sling(ctx, &sling)) {
            Ok(_) if !cyclic => {
                self.count("convoy_slung");
                n
            }
            Err(DomainError::Cycle(_)) if cyclic => {
                assert!(
                    self.db.statements() - before <= 2,
                    "a cyclic convoy is refused before anything is written"
                );
                self.count("convoy_refused");
                0
            }
            other => self.fail(&format!("slinging {sling:?} gave {other:?}")),
        }
    }

    fn start_convoy(&mut self) -> usize {
        let staged = self.ids(
            "SELECT c.bead_id AS id FROM convoy_metadata c JOIN beads b ON b.bead_id = c.bead_id
             WHERE c.staged = 1 AND b.status NOT IN ('closed', 'failed') ORDER BY c.bead_id",
            &[],
        );
        if staged.is_empty() {
            return 0;
        }
        let id = self.rng.pick(&staged).clone();
        self.op(|ctx| convoys::start(ctx, &id))
            .expect("starting a staged convoy");
        self.count("convoy_started");
        1
    }

    fn cancel(&mut self) -> usize {
        let live = self.ids(
            "SELECT bead_id AS id FROM beads
             WHERE type IN ('issue', 'merge_request', 'convoy')
               AND status IN ('open', 'in_progress', 'in_review')
             ORDER BY bead_id",
            &[],
        );
        if live.is_empty() {
            return 0;
        }
        let id = self.rng.pick(&live).clone();
        let to = *self.rng.pick(&[CancelStatus::Closed, CancelStatus::Failed]);
        match self.op(|ctx| beads::cancel(ctx, &id, to, "api")) {
            Ok(_) => {
                self.count("bead_cancelled");
                1
            }
            // A convoy is cancelled as closed, never failed (invariant #5).
            Err(DomainError::Conflict(_)) if to == CancelStatus::Failed => {
                self.count("convoy_fail_refused");
                0
            }
            Err(e) => self.fail(&format!("cancelling live bead {id}: {e}")),
        }
    }

    /// The container is evicted: a drain starts and every process ends as evicted.
    fn evict(&mut self) -> usize {
        let nonce = self.op(drain::evict).expect("evicting");
        self.drain_nonce = Some(nonce);
        self.count("eviction");
        let mut recorded = 1;
        let running = self.running();
        for id in running {
            if agent_store::get(&self.db, &id).unwrap().is_some() {
                recorded += self.record(
                    completed_event(
                        ExitStatus::Completed,
                        Some(gastown_town::domain::exits::EVICTION_REASON),
                    ),
                    Subject::agent(&id),
                );
            }
            self.exit(&id, "evicted");
        }
        recorded
    }

    /// The agents whose container process is running, by id.
    fn running(&self) -> Vec<String> {
        self.remote
            .procs
            .iter()
            .filter(|(_, p)| p.state == Proc::Running)
            .map(|(id, _)| id.clone())
            .collect()
    }

    fn exit(&mut self, agent_id: &str, reason: &str) {
        if let Some(p) = self.remote.procs.get_mut(agent_id) {
            p.state = Proc::Exited(Some(reason.to_owned()));
        }
    }

    /// Each running process heartbeats (unless wedged) and may finish its work.
    fn agents_act(&mut self) -> usize {
        let mut recorded = 0;
        let running = self.running();
        for id in running {
            let Some(agent) = agent_store::get(&self.db, &id).unwrap() else {
                self.remote.procs.remove(&id);
                continue;
            };
            let process = self.remote.procs[&id].clone();
            if !process.hung && self.rng.chance(0.85) {
                let tools = if self.rng.chance(0.3) {
                    vec!["bash".to_owned()]
                } else {
                    Vec::new()
                };
                let watermark = Watermark {
                    last_event_type: Some("message.part.updated".into()),
                    last_event_at: Some(iso(process.stuck_since.unwrap_or(self.now))),
                    active_tools: Some(tools),
                };
                self.op(|ctx| agents::touch(ctx, &id, &watermark))
                    .expect("heartbeat");
            }
            if agent.role != AgentRole::Mayor && self.rng.chance(0.06) {
                recorded += self.finish(&agent);
            }
        }
        recorded
    }

    /// An agent's process ends its work in one of the ways agents do.
    fn finish(&mut self, agent: &gastown_town::vocabulary::model::Agent) -> usize {
        let id = agent.agent_id.clone();
        let hook = agent.current_hook_bead_id.clone();
        let rig = agent.rig_id.clone().unwrap_or_default();
        let roll = self.rng.below(100);
        let mut recorded = 0;
        let done = |sim: &mut Sim, pr: bool| {
            let bead = hook.clone().unwrap_or_default();
            let pr_url = pr.then(|| {
                let owner = if sim.rng.chance(0.05) { "other" } else { "o" };
                sim.remote.open_pr(owner, &rig, &mut sim.rng)
            });
            sim.count(if pr_url.is_some() {
                "done_with_pr"
            } else {
                "done_without_pr"
            });
            let branch = branch_name(&agent.name, &bead);
            sim.record(done_event(&branch, pr_url), Subject::agent(&id))
        };
        let completed = |sim: &mut Sim, status, reason: Option<&str>| {
            sim.record(completed_event(status, reason), Subject::agent(&id))
        };
        match (agent.role, hook.is_some()) {
            (AgentRole::Polecat, true) if roll < 70 => {
                let pr = self.rng.chance(0.4);
                recorded += done(self, pr);
                if self.rng.chance(0.85) {
                    recorded += completed(self, ExitStatus::Completed, None);
                    self.exit(&id, "completed");
                }
            }
            (AgentRole::Polecat, true) if roll < 85 => {
                recorded += completed(self, ExitStatus::Failed, Some("process crashed"));
                self.exit(&id, "failed");
            }
            (AgentRole::Refinery, true) if roll < 35 => {
                recorded += done(self, false);
                recorded += completed(self, ExitStatus::Completed, None);
                self.exit(&id, "completed");
            }
            (AgentRole::Refinery, true) if roll < 65 => {
                recorded += done(self, true);
                if self.rng.chance(0.85) {
                    recorded += completed(self, ExitStatus::Completed, None);
                    self.exit(&id, "completed");
                }
            }
            (AgentRole::Refinery, true) if roll < 80 => {
                let mr = hook.clone().unwrap();
                match self
                    .op(|ctx| reviews::request_changes(ctx, &id, &mr, "Please fix the tests."))
                {
                    Ok(_) => {
                        self.count("changes_requested");
                        recorded += 1;
                    }
                    Err(DomainError::Conflict(_)) => self.count("changes_refused"),
                    Err(e) => self.fail(&format!("request_changes: {e}")),
                }
                recorded += completed(self, ExitStatus::Completed, None);
                self.exit(&id, "completed");
            }
            _ if roll < 92 => {
                self.count("silent_exit");
                self.exit(&id, "exit code 1");
            }
            _ => {
                recorded += completed(self, ExitStatus::Completed, None);
                self.exit(&id, "completed");
            }
        }
        recorded
    }

    /// Takes the events recorded since the last tick into the ledger: exactly `expected` new
    /// pending events must have appeared.
    fn admit(&mut self, expected: usize) {
        for unit in self.db.take_committed() {
            if unit.iter().any(|f| matches!(f, Fact::Marked { .. })) {
                self.fail("an event was marked processed outside a tick");
            }
        }
        let rows = self
            .db
            .query(
                "SELECT event_id, event_type, created_at, retry_count FROM town_events
                 WHERE processed_at IS NULL",
                &[],
            )
            .unwrap();
        let mut new = 0;
        for row in rows {
            let id = row.text("event_id").unwrap();
            if self.ledger.contains_key(&id) {
                continue;
            }
            new += 1;
            if row.int("retry_count").unwrap() != 0 {
                self.fail(&format!("new event {id} already has failures"));
            }
            self.ledger.insert(
                id.clone(),
                Entry {
                    event_type: row.text("event_type").unwrap(),
                    created_at: row.text("created_at").unwrap(),
                    retry_count: 0,
                    next_attempt_at: None,
                    processed: false,
                    poisoned: false,
                    marks: 0,
                },
            );
            self.pending.insert(id);
        }
        if new != expected {
            self.fail(&format!(
                "the world recorded {expected} events but {new} new pending events appeared"
            ));
        }
        self.stats.events_recorded += new as u64;
    }

    // ---- the tick ----------------------------------------------------------------------------

    pub fn tick(&mut self) {
        if self.pending.len() > TickOptions::default().drain_limit as usize {
            self.fail("more pending events than one tick drains");
        }
        let agents = self.ids(
            "SELECT bead_id AS id FROM agent_metadata ORDER BY bead_id",
            &[],
        );
        let plan = self.remote.plan(&mut self.rng, &agents);
        let clock = ManualClock::at(self.now);
        let sink = RecordingSink::default();
        let remotes = remotes();
        let env = TickEnv {
            sql: &self.db,
            ids: &self.db,
            clock: &clock,
            sink: &sink,
            http: &plan.fake,
            remotes: &remotes,
            options: TickOptions::default(),
            watch: &Unwatched,
        };
        let report = block_on(tick::run(&env));
        self.remote.settle(&plan, &mut self.rng, self.now);
        let m = &report.metrics;
        if report.point.is_none() {
            self.fail("the tick wrote no reconciler_tick point");
        }
        self.reported_violations = m.invariant_violations;
        for (action, n) in &m.actions_by_type {
            *self.stats.actions.entry(action.clone()).or_default() += n;
        }
        self.stats.side_effects_attempted += m.side_effects_attempted;
        self.stats.side_effects_succeeded += m.side_effects_succeeded;
        self.stats.side_effects_failed += m.side_effects_failed;
        self.stats.ticks += 1;
    }

    // ---- the checks --------------------------------------------------------------------------

    pub fn check(&mut self) {
        let errors = unexpected_errors();
        if !errors.is_empty() {
            self.fail(&format!("the tick logged errors:\n{}", errors.join("\n")));
        }
        self.check_events();
        self.check_invariants();
    }

    fn check_events(&mut self) {
        let now = iso(self.now);
        let rows = self
            .db
            .query(
                "SELECT event_id, event_type, created_at, processed_at, retry_count, poisoned,
                        next_attempt_at
                 FROM town_events WHERE processed_at IS NULL OR processed_at = ?",
                &params![now.as_str()],
            )
            .unwrap();
        let mut seen = BTreeSet::new();
        let mut processed_now = Vec::new();
        for row in rows {
            let id = row.text("event_id").unwrap();
            let created_at = row.text("created_at").unwrap();
            let processed = row.opt_text("processed_at").unwrap().is_some();
            let retry_count = row.int("retry_count").unwrap();
            let poisoned = row.bool("poisoned").unwrap();
            let event_type = row.text("event_type").unwrap();
            let next_attempt_at = row.opt_int("next_attempt_at").unwrap();
            seen.insert(id.clone());
            let known = self
                .ledger
                .get(&id)
                .map(|e| (e.processed, e.retry_count, e.next_attempt_at));
            match known {
                Some((was_processed, was_retried, was_due_at)) => {
                    if was_processed {
                        self.fail(&format!("event {id} was processed again"));
                    }
                    // A pending event that was due is drained, so it either applied or failed
                    // once more; one waiting for its retry is left alone.
                    let waiting = was_due_at.is_some_and(|at| at > self.now);
                    let expected_retries = if (processed && !poisoned) || waiting {
                        was_retried
                    } else {
                        was_retried + 1
                    };
                    let failed_now = retry_count > was_retried && !processed;
                    let spacing = RETRY_SPACING_MS[(retry_count.max(1) as usize - 1).min(1)];
                    if failed_now && next_attempt_at != Some(self.now + spacing) {
                        self.fail(&format!(
                            "event {id} failed at {} but retries at {next_attempt_at:?}",
                            self.now
                        ));
                    }
                    if retry_count != expected_retries {
                        self.fail(&format!(
                            "event {id} ({event_type}): retry count {was_retried} -> \
                             {retry_count}, processed {processed}, poisoned {poisoned}"
                        ));
                    }
                    let entry = self.ledger.get_mut(&id).unwrap();
                    entry.retry_count = retry_count;
                    entry.next_attempt_at = next_attempt_at;
                    entry.created_at = created_at.clone();
                }
                None => {
                    if !TICK_EVENTS.contains(&event_type.as_str()) || created_at != now {
                        self.fail(&format!(
                            "unexpected event {id} ({event_type}, created {created_at})"
                        ));
                    }
                    self.stats.events_from_ticks += 1;
                    self.ledger.insert(
                        id.clone(),
                        Entry {
                            event_type: event_type.clone(),
                            created_at: created_at.clone(),
                            retry_count,
                            next_attempt_at,
                            processed: false,
                            poisoned: false,
                            marks: 0,
                        },
                    );
                    self.pending.insert(id.clone());
                }
            }
            if poisoned && retry_count != MAX_EVENT_RETRIES {
                self.fail(&format!("event {id} poisoned after {retry_count} failures"));
            }
            if !processed && retry_count >= MAX_EVENT_RETRIES {
                self.fail(&format!(
                    "event {id} failed {retry_count} times, not poisoned"
                ));
            }
            if processed {
                let entry = self.ledger.get_mut(&id).unwrap();
                entry.processed = true;
                entry.poisoned = poisoned;
                self.pending.remove(&id);
                self.processed.insert((created_at, id.clone()));
                processed_now.push(id);
            } else if retry_count > 0 {
                self.stats.event_failures += 1;
            }
        }
        if let Some(lost) = self.pending.iter().find(|id| !seen.contains(*id)) {
            self.fail(&format!("pending event {lost} disappeared"));
        }

        // A committed unit applies one event or, on the drain's fast path, a whole batch marked
        // by one statement at its end; the reviews a unit inserted belong to its agent_done
        // events (at most one each). A unit of one event pins them on that event.
        for unit in self.db.take_committed() {
            let reviews = unit
                .iter()
                .filter(|f| matches!(f, Fact::ReviewInserted))
                .count() as u64;
            let mut done_events = 0u64;
            let mut marked = Vec::new();
            for fact in &unit {
                let Fact::Marked {
                    event_id: id,
                    poisoned,
                } = fact
                else {
                    continue;
                };
                let Some(entry) = self.ledger.get_mut(id) else {
                    self.fail(&format!("a mark for unknown event {id}"));
                };
                entry.marks += 1;
                let entry = entry.clone();
                if entry.marks != 1 || entry.poisoned != *poisoned || !entry.processed {
                    self.fail(&format!("event {id}: mark {poisoned} against {entry:?}"));
                }
                if entry.event_type == "agent_done" {
                    done_events += 1;
                }
                marked.push(entry.event_type);
            }
            if marked.is_empty() {
                continue;
            }
            if reviews > done_events {
                self.fail(&format!(
                    "a unit applying {marked:?} submitted {reviews} reviews for {done_events} \
                     agent_done events"
                ));
            }
            self.submitted_by_events += reviews;
        }
        for id in &processed_now {
            let entry = &self.ledger[id];
            if entry.marks != 1 {
                self.fail(&format!("event {id} processed with {} marks", entry.marks));
            }
            if entry.poisoned {
                self.stats.events_poisoned += 1;
            } else {
                self.stats.events_processed += 1;
            }
        }
        let submitted = self.int(
            "SELECT COUNT(*) AS n FROM beads WHERE type = 'merge_request' AND created_by <> 'system'",
            &[],
        );
        if submitted as u64 != self.submitted_by_events {
            self.fail(&format!(
                "{submitted} merge requests submitted by agents, {} by applied agent_done events",
                self.submitted_by_events
            ));
        }

        let cutoff = iso(self.now - RETENTION_MS);
        while let Some((created_at, id)) = self.processed.first().cloned() {
            if created_at >= cutoff {
                break;
            }
            self.processed.pop_first();
            self.ledger.remove(&id);
            self.stats.events_pruned += 1;
        }
        let stored = self.int("SELECT COUNT(*) AS n FROM town_events", &[]);
        if stored as usize != self.ledger.len() {
            self.fail(&format!(
                "{stored} events stored, the ledger expects {}",
                self.ledger.len()
            ));
        }
    }

    /// The tick ran src/reconciler/invariants.rs after its side effects and reported how many violations
    /// it found (a skipped check logs an error, which fails the run). When it found any, they
    /// are read again here and each must be one a rule repairs, and only until that rule had
    /// its chance: #4 while its bead is not yet 5 minutes stale (B4) or until the next tick (B4
    /// sees an MR that failed after this tick's reconcile only then); #7 until the next tick
    /// (rule A).
    fn check_invariants(&mut self) {
        if self.reported_violations == 0 {
            self.violations.clear();
            return;
        }
        let snapshot = load::snapshot(&self.db, self.now).expect("snapshot");
        let found = invariants::check(&snapshot);
        if found.len() as u64 != self.reported_violations {
            self.fail(&format!(
                "the tick reported {} violations, the state has {found:?}",
                self.reported_violations
            ));
        }
        let mut seen = BTreeSet::new();
        for v in found {
            let subject = v.message.split(' ').nth(2).unwrap_or_default().to_owned();
            let key = (v.invariant, subject.clone());
            let first = !self.violations.contains(&key);
            seen.insert(key);
            let tolerated = match v.invariant {
                4 => {
                    let updated = snapshot
                        .bead(&subject)
                        .and_then(|b| parse_iso(&b.updated_at))
                        .unwrap_or(Millis::MIN);
                    let waiting = self.now - updated <= ORPHANED_SOURCE_TIMEOUT_MS;
                    self.stats.tolerated_4 += u64::from(waiting || first);
                    waiting || first
                }
                7 => {
                    self.stats.tolerated_7 += u64::from(first);
                    first
                }
                _ => false,
            };
            if !tolerated {
                self.fail(&format!(
                    "invariant #{} violated: {}",
                    v.invariant, v.message
                ));
            }
        }
        self.violations = seen;
    }

    /// Moves the clock: mostly the 5-second active interval, sometimes minutes, now and then
    /// hours (GUPP's 2 hours) or a day (GC's 24 hours).
    fn advance(&mut self) {
        let by = match self.rng.below(1000) {
            0..=879 => 5 * SECOND,
            880..=979 => self.rng.between(30 * SECOND, 5 * MINUTE),
            980..=996 => self.rng.between(10 * MINUTE, 3 * HOUR),
            _ => self.rng.between(20 * HOUR, 30 * HOUR),
        };
        self.now += by;
        self.stats.simulated_ms += by;
    }
}

fn done_event(branch: &str, pr_url: Option<String>) -> EventKind {
    EventKind::AgentDone(AgentDone {
        branch: branch.to_owned(),
        pr_url,
        summary: Some("Done.".into()),
    })
}

fn completed_event(status: ExitStatus, reason: Option<&str>) -> EventKind {
    EventKind::AgentCompleted(AgentCompleted {
        status,
        reason: reason.map(str::to_owned),
    })
}

/// The refinery settings a town owner might choose.
fn randomize(config: &mut TownConfig, rng: &mut Rng) {
    config.refinery.code_review = rng.chance(0.8);
    config.refinery.auto_resolve_pr_feedback = rng.chance(0.5);
    config.refinery.auto_merge = rng.chance(0.8);
    config.refinery.auto_merge_delay_minutes = *rng.pick(&[None, Some(0), Some(5), Some(30)]);
}

/// Beads in each status at the end (for the run's summary).
pub fn census(db: &dyn Sql) -> BTreeMap<String, i64> {
    db.query(
        "SELECT type || ':' || status AS k, COUNT(*) AS n FROM beads GROUP BY type, status
         ORDER BY k",
        &[],
    )
    .unwrap()
    .into_iter()
    .map(|r| (r.text("k").unwrap(), r.int("n").unwrap()))
    .collect()
}

impl Sim {
    /// Whether a bead of this status exists (for coverage checks).
    pub fn has(&self, bead_type: &str, status: BeadStatus) -> bool {
        self.int(
            "SELECT COUNT(*) AS n FROM beads WHERE type = ? AND status = ?",
            &params![bead_type, status.as_str()],
        ) > 0
    }
}
