//! The domain events the tick reports to Analytics Engine, derived from the bead history once.

use gastown_town::domain::beads::{self, NewIssue};
use gastown_town::metrics::point::DataPoint;
use gastown_town::testing::http::FakeHttp;
use gastown_town::testing::ports::RecordingSink;
use gastown_town::testing::town::*;
use gastown_town::vocabulary::model::{BeadStatus, Priority};

fn events(sink: &RecordingSink) -> Vec<(String, String)> {
    sink.points
        .borrow()
        .iter()
        .filter(|p| !p.index.starts_with("reconciler"))
        .map(|p: &DataPoint| (p.index.clone(), p.blob(10).to_owned()))
        .collect()
}

#[test]
fn each_history_row_is_reported_once_with_its_point_kinds() {
    let town = TownBuilder::new().rig("r1").build();
    let bead = town
        .run(|ctx| {
            beads::create_issue(
                ctx,
                &NewIssue {
                    rig_id: "r1".into(),
                    title: "Fix login".into(),
                    body: None,
                    priority: Priority::Medium,
                    labels: vec![],
                    created_by: "api".into(),
                },
            )
        })
        .unwrap();
    let http = FakeHttp::new();
    let first = RecordingSink::default();
    town.tick_with(&http, &first);
    let reported = events(&first);
    assert!(
        reported.contains(&("bead.created".into(), String::new())),
        "{reported:?}"
    );

    let second = RecordingSink::default();
    town.advance(1_000);
    town.run(|ctx| beads::set_status(ctx, &bead.bead_id, BeadStatus::Closed, "api", None))
        .unwrap();
    town.tick_with(&http, &second);
    let reported = events(&second);
    assert!(
        !reported.iter().any(|(e, _)| e == "bead.created"),
        "reported once: {reported:?}"
    );
    assert!(
        reported.contains(&("bead.status_changed".into(), "closed".into())),
        "{reported:?}"
    );
    let closed = second
        .points
        .borrow()
        .iter()
        .find(|p| p.index == "bead.closed")
        .cloned()
        .expect("bead.closed");
    assert_eq!(closed.blob(9), bead.bead_id);
    assert!(
        closed.double(1) >= 1_000.0,
        "age in ms: {}",
        closed.double(1)
    );
    assert_eq!(closed.blob(3), "internal");
}
