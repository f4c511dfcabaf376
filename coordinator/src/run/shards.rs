//! Splitting one part of a scenario over the run's agents: shares by weight (cores) that sum exactly to the plan's
//! totals, every second of the profile, the connection cap, the backlog and the request budget.

use crate::server::registry::AgentInfo;
use loadgrade_common::plan::{HttpSpec, LoadModel};
use loadgrade_common::shard::{HttpShard, ShardProfile};
use loadgrade_common::shares::split_by_weight;

/// One agent's shard of an HTTP load.
#[derive(Debug, Clone, PartialEq)]
pub struct Share {
    pub agent: String,
    pub shard: HttpShard,
}

/// The shards of `spec` over `agents`. Agents that would get no connection (or no part of the request budget) get
/// no work; the others share the profile, the backlog and the budget by weight.
pub fn shard_http(spec: &HttpSpec, agents: &[&AgentInfo]) -> Vec<Share> {
    let profile = spec.profile();
    let mut active: Vec<usize> = (0..agents.len()).collect();
    loop {
        let weights: Vec<u64> = active.iter().map(|&i| u64::from(agents[i].cores)).collect();
        // Open: an agent needs a connection and some rate; closed: some connections.
        let connections: Vec<u64> = match spec.model {
            LoadModel::Open => split_by_weight(spec.connections, &weights)
                .into_iter()
                .zip(split_by_weight(profile.max_total(), &weights))
                .map(|(c, r)| if r == 0 { 0 } else { c })
                .collect(),
            LoadModel::Closed => split_by_weight(profile.max_total(), &weights),
        };
        let budgets = spec.requests.map(|r| split_by_weight(r, &weights));
        let keep: Vec<usize> = active
            .iter()
            .enumerate()
            .filter(|&(k, _)| connections[k] > 0 && budgets.as_ref().is_none_or(|b| b[k] > 0))
            .map(|(_, &i)| i)
            .collect();
        if keep.len() == active.len() || keep.is_empty() {
            break;
        }
        active = keep;
    }
    let weights: std::sync::Arc<[u64]> =
        active.iter().map(|&i| u64::from(agents[i].cores)).collect();
    let connections = split_by_weight(spec.connections, &weights);
    let budgets = spec.requests.map(|r| split_by_weight(r, &weights));
    let backlogs = split_by_weight(spec.max_backlog, &weights);
    active
        .iter()
        .enumerate()
        .map(|(k, &i)| Share {
            agent: agents[i].name.clone(),
            shard: HttpShard {
                request: spec.request.clone(),
                model: spec.model,
                arrivals: spec.arrivals,
                profile: ShardProfile {
                    profile: profile.clone(),
                    weights: weights.clone(),
                    index: k,
                },
                connections: connections[k],
                warmup: spec.warmup,
                max_backlog: backlogs[k].max(1),
                max_requests: budgets.as_ref().map(|b| b[k]),
            },
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use loadgrade_common::plan::{Plan, ScenarioSpec};

    fn agent(name: &str, cores: u32) -> AgentInfo {
        AgentInfo {
            name: name.into(),
            version: "0".into(),
            cores,
            epoch: 1,
            clock: None,
            run: None,
            probe_only: false,
            labels: std::collections::BTreeMap::new(),
        }
    }

    fn spec(text: &str) -> HttpSpec {
        let plan = Plan::parse(
            "t.toml",
            &format!("name = \"t\"\n[[scenario]]\nname = \"s\"\nkind = \"http\"\nurl = \"http://127.0.0.1:1/\"\n{text}"),
        )
        .expect("plan");
        match plan.scenarios[0].spec.clone() {
            ScenarioSpec::Http(spec) => spec,
            other => panic!("an http plan, got {other:?}"),
        }
    }

    #[test]
    fn shards_sum_to_the_plan_totals() {
        let agents = [agent("a", 2), agent("b", 1), agent("c", 1)];
        let refs: Vec<&AgentInfo> = agents.iter().collect();
        let shares = shard_http(
            &spec("rate = 1001\nconnections = 7\nduration = \"1s\""),
            &refs,
        );
        let rate_parts: u64 = shares
            .iter()
            .map(|s| s.shard.profile.part_of(s.shard.profile.profile.start))
            .sum();
        assert_eq!(rate_parts, 1001);
        assert_eq!(shares.iter().map(|s| s.shard.connections).sum::<u64>(), 7);
        assert_eq!(
            shares.iter().map(|s| s.shard.max_backlog).sum::<u64>(),
            5005
        );
        let closed = shard_http(&spec("connections = 2\nrequests = 11"), &refs);
        assert_eq!(
            closed.len(),
            2,
            "an agent without a connection gets no work"
        );
        assert_eq!(
            closed
                .iter()
                .filter_map(|s| s.shard.max_requests)
                .sum::<u64>(),
            11
        );
    }
}
