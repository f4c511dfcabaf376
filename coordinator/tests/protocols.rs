//! HTTP/2 with prior knowledge, and HTTPS (HTTP/1.1 and HTTP/2 by ALPN) with the plan's CA file, against the
//! testbed: every request answered and counted by the target. Without the CA, TLS setup fails and is counted.

mod support;

use loadgrade_common::grade::Verdict;
use loadgrade_testbed::{Testbed, TestbedConfig, TlsIdentity};
use std::path::PathBuf;

/// A testbed serving HTTPS with a fresh self-signed certificate for `localhost`; returns it and the CA file.
async fn tls_testbed(name: &str) -> (Testbed, PathBuf) {
    let rcgen::CertifiedKey { cert, signing_key } =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("certificate");
    let dir = std::env::temp_dir().join(format!("loadgrade-tls-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let ca = dir.join("ca.pem");
    std::fs::write(&ca, cert.pem()).expect("write CA");
    let config = TestbedConfig {
        listen: ([127, 0, 0, 1], 0).into(),
        tls: Some(TlsIdentity {
            cert_pem: cert.pem(),
            key_pem: signing_key.serialize_pem(),
        }),
        metrics_series: 0,
    };
    (Testbed::start(config).await.expect("TLS testbed"), ca)
}

fn plan(url: &str, extra: &str) -> String {
    format!(
        "name = \"proto\"\nmin_agents = 2\n[[scenario]]\nname = \"p\"\nkind = \"http\"\nurl = \"{url}\"\nconnections = 4\nrequests = 200\n{extra}\nthresholds = [\"success_rate == 1\"]\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_with_prior_knowledge() {
    let testbed = support::testbed().await;
    let embedded = support::embedded(2).await;
    let finished = support::run_plan(
        &embedded,
        &plan(&testbed.url("/api/items?limit=3"), "http = \"2\""),
    )
    .await;
    assert_eq!(
        finished.report.verdict,
        Verdict::Pass,
        "{:?}",
        finished.report.verdict_reasons
    );
    let m = support::http_metrics(&finished.report, "p");
    assert_eq!((m.requests, m.errors), (200, 0));
    assert!(m.bytes_received > 0);
    assert_eq!(testbed.requests(), 200);
    embedded.stop().await;
    testbed.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_over_http1_and_http2_with_the_plans_ca() {
    let (testbed, ca) = tls_testbed("ok").await;
    let embedded = support::embedded(2).await;
    let url = testbed
        .url("/api/items?limit=3")
        .replace("127.0.0.1", "localhost");
    for version in ["1.1", "2"] {
        testbed.reset();
        let extra = format!("http = \"{version}\"\nca_file = \"{}\"", ca.display());
        let finished = support::run_plan(&embedded, &plan(&url, &extra)).await;
        support::assert_schema_valid(&finished.json);
        assert_eq!(
            finished.report.verdict,
            Verdict::Pass,
            "{version}: {:?}",
            finished.report.verdict_reasons
        );
        let m = support::http_metrics(&finished.report, "p");
        assert_eq!((m.requests, m.errors), (200, 0), "{version}");
        assert_eq!(testbed.requests(), 200, "{version}");
        let connect = finished
            .report
            .agents
            .iter()
            .filter_map(|a| a.generator.connect_ms_p99)
            .count();
        assert_eq!(connect, 2, "TLS setup time is recorded per agent");
    }
    embedded.stop().await;
    testbed.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_untrusted_certificate_fails_setup_and_sends_nothing() {
    let (testbed, _ca) = tls_testbed("untrusted").await;
    let embedded = support::embedded(2).await;
    let url = testbed.url("/api/items").replace("127.0.0.1", "localhost");
    let finished = support::run_plan(
        &embedded,
        // Past the preflight (which would stop the run at the failed handshake): what the run itself records.
        &plan(&url, "")
            .replacen(
                "name = \"proto\"\n",
                "name = \"proto\"\npreflight = \"warn\"\n",
                1,
            )
            .replace("requests = 200", "requests = 20"),
    )
    .await;
    let m = support::http_metrics(&finished.report, "p");
    assert_eq!(finished.report.verdict, Verdict::Invalid);
    assert!(m.errors_by_class.connect > 0, "{m:?}");
    assert_eq!(
        testbed.requests(),
        0,
        "no request got through an untrusted TLS session"
    );
    embedded.stop().await;
    testbed.shutdown().await;
}
