//! The `cache` kind's section of the report page: hit rates (the client's and the server's), hit and miss latency
//! side by side, the speedup, and the cache's memory against its limit.

use super::doc::{Block, figure, text};
use super::http::{latency_row, latency_table};
use loadgrade_common::report::cache::{CacheMetrics, CacheMode};

pub(super) fn section(blocks: &mut Vec<Block>, m: &CacheMetrics) {
    let mode = match m.mode {
        CacheMode::Redis => "redis (cache-aside)",
        CacheMode::Http => "http (the application's cache)",
    };
    blocks.push(Block::Paragraph(vec![
        text(format!(
            "{mode} · {} lookups · {} hits · {} misses · {} errors · hit rate ",
            m.requests, m.hits, m.misses, m.errors
        )),
        super::doc::percent(m.hit_rate),
        text(" % (server: "),
        super::doc::percent(m.server_hit_rate),
        text(" %) · speedup "),
        figure(m.speedup),
        text(" (p50 "),
        figure(m.speedup_p50),
        text(") · "),
        figure(m.throughput_rps),
        text(format!(" lookups/s over the {:.1} s window", m.duration_s)),
    ]));
    blocks.push(Block::Paragraph(vec![text(format!(
        "Key space {} · zipf {} · seed {}",
        m.key_space, m.zipf, m.seed
    ))]));
    if m.mode == CacheMode::Redis {
        let bytes = |v: Option<u64>| figure(v.map(|b| b as f64 / (1024.0 * 1024.0)));
        blocks.push(Block::Paragraph(vec![
            text("Cache memory (MiB): "),
            bytes(m.cache_memory_bytes),
            text(" of "),
            bytes(m.cache_memory_limit_bytes),
            text(" · utilization (%) "),
            super::doc::percent(m.memory_utilization),
            text(" · evictions "),
            figure(m.evictions.map(|e| e as f64)),
            text(" · keys of this run deleted "),
            figure(m.keys_deleted.map(|k| k as f64)),
        ]));
    }
    let mut rows = vec![
        latency_row("hit", m.hit_latency_ms.as_ref()),
        latency_row("miss", m.miss_latency_ms.as_ref()),
    ];
    if m.mode == CacheMode::Redis {
        rows.push(latency_row(
            "redis GET round trip",
            m.lookup_latency_ms.as_ref(),
        ));
    }
    blocks.push(latency_table(rows));
    // Hit and miss latency by percentile, from their merged histograms.
    let chart = super::chart::line_chart(
        "hit vs miss latency by percentile",
        &super::http::percentile_axis(),
        &super::chart::Axis {
            label: "latency, ms (log)".to_owned(),
            log: true,
            ticks: None,
        },
        &[
            super::chart::Line {
                label: "hit".to_owned(),
                colour: "#2ca02c",
                points: super::http::percentile_curve(&m.hdr_hit),
                dashed: false,
            },
            super::chart::Line {
                label: "miss".to_owned(),
                colour: "#d62728",
                points: super::http::percentile_curve(&m.hdr_miss),
                dashed: false,
            },
        ],
    );
    if !chart.is_empty() {
        blocks.push(Block::Html(chart));
    }
}
