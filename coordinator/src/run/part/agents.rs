//! One assigned agent's place in a part: whether its shard still runs or how it ended, and what arrived from it (its
//! intervals counted, its health, how far its figures reach, what its shard can have done).

use crate::report::agent_health::AgentHealth;
use crate::run::coverage::Coverage;
use crate::run::intake::{Ledger, ShardBounds};

/// Where an assigned agent's shard is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ShardState {
    /// Sent, not ended yet.
    Running,
    /// The agent said its shard ended (done or failed).
    Ended,
    /// The agent refused the shard.
    Refused,
    /// The agent's session ended, or it did not end its shard after being stopped.
    Gone,
}

/// One assigned agent in a part.
pub(super) struct AgentShard {
    pub state: ShardState,
    /// Intervals stored from it.
    pub reported: u64,
    /// Generator health of this part alone (a fault in one scenario is not diluted by the others); `None` until its
    /// first interval.
    pub health: Option<AgentHealth>,
    /// How far into the part its intervals reach, and how many arrived after it was taken as lost.
    pub coverage: Coverage,
    /// What its shard can have done, and what its accepted intervals add up to.
    pub bounds: ShardBounds,
    pub ledger: Ledger,
}

impl AgentShard {
    pub fn new(bounds: ShardBounds) -> AgentShard {
        AgentShard {
            state: ShardState::Running,
            reported: 0,
            health: None,
            coverage: Coverage::default(),
            bounds,
            ledger: Ledger::default(),
        }
    }

    /// Ends a running shard as `state`; a shard that ended already keeps how it ended, except that a refusal is
    /// always said.
    pub fn end(&mut self, state: ShardState) {
        if self.state == ShardState::Running || state == ShardState::Refused {
            self.state = state;
        }
    }
}
