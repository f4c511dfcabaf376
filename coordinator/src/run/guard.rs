//! The guard that makes every way out of a run, a panic included, stop its agents' load and free them.

use crate::server::registry::Registry;
use loadgrade_common::protocol::ToAgent;
use std::sync::Arc;

/// Held by a run from the moment its agents are reserved. Dropping it (the run ended, returned early, or its task
/// panicked and unwound) tells every reserved agent to stop this run's load and releases them.
pub struct LoadGuard {
    registry: Arc<Registry>,
    run_id: String,
    agents: Vec<String>,
}

impl LoadGuard {
    pub fn new(registry: Arc<Registry>, run_id: &str, agents: Vec<String>) -> Self {
        LoadGuard {
            registry,
            run_id: run_id.to_owned(),
            agents,
        }
    }
}

impl Drop for LoadGuard {
    fn drop(&mut self) {
        // Harmless after a normal end (nothing of this run is running any more); essential after a failure.
        for agent in &self.agents {
            self.registry.send(
                agent,
                ToAgent::Stop {
                    run_id: self.run_id.clone(),
                    reason: "the run ended".to_owned(),
                },
            );
        }
        self.registry.release(&self.run_id);
    }
}
