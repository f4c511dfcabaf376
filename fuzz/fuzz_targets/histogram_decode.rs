//! Any bytes as an interval's histogram: decoding answers with a bounded histogram or an error, never a panic or an
//! allocation beyond its bounds (libFuzzer's -rss_limit_mb catches the latter).
#![no_main]

use libfuzzer_sys::fuzz_target;
use loadgrade_common::histogram::decode;

fuzz_target!(|data: &[u8]| {
    if let Ok(h) = decode(data) {
        let _ = h.value_at_quantile(0.99);
        let _ = h.len();
    }
});
