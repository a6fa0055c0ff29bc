//! `cargo bench --bench alarms [-- --json PATH]`: how many alarms a town takes in one simulated
//! day, natively on a manual clock (each tick re-arms after the delay it asks for), for an idle
//! town, a town whose only work is one triage request nobody can act on (no rig), and a busy
//! town (five beads worked on all day), against the original's figures (its rule: 5 s while any
//! agent works or any triage request is open, else 5 min). Figures only; `--md PATH` writes
//! them as their own section of the report (replacing the previous one).

use gastown_town::domain::beads::{self, NewIssue};
use gastown_town::domain::rigs::{self, NewRig};
use gastown_town::domain::{agents, triage, Ctx};
use gastown_town::params;
use gastown_town::sql::native::NativeSql;
use gastown_town::sql::Sql;
use gastown_town::store::{migrate, town};
use gastown_town::testing::http::{block_on, remotes, FakeHttp, Reply};
use gastown_town::testing::ports::{ManualClock, RecordingSink, SequentialIds};
use gastown_town::tick::phases::Unwatched;
use gastown_town::tick::{self, TickEnv, TickOptions};
use gastown_town::vocabulary::config::TownConfig;
use gastown_town::vocabulary::model::{AgentRole, Priority, TriageType};
use gastown_town::vocabulary::time::{iso, Millis, HOUR, SECOND};
use serde_json::json;

const T0: Millis = 1_795_920_000_000;
const DAY: Millis = 24 * HOUR;

/// A town the scenario set up, and what the original would do with it all day.
struct Scenario {
    name: &'static str,
    /// The original's interval for this town's whole day.
    original_interval: Millis,
    /// Keep the working agents heartbeating before each tick.
    heartbeats: bool,
    setup: fn(&Ctx<'_>),
}

fn rig(ctx: &Ctx<'_>) {
    rigs::create(
        ctx,
        &NewRig {
            rig_id: Some("web".into()),
            name: "web".into(),
            git_url: "https://github.com/acme/web.git".into(),
            default_branch: None,
        },
    )
    .expect("rig");
}

fn scenarios() -> Vec<Scenario> {
    vec![
        Scenario {
            name: "idle town (one rig, no work)",
            original_interval: 300 * SECOND,
            heartbeats: false,
            setup: rig,
        },
        Scenario {
            name: "one triage request nobody can act on (about the mayor; no rig)",
            original_interval: 5 * SECOND,
            heartbeats: false,
            setup: |ctx| {
                let agent = agents::get_or_create(ctx, AgentRole::Mayor, None).expect("mayor");
                triage::create_request(ctx, &agent.agent_id, TriageType::StuckAgent, "stuck")
                    .expect("request");
            },
        },
        Scenario {
            name: "busy town (5 beads worked on all day)",
            original_interval: 5 * SECOND,
            heartbeats: true,
            setup: |ctx| {
                rig(ctx);
                for n in 0..5 {
                    beads::create_issue(
                        ctx,
                        &NewIssue {
                            rig_id: "web".into(),
                            title: format!("task {n}"),
                            body: None,
                            priority: Priority::Medium,
                            labels: Vec::new(),
                            created_by: "api".into(),
                        },
                    )
                    .expect("bead");
                }
            },
        },
    ]
}

/// Ticks the town through one day; returns the alarms taken.
fn day(s: &Scenario) -> u64 {
    let db = NativeSql::in_memory();
    migrate::migrate(&db, T0).unwrap();
    town::put(&db, "alarms", "owner", &TownConfig::default(), T0).unwrap();
    let ids = SequentialIds::new("alarms");
    (s.setup)(&Ctx {
        sql: &db,
        ids: &ids,
        now: T0,
    });
    let http = FakeHttp::new();
    http.always("*", "*", Reply::ok(json!({"status": "running"})));
    let (remotes, sink) = (remotes(), RecordingSink::default());
    let mut now = T0;
    let mut alarms = 0;
    while now < T0 + DAY {
        if s.heartbeats {
            db.execute(
                "UPDATE agent_metadata SET last_activity_at = ?, last_event_at = ?
                 WHERE status = 'working'",
                &params![iso(now), iso(now)],
            )
            .unwrap();
        }
        let clock = ManualClock::at(now);
        let report = block_on(tick::run(&TickEnv {
            sql: &db,
            ids: &ids,
            clock: &clock,
            sink: &sink,
            http: &http,
            remotes: &remotes,
            options: TickOptions::default(),
            watch: &Unwatched,
        }));
        alarms += 1;
        match report.rearm.delay_ms() {
            Some(delay) => now += delay.max(1),
            None => break,
        }
    }
    alarms
}

const BEGIN: &str = "<!-- alarms:begin -->";
const END: &str = "<!-- alarms:end -->";

/// The value after `name` on the command line.
fn option(name: &str) -> Option<String> {
    std::env::args().skip_while(|a| a != name).nth(1)
}

/// `doc` with its alarms section replaced by `section` (appended when it has none).
fn with_section(doc: &str, section: &str) -> String {
    match (doc.find(BEGIN), doc.find(END)) {
        (Some(b), Some(e)) if b < e => format!("{}{section}{}", &doc[..b], &doc[e + END.len()..]),
        _ => format!("{}\n\n{section}\n", doc.trim_end()),
    }
}

fn main() {
    gastown_town::log::install(|_| {});
    let mut table =
        String::from("| town | alarms per day | the original | ratio |\n|---|---|---|---|\n");
    let mut rows = Vec::new();
    for s in scenarios() {
        let ours = day(&s);
        let original = (DAY / s.original_interval) as u64;
        table.push_str(&format!(
            "| {} | {} | {} | {:.3} |\n",
            s.name,
            ours,
            original,
            ours as f64 / original as f64
        ));
        rows.push(json!({"town": s.name, "alarms": ours, "original": original}));
    }
    print!("{table}");
    if let Some(path) = option("--json") {
        std::fs::write(&path, serde_json::to_string_pretty(&rows).unwrap()).unwrap();
    }
    if let Some(path) = option("--md") {
        let section = format!(
            "{BEGIN}\n## Alarms per simulated day\n\n`benches/alarms.rs` (`scripts/bench --alarms`): \
             one town ticked natively through 24 simulated hours, each tick re-arming after the \
             delay it asks for. The original's figure is its rule: 5 s while any agent works or \
             any triage request is open, else 5 min. Here a triage request counts as work only \
             while the triage loop can act on it (not with no rig, the breaker open or a failed \
             batch cooling down). Facts that pull the alarm forward add ticks to these (none \
             arrive here).\n\n{table}{END}"
        );
        let doc = std::fs::read_to_string(&path).unwrap_or_default();
        std::fs::write(&path, with_section(&doc, &section)).unwrap();
        println!("wrote the alarms section of {path}");
    }
}
