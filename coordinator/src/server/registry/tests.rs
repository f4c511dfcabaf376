//! Registry unit tests: sessions, reservations and routes.

use super::*;
use loadgrade_common::protocol::Hello;

fn hello(name: &str, epoch: u64) -> Hello {
    Hello {
        name: name.into(),
        version: "0".into(),
        cores: 1,
        epoch,
        protocol: 2,
        probe_only: false,
        labels: BTreeMap::new(),
    }
}

/// Regression (issue 8, item 9, and issue 9): the late end of a replaced session unregistered its successor,
/// the next part of a run went to a session that was re-registering, not reserved, and a second agent of the
/// same name knocked the first off.
#[tokio::test]
async fn a_reconnected_agent_is_neither_removed_by_its_old_session_nor_given_the_old_run() {
    let registry = Registry::default();
    let (tx, mut rx) = mpsc::channel(8);
    let first = registry.register(&hello("box", 1), tx).expect("first");
    let (route, mut route_rx) = mpsc::unbounded_channel();
    assert_eq!(
        registry.reserve_idle("run", 1, route).map(|a| a.len()),
        Some(1)
    );
    let stop = || ToAgent::Stop {
        run_id: "run".into(),
        reason: "test".into(),
    };
    assert!(registry.send_for_run("box", "run", stop()));
    assert!(rx.recv().await.is_some());

    let (tx2, _rx2) = mpsc::channel(8);
    assert!(
        registry.register(&hello("box", 2), tx2.clone()).is_err(),
        "a second agent of the same name is refused while the first is connected"
    );
    registry.unregister("box", first);
    assert!(
        matches!(route_rx.recv().await, Some(RunInput::Gone { .. })),
        "the run lost its agent"
    );
    let second = registry
        .register(&hello("box", 2), tx2)
        .expect("after the first is gone");
    assert!(
        !registry.send_for_run("box", "run", stop()),
        "the new session is not reserved for the run"
    );
    assert!(
        registry.route_for("run", "box").is_some(),
        "but its spooled intervals still reach the run"
    );
    registry.unregister("box", first);
    assert_eq!(
        registry.agents().len(),
        1,
        "the old session's late end removes nothing"
    );
    registry.unregister("box", second);
    assert!(registry.agents().is_empty());
}
