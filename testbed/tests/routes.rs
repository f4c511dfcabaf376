//! End-to-end tests of the testbed routes over real TCP connections.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use loadgrade_testbed::{Testbed, TestbedConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A parsed HTTP/1.1 response.
struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

async fn start() -> Testbed {
    let config = TestbedConfig::plain("127.0.0.1:0".parse().expect("valid address"));
    Testbed::start(config).await.expect("testbed starts")
}

/// Minimal HTTP/1.1 client: one request with `Connection: close`, read to end.
async fn request(tb: &Testbed, method: &str, path: &str) -> Resp {
    let mut stream = TcpStream::connect(tb.addr()).await.expect("connect");
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        tb.addr()
    );
    stream.write_all(req.as_bytes()).await.expect("write");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.expect("read");
    let raw = String::from_utf8(raw).expect("utf-8 response");
    let (head, body) = raw.split_once("\r\n\r\n").expect("header terminator");
    let mut lines = head.split("\r\n");
    let status_line = lines.next().expect("status line");
    let mut parts = status_line.splitn(3, ' ');
    assert_eq!(
        parts.next(),
        Some("HTTP/1.1"),
        "status line {status_line:?}"
    );
    let status = parts
        .next()
        .and_then(|s| s.parse().ok())
        .expect("status code");
    let headers = lines
        .map(|l| {
            let (k, v) = l.split_once(':').expect("header line");
            (k.trim().to_owned(), v.trim().to_owned())
        })
        .collect();
    Resp {
        status,
        headers,
        body: body.to_owned(),
    }
}

async fn get(tb: &Testbed, path: &str) -> Resp {
    request(tb, "GET", path).await
}

async fn stats(tb: &Testbed) -> u64 {
    let resp = get(tb, "/_testbed/stats").await;
    assert_eq!(resp.status, 200);
    let n = resp
        .body
        .strip_prefix("{\"requests\":")
        .and_then(|s| s.strip_suffix('}'))
        .expect("stats shape");
    n.trim().parse().expect("stats number")
}

#[tokio::test]
async fn items_returns_requested_count() {
    let tb = start().await;

    let resp = get(&tb, "/api/items?limit=5").await;
    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("content-type"), Some("application/json"));
    assert_eq!(
        resp.header("content-length"),
        Some(resp.body.len().to_string().as_str())
    );
    assert!(
        resp.body
            .starts_with("[{\"id\":1,\"name\":\"item-1\",\"price_cents\":")
    );
    assert_eq!(resp.body.matches("\"id\":").count(), 5);
    // Deterministic.
    assert_eq!(get(&tb, "/api/items?limit=5").await.body, resp.body);

    assert_eq!(
        get(&tb, "/api/items").await.body.matches("\"id\":").count(),
        20
    );
    assert_eq!(
        get(&tb, "/api/items?limit=5000")
            .await
            .body
            .matches("\"id\":")
            .count(),
        1000
    );
    assert_eq!(get(&tb, "/api/items?limit=0").await.body, "[]");

    let bad = get(&tb, "/api/items?limit=abc").await;
    assert_eq!(bad.status, 400);
    assert!(bad.body.contains("limit"), "{}", bad.body);

    tb.shutdown().await;
}

#[tokio::test]
async fn simple_routes() {
    let tb = start().await;

    let health = get(&tb, "/health").await;
    assert_eq!((health.status, health.body.as_str()), (200, "ok"));

    assert_eq!(get(&tb, "/status/503").await.status, 503);
    assert_eq!(get(&tb, "/status/418").await.status, 418);
    let no_content = get(&tb, "/status/204").await;
    assert_eq!((no_content.status, no_content.body.as_str()), (204, ""));
    assert_eq!(get(&tb, "/status/600").await.status, 400);
    assert_eq!(get(&tb, "/status/99").await.status, 400);
    assert_eq!(get(&tb, "/status/oops").await.status, 400);

    let pid = get(&tb, "/_testbed/pid").await;
    assert_eq!(pid.status, 200);
    assert_eq!(pid.body, std::process::id().to_string());

    let missing = get(&tb, "/nope").await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.header("content-length"), Some("9"));

    let wrong = request(&tb, "POST", "/health").await;
    assert_eq!(wrong.status, 405);
    assert_eq!(wrong.header("allow"), Some("GET"));

    assert_eq!(get(&tb, "/delay?ms=x").await.status, 400);
    let t = Instant::now();
    assert_eq!(get(&tb, "/delay?ms=100").await.status, 200);
    assert!(t.elapsed() >= Duration::from_millis(100));

    tb.shutdown().await;
}

#[tokio::test]
async fn stats_count_exactly_and_reset() {
    let tb = start().await;
    assert_eq!(stats(&tb).await, 0);

    for i in 0..25 {
        let path = match i % 5 {
            0 => "/health",
            1 => "/api/items?limit=2",
            2 => "/status/500",
            3 => "/does-not-exist",
            _ => "/delay?ms=1",
        };
        get(&tb, path).await;
        // Control and observation endpoints are not counted.
        if i % 7 == 0 {
            get(&tb, "/_testbed/pid").await;
            get(&tb, "/metrics").await;
            get(&tb, "/_testbed/unknown").await;
        }
    }
    assert_eq!(stats(&tb).await, 25);
    assert_eq!(tb.requests(), 25);

    let metrics = get(&tb, "/metrics").await;
    assert_eq!(metrics.status, 200);
    for line in [
        "# TYPE loadgrade_testbed_requests_total counter",
        "loadgrade_testbed_requests_total 25",
        "# TYPE loadgrade_testbed_in_flight gauge",
        "loadgrade_testbed_in_flight 0",
    ] {
        assert!(
            metrics.body.lines().any(|l| l == line),
            "{line:?} missing in\n{}",
            metrics.body
        );
    }

    let before = request(&tb, "GET", "/_testbed/sources").await;
    assert!(before.body.contains("\"127.0.0.1\":"), "{}", before.body);
    assert!(!before.body.contains("\"127.0.0.1\":0"), "{}", before.body);
    let reset = request(&tb, "POST", "/_testbed/reset").await;
    assert_eq!(reset.status, 204);
    assert_eq!(stats(&tb).await, 0);
    assert_eq!(tb.requests(), 0);
    // Regression (issue 21): reset left the counts by source as they were.
    let after = request(&tb, "GET", "/_testbed/sources").await;
    assert!(after.body.contains("\"127.0.0.1\":0"), "{}", after.body);

    get(&tb, "/health").await;
    assert_eq!(tb.requests(), 1);
    tb.reset();
    assert_eq!(stats(&tb).await, 0);

    tb.shutdown().await;
}

#[tokio::test]
async fn in_flight_requests_are_already_counted() {
    let tb = start().await;
    let url_addr = tb.addr();
    let slow = tokio::spawn(async move {
        let mut s = TcpStream::connect(url_addr).await.expect("connect");
        s.write_all(b"GET /delay?ms=500 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .expect("write");
        let mut out = Vec::new();
        s.read_to_end(&mut out).await.expect("read");
        out
    });

    let deadline = Instant::now() + Duration::from_millis(400);
    while tb.requests() == 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(stats(&tb).await, 1);
    let metrics = get(&tb, "/metrics").await;
    if !slow.is_finished() {
        assert!(
            metrics.body.contains("loadgrade_testbed_in_flight 1"),
            "{}",
            metrics.body
        );
    }
    let out = slow.await.expect("slow request task");
    assert!(out.starts_with(b"HTTP/1.1 200"));

    tb.shutdown().await;
}

#[tokio::test]
async fn stall_holds_requests_in_the_pause_window() {
    let tb = start().await;
    let path = "/stall?period_ms=400&pause_ms=200";

    // 20 requests spread evenly over two periods: about half land in a pause
    // window and are held, the others are answered at once.
    let mut tasks = Vec::new();
    for i in 0..20u64 {
        let addr = tb.addr();
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(i * 40)).await;
            let t = Instant::now();
            let mut s = TcpStream::connect(addr).await.expect("connect");
            let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
            s.write_all(req.as_bytes()).await.expect("write");
            let mut out = Vec::new();
            s.read_to_end(&mut out).await.expect("read");
            assert!(out.starts_with(b"HTTP/1.1 200"));
            t.elapsed()
        }));
    }
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.push(task.await.expect("stall request task"));
    }
    let max = latencies.iter().max().copied().unwrap_or_default();
    let min = latencies.iter().min().copied().unwrap_or_default();
    assert!(
        max >= Duration::from_millis(100),
        "max latency {max:?}, all {latencies:?}"
    );
    assert!(
        max <= Duration::from_millis(1000),
        "max latency {max:?}, all {latencies:?}"
    );
    assert!(
        min < Duration::from_millis(50),
        "min latency {min:?}, all {latencies:?}"
    );

    assert_eq!(
        get(&tb, "/stall?period_ms=400&pause_ms=400").await.status,
        400
    );
    assert_eq!(get(&tb, "/stall?period_ms=0&pause_ms=0").await.status, 400);
    assert_eq!(get(&tb, "/stall?period_ms=abc").await.status, 400);

    tb.shutdown().await;
}

#[tokio::test]
async fn keep_alive_and_shutdown_with_open_connection() {
    let tb = start().await;
    assert!(tb.url("/health").starts_with("http://127.0.0.1:"));

    // Two requests over one kept-alive connection.
    let stream = TcpStream::connect(tb.addr()).await.expect("connect");
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    let conn_task = tokio::spawn(conn);
    for _ in 0..2 {
        let req = http::Request::get("/health")
            .header("host", tb.addr().to_string())
            .body(Empty::<Bytes>::new())
            .expect("request");
        let resp = sender.send_request(req).await.expect("response");
        assert_eq!(resp.status(), 200);
        let body = resp.into_body().collect().await.expect("body").to_bytes();
        assert_eq!(&body[..], b"ok");
    }
    assert_eq!(tb.requests(), 2);

    // The idle keep-alive connection must not hold shutdown up.
    let addr = tb.addr();
    let t = Instant::now();
    tokio::time::timeout(Duration::from_secs(3), tb.shutdown())
        .await
        .expect("shutdown returns promptly");
    assert!(t.elapsed() < Duration::from_secs(3));

    // The server closed our connection and no longer accepts new ones.
    tokio::time::timeout(Duration::from_secs(3), conn_task)
        .await
        .expect("client connection closed by server")
        .expect("client conn task")
        .expect("clean close");
    assert!(TcpStream::connect(addr).await.is_err());
}

/// `--metrics-series N`: /metrics holds whole synthetic histograms (at least N series), and says how many series
/// it holds in all; every sample line is one series.
#[tokio::test]
async fn metrics_series_are_exposed_and_counted() {
    for asked in [0u64, 1_000, 50_000] {
        let mut config = TestbedConfig::plain("127.0.0.1:0".parse().expect("valid address"));
        config.metrics_series = asked;
        let tb = Testbed::start(config).await.expect("testbed starts");
        get(&tb, "/health").await;
        let metrics = get(&tb, "/metrics").await;
        assert_eq!(metrics.status, 200);
        let samples = metrics
            .body
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .count() as u64;
        let said: u64 = metrics
            .body
            .lines()
            .find_map(|l| l.strip_prefix("loadgrade_testbed_exposed_series "))
            .expect("the count of series")
            .parse()
            .expect("a number");
        assert_eq!(samples, said, "{asked} asked");
        assert!(
            said >= asked + 7 && said < asked + 7 + 13,
            "{asked} asked, {said} exposed"
        );
        tb.shutdown().await;
    }
}
