//! A scenario's setup as the report shows it: what the plan asked (the target, its query's values withheld, the model, the
//! rate or profile, connections, length, warm-up), so a reader sees what was measured without the plan at hand.
//! Secrets never appear: URLs lose their credentials and their query's values (its parameter names stay), headers
//! are not shown.

use loadgrade_common::plan::pagination::redacted_database_url;
use loadgrade_common::plan::{HttpSpec, LoadModel, Scenario, ScenarioSpec};
use std::collections::BTreeMap;
use std::time::Duration;

/// The setup of `scenario`, by name.
pub fn setup(scenario: &Scenario) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut put = |k: &str, v: String| {
        out.insert(k.to_owned(), v);
    };
    match &scenario.spec {
        ScenarioSpec::Http(h) => http(h, &mut put),
        ScenarioSpec::Cache(c) => {
            http(&c.load, &mut put);
            put("cache", format!("{:?} mode", c.mode()).to_lowercase());
            put("key_space", c.key_space.to_string());
            put("zipf", c.zipf.to_string());
        }
        ScenarioSpec::Ramp(r) => {
            put("target", shown(&r.base.request.url));
            put("method", r.base.request.method.clone());
            put(
                "steps",
                r.steps
                    .iter()
                    .map(u64::to_string)
                    .collect::<Vec<_>>()
                    .join(", "),
            );
            put("hold", seconds(r.hold));
            put("settle", seconds(r.settle));
            put("model", "closed (connections per step)".to_owned());
        }
        ScenarioSpec::Pagination(p) => {
            put("database", redacted_database_url(&p.database));
            put("table", format!("{} ordered by {}", p.table, p.key));
            put(
                "pages",
                p.pages
                    .iter()
                    .map(u64::to_string)
                    .collect::<Vec<_>>()
                    .join(", "),
            );
            put("page_size", p.page_size.to_string());
            put("iterations", p.iterations.to_string());
            put(
                "connections",
                format!("{} per agent on {} agent(s)", p.concurrency, p.agents),
            );
        }
        ScenarioSpec::Scrape(s) => {
            put("target", shown(&s.target));
            put(
                "intervals",
                s.intervals
                    .iter()
                    .map(|i| seconds(*i))
                    .collect::<Vec<_>>()
                    .join(", "),
            );
            put("duration", format!("{} per interval", seconds(s.duration)));
            put(
                "prometheus",
                s.prometheus.clone().unwrap_or_else(|| "not run".to_owned()),
            );
            put("replicas", s.replicas.to_string());
        }
    }
    out
}

fn http(h: &HttpSpec, put: &mut dyn FnMut(&str, String)) {
    put("target", shown(&h.request.url));
    put("method", h.request.method.clone());
    let unit = match h.model {
        LoadModel::Open => "req/s",
        LoadModel::Closed => "connections",
    };
    let start = match h.model {
        LoadModel::Open => h.rate,
        LoadModel::Closed => h.connections,
    };
    put(
        "model",
        match h.model {
            LoadModel::Open => format!("open, {:?} arrivals", h.arrivals).to_lowercase(),
            LoadModel::Closed => "closed".to_owned(),
        },
    );
    if h.stages.is_empty() {
        put("load", format!("{start} {unit}"));
    } else {
        let stages: Vec<String> = h
            .stages
            .iter()
            .map(|s| format!("{} {unit} over {}", s.target, seconds(s.duration)))
            .collect();
        put(
            "load",
            format!("from {start} {unit}, then {}", stages.join(", then ")),
        );
    }
    if h.model == LoadModel::Open {
        put("connections", format!("at most {}", h.connections));
    }
    if let Some(d) = h.duration {
        put("duration", seconds(d));
    }
    if let Some(n) = h.requests {
        put("requests", format!("at most {n}"));
    }
    put("warmup", seconds(h.warmup));
    put("timeout", seconds(h.request.timeout));
}

/// A URL without credentials or fragment, its query parameters named with their values withheld
/// (`/work?ms=…&slots=…`): a value may be a key, and a report goes further than the plan's authors.
fn shown(url: &str) -> String {
    let base = url.split(['?', '#']).next().unwrap_or_default();
    let base = match base.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
            let host = authority.rsplit('@').next().unwrap_or(authority);
            format!("{scheme}://{host}{path}")
        }
        None => base.to_owned(),
    };
    let query = url
        .split_once('?')
        .map(|(_, rest)| rest.split('#').next().unwrap_or_default())
        .filter(|q| !q.is_empty());
    match query {
        None => base,
        Some(q) => {
            let names: Vec<String> = q
                .split('&')
                .filter(|p| !p.is_empty())
                .map(|p| format!("{}=…", p.split('=').next().unwrap_or_default()))
                .collect();
            format!("{base}?{}", names.join("&"))
        }
    }
}

fn seconds(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s.fract() == 0.0 {
        format!("{s:.0} s")
    } else {
        format!("{s} s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_credentials_and_queries() {
        assert_eq!(
            shown("http://u:p@127.0.0.1:8080/a?key=secret#x"),
            "http://127.0.0.1:8080/a?key=…"
        );
        // Regression (issue 21): `/work?ms=10&slots=8` was shown as `/work`.
        assert_eq!(
            shown("http://127.0.0.1:8080/work?ms=10&slots=8"),
            "http://127.0.0.1:8080/work?ms=…&slots=…"
        );
        assert_eq!(shown("http://h/a?"), "http://h/a");
        assert_eq!(seconds(Duration::from_millis(1500)), "1.5 s");
    }
}
