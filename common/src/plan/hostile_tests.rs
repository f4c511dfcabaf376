//! Plans an attacker or an unlucky operator writes (issue 20): each is refused by `validate` with its location,
//! because an agent would refuse it (or worse, run it) otherwise.

use super::*;

const BASE: &str = r#"
name = "hostile"
[[scenario]]
name = "api"
kind = "http"
url = "http://127.0.0.1:8080/api"
duration = "5s"
"#;

fn errors_of(text: &str) -> String {
    Plan::parse("plan.toml", text)
        .expect_err("plan must be rejected")
        .to_string()
}

fn with(line: &str) -> String {
    BASE.replacen(
        "duration = \"5s\"",
        &format!("duration = \"5s\"\n{line}"),
        1,
    )
}

fn http_spec(text: &str) -> HttpSpec {
    let plan = Plan::parse("plan.toml", text).expect("valid plan");
    match &plan.scenarios[0].spec {
        ScenarioSpec::Http(h) => h.clone(),
        _ => panic!("an http scenario"),
    }
}

/// Regression (issue 20): 33,000 header entries validated, then panicked the agent in the http crate.
#[test]
fn more_than_a_hundred_headers_are_refused() {
    let many: Vec<String> = (0..33_000).map(|i| format!("x-h{i} = \"v\"")).collect();
    let text = with(&format!("headers = {{ {} }}", many.join(", ")));
    let errors = errors_of(&text);
    assert!(
        errors.contains("33000 headers; a request may carry at most 100"),
        "{errors}"
    );
    assert!(errors.contains("plan.toml:"), "located: {errors}");
    let hundred: Vec<String> = (0..100).map(|i| format!("x-h{i} = \"v\"")).collect();
    let spec = http_spec(&with(&format!("headers = {{ {} }}", hundred.join(", "))));
    assert_eq!(spec.request.headers.len(), 100);
}

#[test]
fn a_header_longer_than_8_kib_is_refused() {
    let long = "v".repeat(8 << 10);
    let errors = errors_of(&with(&format!("headers = {{ x-long = \"{long}\" }}")));
    assert!(
        errors.contains("header \"x-long\" is longer than 8 KiB"),
        "{errors}"
    );
    assert!(!errors.contains(&long), "the value is never echoed");
}

/// Regression (issue 20): Content-Length and Transfer-Encoding were sent as written beside a body of another length.
#[test]
fn framing_headers_belong_to_the_engine() {
    for name in ["Content-Length", "transfer-encoding", "Host", "Upgrade"] {
        let errors = errors_of(&with(&format!("headers = {{ \"{name}\" = \"5\" }}")));
        assert!(
            errors.contains("is written by the engine"),
            "{name}: {errors}"
        );
    }
    let errors = errors_of(&with("http = \"2\"\nheaders = { connection = \"close\" }"));
    assert!(errors.contains("HTTP/2 forbids it"), "{errors}");
    // Over HTTP/1.1, `Connection: close` is a test of its own (no keep-alive): allowed.
    let spec = http_spec(&with("headers = { connection = \"close\" }"));
    assert_eq!(
        spec.request.headers,
        vec![("connection".to_owned(), "close".to_owned())]
    );
}

/// Header values are sent as bytes: any text but control characters (obs-text included, as hyper sends it).
#[test]
fn header_values_are_what_the_agent_sends() {
    let spec = http_spec(&with("headers = { x-name = \"Zoë\" }"));
    assert_eq!(spec.request.headers[0].1, "Zoë");
    let errors = errors_of(&with("headers = { x-name = \"a\\u007fb\" }"));
    assert!(errors.contains("has a control character"), "{errors}");
}

/// Regression (issue 20): `rate = 1000000000000` validated and took an agent to 857 MB and 171 % CPU.
#[test]
fn rates_connections_and_backlogs_beyond_the_engine_are_refused() {
    let errors = errors_of(&with("rate = 1000000000000"));
    assert!(
        errors.contains("rate 1000000000000 is more than a scenario may ask for (10000000)"),
        "{errors}"
    );
    let errors = errors_of(
        &with("rate = 10\nstages = [{ rate = 20000000, duration = \"1s\" }]")
            .replace("duration = \"5s\"\n", ""),
    );
    assert!(
        errors.contains("stage rate 20000000 is more than"),
        "{errors}"
    );
    let errors = errors_of(&with("connections = 20000000"));
    assert!(
        errors.contains("connections 20000000 is more than"),
        "{errors}"
    );
    let errors = errors_of(&with("rate = 10\nmax_backlog = 2000000"));
    assert!(
        errors.contains("max_backlog 2000000 is more than"),
        "{errors}"
    );
    // At the bound, and the default backlog is capped rather than 5 s of 10 million arrivals.
    let spec = http_spec(&with("rate = 10000000"));
    assert_eq!(
        (spec.rate, spec.max_backlog),
        (10_000_000, http::MAX_BACKLOG)
    );
}

/// Regression (issue 20): `http://127.0.0.1:99999/` validated and the agent connected to port 80.
#[test]
fn urls_are_parsed_as_agents_parse_them() {
    for (url, says) in [
        ("http://127.0.0.1:99999/", "port \"99999\" is not a port"),
        ("http://127.0.0.1:0/", "port \"0\" is not a port"),
        (
            "http://127.0.0.1/a<b>",
            "a character a request line cannot carry",
        ),
        (
            "http://127.0.0.1/\\\"x\\\"",
            "a character a request line cannot carry",
        ),
        (
            "http://127.0.0.1/a\\r\\nX-Injected: 1",
            "a character a request line cannot carry",
        ),
    ] {
        let errors = errors_of(&BASE.replace("http://127.0.0.1:8080/api", url));
        assert!(errors.contains(says), "{url}: {errors}");
    }
}

/// Regression (issue 20): `duration = "1ns"` validated and reached the agent as no duration at all.
#[test]
fn durations_shorter_than_a_millisecond_are_refused() {
    for d in ["1ns", "999us"] {
        let errors = errors_of(&BASE.replace("duration = \"5s\"", &format!("duration = \"{d}\"")));
        assert!(errors.contains("shorter than 1ms"), "{d}: {errors}");
    }
    let errors = errors_of(&with("timeout = \"10us\""));
    assert!(errors.contains("shorter than 1ms"), "{errors}");
    assert_eq!(http_spec(&with("warmup = \"0s\"")).warmup, Duration::ZERO);
}

/// Regression (issue 20): U+202E and U+2028 in names were written raw into reports.
#[test]
fn names_with_bidi_overrides_or_line_separators_are_refused() {
    for bad in [
        "\\u202Egnp.exe",
        "a\\u2028b",
        "a\\u2029b",
        "\\u2066x\\u2069",
        "a\\u200Fb",
    ] {
        let text = BASE.replacen("name = \"api\"", &format!("name = \"{bad}\""), 1);
        let errors = errors_of(&text);
        assert!(
            errors.contains("scenario name must be one line"),
            "{bad}: {errors}"
        );
        let text = BASE.replacen("name = \"hostile\"", &format!("name = \"{bad}\""), 1);
        assert!(
            errors_of(&text).contains("plan name must be one line"),
            "{bad}"
        );
    }
    // Letters of any script are names like any other.
    assert!(
        Plan::parse(
            "p.toml",
            &BASE.replacen("name = \"api\"", "name = \"שלום API\"", 1)
        )
        .is_ok()
    );
}

#[test]
fn the_response_head_bound_is_read_and_bounded() {
    assert_eq!(
        http_spec(BASE).request.max_response_header_bytes,
        request::DEFAULT_RESPONSE_HEADER_BYTES
    );
    assert_eq!(
        http_spec(&with("max_response_header_bytes = \"256KiB\""))
            .request
            .max_response_header_bytes,
        256 << 10
    );
    for bad in ["2MiB", "100B", "lots"] {
        let errors = errors_of(&with(&format!("max_response_header_bytes = \"{bad}\"")));
        assert!(errors.contains("plan.toml:"), "{bad}: {errors}");
    }
}
