//! The exposition reader against real and hostile pages: series and samples counted, OpenMetrics exemplars and
//! `# EOF`, garbage refused with its line, and replication that multiplies series and keeps families.

use super::*;

const TEXT: &str = "# HELP http_requests_total The total.\n\
    # TYPE http_requests_total counter\n\
    http_requests_total{method=\"post\",code=\"200\"} 1027 1395066363000\n\
    http_requests_total{method=\"post\",code=\"400\"}    3 1395066363000\n\
    \n\
    # a free comment\n\
    msdos_file_access_time_seconds{path=\"C:\\\\DIR\\\\FILE.TXT\",error=\"Cannot find file:\\n\\\"FILE.TXT\\\"\"} 1.458255915e9\n\
    metric_without_timestamp_and_labels 12.47\n\
    something_weird{problem=\"division by zero\"} +Inf -3982045\n\
    job:rate5m{a=\"}\"} NaN\n\
    # TYPE h histogram\n\
    h_bucket{le=\"0.05\"} 24054\n\
    h_bucket{le=\"+Inf\"} 144320\n\
    h_sum 53423\n\
    h_count 144320\n";

#[test]
fn text_format_counts_every_series() {
    let c = count(TEXT, Format::Text).expect("an exposition");
    assert_eq!(
        c,
        Counted {
            series: 10,
            samples: 10
        }
    );
    let names: Vec<&str> = samples_of(TEXT, Format::Text)
        .map(|s| s.expect("sample").name)
        .collect();
    assert!(names.contains(&"job:rate5m"), "{names:?}");
}

#[test]
fn openmetrics_with_units_exemplars_and_eof() {
    let body = "# TYPE foo counter\n# UNIT foo seconds\nfoo_total 17.0 1520879607.789 # {id=\"a\"} 0.67\n\
                foo_created 1520872607.123\n# EOF\n";
    assert_eq!(
        count(body, Format::OpenMetrics).expect("om"),
        Counted {
            series: 2,
            samples: 2
        }
    );
    let after = format!("{body}foo_total 1\n");
    assert!(count(&after, Format::OpenMetrics).is_err());
}

#[test]
fn garbage_names_its_line() {
    for (body, why) in [
        ("<html><body>hi</body></html>", "metric name"),
        ("{\"status\":\"ok\"}", "metric name"),
        ("ok 1\nhello world\n", "value is not a number"),
        ("a{b=\"c} 1\n", "not closed"),
        ("a{b=c} 1\n", "name=\"value\""),
        ("# TYPE a thing\na 1\n", "unknown metric type"),
        ("a 1 2 3\n", "more than"),
    ] {
        let e = count(body, Format::Text).expect_err(body);
        assert!(e.to_string().contains(why), "{body}: {e}");
    }
    assert_eq!(
        count("ok 1\nhello world\n", Format::Text)
            .expect_err("x")
            .line,
        2
    );
}

#[test]
fn duplicates_are_one_series() {
    assert_eq!(
        count("a 1\na 2\n", Format::Text).expect("ok"),
        Counted {
            series: 1,
            samples: 2
        }
    );
}

#[test]
fn replication_multiplies_series_and_keeps_families_and_eof() {
    let scaled = replicate(TEXT, 3);
    let c = count(&scaled, Format::Text).expect("still an exposition");
    assert_eq!(
        c,
        Counted {
            series: 30,
            samples: 30
        }
    );
    assert_eq!(scaled.matches("# TYPE h histogram").count(), 1);
    assert!(scaled.contains("metric_without_timestamp_and_labels{loadgrade_replica=\"2\"} 12.47"));
    assert!(scaled.contains("h_bucket{loadgrade_replica=\"1\",le=\"0.05\"} 24054"));
    let om = "# TYPE foo counter\nfoo_total{} 1\n# EOF\n";
    let scaled = replicate(om, 2);
    assert!(scaled.ends_with("# EOF\n"), "{scaled}");
    assert_eq!(
        count(&scaled, Format::OpenMetrics).expect("om"),
        Counted {
            series: 2,
            samples: 2
        }
    );
    assert!(Format::of_content_type("text/html; charset=utf-8").is_none());
    assert_eq!(
        Format::of_content_type("application/openmetrics-text; version=1.0.0"),
        Some(Format::OpenMetrics)
    );
}
