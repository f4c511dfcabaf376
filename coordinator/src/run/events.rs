//! A run's events for its watchers (`submit`, `run`, the run service): every line in its order, progress lines
//! superseding each other, and the latest event for a watcher that arrives late. A bare `watch` of the latest event
//! loses a line when two come at once (a ramp step's summary, then the next step's start); the journal numbers the
//! lines that are not progress and keeps the last [`KEPT_LINES`], so a watcher reads each once.

use loadgrade_common::run::RunEvent;
use std::collections::VecDeque;
use tokio::sync::watch;

/// Lines kept for watchers that fall behind; a watcher further behind misses the oldest (a run says a few a second).
pub const KEPT_LINES: usize = 256;

/// The latest event and the last lines that were not progress, numbered.
#[derive(Debug, Clone)]
pub struct Journal {
    latest: RunEvent,
    lines: VecDeque<(u64, RunEvent)>,
    next: u64,
}

impl Journal {
    pub fn latest(&self) -> &RunEvent {
        &self.latest
    }
}

pub type EventSender = watch::Sender<Journal>;
pub type EventReceiver = watch::Receiver<Journal>;

/// A journal whose first line is `first`.
pub fn channel(first: RunEvent) -> (EventSender, EventReceiver) {
    let mut journal = Journal {
        latest: first.clone(),
        lines: VecDeque::new(),
        next: 0,
    };
    if !first.progress {
        journal.lines.push_back((0, first));
        journal.next = 1;
    }
    watch::channel(journal)
}

/// Adds `event`: the latest one, and a line of its own unless it is progress.
pub fn publish(events: &EventSender, event: RunEvent) {
    events.send_modify(|journal| {
        if !event.progress {
            journal.lines.push_back((journal.next, event.clone()));
            journal.next += 1;
            if journal.lines.len() > KEPT_LINES {
                journal.lines.pop_front();
            }
        }
        journal.latest = event;
    });
}

/// One watcher's place in a journal: the latest event first, then every line after it and the latest progress.
pub struct Watcher {
    events: EventReceiver,
    /// The number of the next line to deliver; `None` before the first read.
    seen: Option<u64>,
    pending: VecDeque<RunEvent>,
    ended: bool,
}

impl Watcher {
    pub fn new(events: EventReceiver) -> Watcher {
        Watcher {
            events,
            seen: None,
            pending: VecDeque::new(),
            ended: false,
        }
    }

    /// The next event; `None` after the final one, or when the run's sender is gone.
    pub async fn next(&mut self) -> Option<RunEvent> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                if event.state.is_final() {
                    self.ended = true;
                    self.pending.clear();
                }
                return Some(event);
            }
            if self.ended {
                return None;
            }
            if self.seen.is_some() && self.events.changed().await.is_err() {
                return None;
            }
            let journal = self.events.borrow_and_update();
            match self.seen {
                None => self.pending.push_back(journal.latest.clone()),
                Some(seen) => {
                    self.pending.extend(
                        journal
                            .lines
                            .iter()
                            .filter(|(n, _)| *n >= seen)
                            .map(|(_, e)| e.clone()),
                    );
                    if journal.latest.progress {
                        self.pending.push_back(journal.latest.clone());
                    }
                }
            }
            self.seen = Some(journal.next);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use loadgrade_common::run::RunState;

    fn event(message: &str, state: RunState, progress: bool) -> RunEvent {
        RunEvent {
            run_id: "r".into(),
            state,
            message: message.into(),
            verdict: None,
            progress,
        }
    }

    #[tokio::test]
    async fn two_lines_at_once_both_reach_a_watcher() {
        let (tx, rx) = channel(event("accepted", RunState::Queued, false));
        let mut watcher = Watcher::new(rx);
        assert_eq!(watcher.next().await.expect("first").message, "accepted");
        publish(&tx, event("1 so far", RunState::Running, true));
        publish(&tx, event("2 so far", RunState::Running, true));
        publish(&tx, event("step 1: 300 req/s", RunState::Running, false));
        publish(&tx, event("step 2 on 2 agents", RunState::Running, false));
        publish(&tx, event("0 so far", RunState::Running, true));
        let mut got = Vec::new();
        for _ in 0..3 {
            got.push(watcher.next().await.expect("event").message);
        }
        // Both lines, in order; of the progress lines only the latest.
        assert_eq!(got, ["step 1: 300 req/s", "step 2 on 2 agents", "0 so far"]);
        publish(&tx, event("finished", RunState::Finished, false));
        assert_eq!(watcher.next().await.expect("final").message, "finished");
        assert!(
            watcher.next().await.is_none(),
            "nothing after the final event"
        );
    }

    #[tokio::test]
    async fn a_watcher_behind_by_more_than_the_kept_lines_gets_the_newest() {
        let (tx, rx) = channel(event("accepted", RunState::Queued, false));
        let mut watcher = Watcher::new(rx);
        watcher.next().await.expect("first");
        for i in 0..KEPT_LINES + 10 {
            publish(&tx, event(&format!("line {i}"), RunState::Running, false));
        }
        let first = watcher.next().await.expect("a line").message;
        assert_eq!(
            first, "line 10",
            "the oldest lines were let go, the rest kept"
        );
    }
}
