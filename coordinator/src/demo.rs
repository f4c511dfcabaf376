//! `loadgrade demo`'s plan and target: examples/demo.toml, built in, pointed at a testbed that runs in a process of
//! its own (so the ramp's memory probe reads the target alone, not the coordinator and agents).

/// The demo plan, built in so `loadgrade demo` works from any directory.
pub const PLAN: &str = include_str!("../../examples/demo.toml");
/// The address demo.toml names; the demo points it at the testbed it starts.
pub const TARGET: &str = "http://127.0.0.1:8080";

/// The demo plan pointed at a testbed on `addr` running as process `pid` (its ramp probe reads that process).
pub fn plan_for(addr: std::net::SocketAddr, pid: u32) -> String {
    PLAN.replace(TARGET, &format!("http://{addr}")).replace(
        "probe = { kind = \"process\", name = \"loadgrade-testbed\" }",
        &format!("probe = {{ kind = \"process\", pid = {pid} }}"),
    )
}

/// One scenario of a plan text (its `[[scenario]]` table, up to the next one), with the plan's head: for tests
/// that check what the demo says about one scenario without running all of it.
pub fn only_scenario(plan: &str, name: &str) -> Option<String> {
    let mut parts = plan.split("[[scenario]]");
    let head = parts.next()?;
    let table = parts.find(|t| t.contains(&format!("name = \"{name}\"")))?;
    // The head may name more agents than a test starts.
    let head: String = head
        .lines()
        .filter(|l| !l.starts_with("min_agents"))
        .map(|l| format!("{l}\n"))
        .collect();
    Some(format!("{head}[[scenario]]{table}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_plan_is_valid_and_points_at_the_testbed() {
        let addr = "127.0.0.1:4242".parse().expect("addr");
        let plan = plan_for(addr, 77);
        let parsed = loadgrade_common::plan::Plan::parse("demo.toml", &plan).expect("valid");
        assert!(parsed.scenarios.len() >= 5);
        assert!(!plan.contains(TARGET) && plan.contains("pid = 77"));
        let one = only_scenario(&plan, "stall-open").expect("stall-open");
        let parsed = loadgrade_common::plan::Plan::parse("stall.toml", &one).expect("valid alone");
        assert_eq!(parsed.scenarios.len(), 1);
    }
}
