//! Any text as a plan: validation answers with a plan or located errors, never a panic, and a plan it accepts has
//! bounded durations (the run-time arithmetic on them cannot overflow).
#![no_main]

use libfuzzer_sys::fuzz_target;
use loadgrade_common::plan::{MAX_RUN, Plan};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(plan) = Plan::parse("fuzz/plan.toml", text) {
        for scenario in &plan.scenarios {
            if let Some(length) = scenario.planned_length() {
                assert!(
                    length <= MAX_RUN + MAX_RUN,
                    "an accepted plan runs {length:?}"
                );
            }
        }
    }
});
