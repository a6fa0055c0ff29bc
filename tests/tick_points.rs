//! What a tick hands to Analytics Engine when it has more to say than one invocation may write
//! (`MAX_POINTS_PER_INVOCATION`): the points that describe the tick itself (`reconciler_tick`,
//! one `reconciler_action` per action type, the invariant violations) always leave; the points
//! of individual happenings (an agent spawned, a domain event) fill what room is left, and what
//! did not fit is logged once, counted, not once per point.

use gastown_town::metrics::layout::{self, blob};
use gastown_town::metrics::writer::{MAX_POINTS_PER_INVOCATION, RESERVED_FOR_TICK};
use gastown_town::testing::http::{block_on, FakeHttp, Reply};
use gastown_town::testing::ports::{ManualClock, RecordingSink};
use gastown_town::testing::town::*;
use gastown_town::tick::phases::Unwatched;
use gastown_town::tick::{self, TickEnv, TickOptions};
use serde_json::{json, Value as Json};
use std::sync::{Mutex, Once};

static LINES: Mutex<Vec<String>> = Mutex::new(Vec::new());
static INSTALL: Once = Once::new();

/// Sends log lines to `LINES` (once per test binary).
fn capture_logs() {
    INSTALL.call_once(|| gastown_town::log::install(|l| LINES.lock().unwrap().push(l.into())));
}

/// The lines logged so far with this `msg`, parsed.
fn logged(msg: &str) -> Vec<Json> {
    LINES
        .lock()
        .unwrap()
        .iter()
        .map(|l| serde_json::from_str::<Json>(l).expect("log lines are JSON"))
        .filter(|l| l["msg"] == msg)
        .collect()
}

/// A town with `n` open issues on one rig, nothing else: one tick dispatches a polecat to each.
fn busy_town(n: usize) -> Town {
    (0..n)
        .fold(TownBuilder::new().rig("r1"), |town, i| {
            town.bead(BeadSpec::issue(&format!("b{i:03}")).rig("r1"))
        })
        .build()
}

/// Ticks `town` at T0 with every remote call accepted; returns the points written.
fn tick_points(town: &Town) -> Vec<gastown_town::metrics::point::DataPoint> {
    let fake = FakeHttp::new();
    fake.always("GET", "*", Reply::ok(json!({"status": "running"})));
    fake.always("POST", "*", Reply::ok(json!({})));
    let clock = ManualClock::at(T0);
    let sink = RecordingSink::default();
    let remotes = remotes();
    let env = TickEnv {
        sql: &town.db,
        ids: &town.ids,
        clock: &clock,
        sink: &sink,
        http: &fake,
        remotes: &remotes,
        options: TickOptions::default(),
        watch: &Unwatched,
    };
    let report = block_on(tick::run(&env));
    assert!(report.point.is_some(), "the tick ran");
    sink.points.into_inner()
}

#[test]
fn a_tick_with_more_happenings_than_room_still_writes_its_own_points() {
    capture_logs();
    let dispatches = 2 * MAX_POINTS_PER_INVOCATION as usize;
    let points = tick_points(&busy_town(dispatches));
    assert!(points.len() <= MAX_POINTS_PER_INVOCATION as usize);

    let named = |event: &str| points.iter().filter(|p| p.index == event).count();
    assert_eq!(named(layout::RECONCILER_TICK), 1, "the tick's own point");
    let tick = points
        .iter()
        .find(|p| p.index == layout::RECONCILER_TICK)
        .unwrap();
    assert_eq!(tick.doubles[3], dispatches as f64, "side effects attempted");
    assert_eq!(tick.doubles[4], dispatches as f64, "side effects succeeded");
    let actions = points
        .iter()
        .filter(|p| p.index == layout::RECONCILER_ACTION)
        .map(|p| p.blobs[usize::from(blob::LABEL) - 1].clone())
        .collect::<Vec<_>>();
    assert!(
        actions.contains(&"dispatch_agent".to_owned()),
        "{actions:?}"
    );

    // The spawns filled the room the tick's own points leave; the others were dropped, and
    // said so once.
    let spawned = named("agent.spawned");
    assert_eq!(
        spawned,
        (MAX_POINTS_PER_INVOCATION - RESERVED_FOR_TICK) as usize
    );
    assert_eq!(points.len(), spawned + 1 + actions.len());
    let dropped = logged("analytics_points_dropped");
    assert_eq!(dropped.len(), 1, "{dropped:?}");
    assert_eq!(dropped[0]["count"], (dispatches - spawned).to_string());
    assert_eq!(
        dropped[0]["events"],
        format!("agent.spawned x{}", dispatches - spawned)
    );
    assert!(logged("analytics_point_dropped").is_empty());
}
