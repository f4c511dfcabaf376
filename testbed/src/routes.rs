//! Request routing and the handlers behind every testbed endpoint.

use std::fmt;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{ALLOW, CONTENT_TYPE, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use tokio::time::Instant;

use crate::stats::Stats;

/// Default and maximum `limit` for `/api/items`.
const ITEMS_DEFAULT: u64 = 20;
const ITEMS_MAX: u64 = 1000;
/// Upper bound for `/delay?ms=` (larger values are clamped) and for
/// `/stall?pause_ms=` (larger values are rejected).
const MAX_HOLD_MS: u64 = 60_000;
/// Defaults for `/stall`.
const STALL_PERIOD_DEFAULT_MS: u64 = 2000;
const STALL_PAUSE_DEFAULT_MS: u64 = 500;

const TEXT: &str = "text/plain; charset=utf-8";
const JSON: &str = "application/json";
const PROMETHEUS: &str = "text/plain; version=0.0.4; charset=utf-8";

/// State shared by all connections of one testbed.
#[derive(Debug)]
pub(crate) struct AppState {
    pub(crate) stats: Stats,
    /// Origin of the `/stall` schedule.
    pub(crate) started: Instant,
    /// `/work`: one pool of slots per distinct `slots` value.
    work_slots: std::sync::Mutex<std::collections::HashMap<u64, Arc<tokio::sync::Semaphore>>>,
    /// `/_testbed/allocate`: memory held on purpose (and touched, so it counts in RSS).
    ballast: std::sync::Mutex<Vec<Vec<u8>>>,
    /// `/api/complete`: the caches in front of a slow origin.
    pub(crate) caches: crate::cache::Caches,
    /// `/metrics`: the synthetic series.
    synthetic: crate::synthetic::Synthetic,
    /// `/slow`: requests seen so far, across connections.
    slow_seen: std::sync::atomic::AtomicU64,
    /// Counted requests by the address they came from (`/_testbed/sources`).
    by_source: std::sync::Mutex<
        std::collections::BTreeMap<std::net::IpAddr, Arc<std::sync::atomic::AtomicU64>>,
    >,
}

/// State of one connection.
#[derive(Debug, Default)]
pub(crate) struct ConnState {
    /// `/hangup`: requests read on this connection.
    hangup_seen: std::sync::atomic::AtomicU64,
    /// Counted requests of this connection's source address.
    source: Arc<std::sync::atomic::AtomicU64>,
}

impl ConnState {
    /// A connection from `peer`, counting into its address's total.
    pub(crate) fn from_peer(state: &AppState, peer: std::net::IpAddr) -> Self {
        let source = state
            .by_source
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(peer)
            .or_default()
            .clone();
        ConnState {
            hangup_seen: std::sync::atomic::AtomicU64::new(0),
            source,
        }
    }
}

/// What to do with a request.
pub(crate) enum Handled {
    Respond(Response<Full<Bytes>>),
    /// Close the connection without answering (the request was read and counted).
    HangUp,
}

impl AppState {
    pub(crate) fn new(synthetic: crate::synthetic::Synthetic) -> Self {
        AppState {
            synthetic,
            stats: Stats::default(),
            started: Instant::now(),
            work_slots: std::sync::Mutex::new(std::collections::HashMap::new()),
            ballast: std::sync::Mutex::new(Vec::new()),
            slow_seen: std::sync::atomic::AtomicU64::new(0),
            caches: crate::cache::Caches::default(),
            by_source: std::sync::Mutex::new(std::collections::BTreeMap::new()),
        }
    }

    /// `{"ADDRESS": COUNT, ...}` of counted requests by source address.
    fn sources_json(&self) -> String {
        let map = self
            .by_source
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let fields: Vec<String> = map
            .iter()
            .map(|(ip, n)| format!("\"{ip}\":{}", n.load(std::sync::atomic::Ordering::Relaxed)))
            .collect();
        format!("{{{}}}", fields.join(","))
    }

    fn slots(&self, slots: u64) -> Arc<tokio::sync::Semaphore> {
        let mut pools = self
            .work_slots
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        pools
            .entry(slots)
            .or_insert_with(|| Arc::new(tokio::sync::Semaphore::new(slots as usize)))
            .clone()
    }
}

/// Most memory `/_testbed/allocate` holds, MiB.
const MAX_BALLAST_MIB: u64 = 4096;
/// Most `/work` slots.
const MAX_SLOTS: u64 = 100_000;

/// A client mistake, answered with 400 and the message as body.
#[derive(Debug)]
struct BadRequest(String);

impl fmt::Display for BadRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

type Reply = Result<Response<Full<Bytes>>, BadRequest>;

/// Control and observation endpoints, which are not counted.
fn is_control(path: &str) -> bool {
    path == "/metrics" || path == "/_testbed" || path.starts_with("/_testbed/")
}

/// The method a known path answers to, or `None` for an unknown path.
fn allowed_method(path: &str) -> Option<Method> {
    match path {
        "/api/items" | "/api/complete" | "/health" | "/delay" | "/stall" | "/work" | "/slow"
        | "/_testbed/stats" | "/_testbed/pid" | "/_testbed/sources" | "/metrics" => {
            Some(Method::GET)
        }
        "/_testbed/reset" | "/_testbed/allocate" | "/_testbed/free" => Some(Method::POST),
        p if p.starts_with("/status/") => Some(Method::GET),
        _ => None,
    }
}

fn allow_header(method: &Method) -> &'static str {
    if method == Method::POST {
        "POST"
    } else {
        "GET"
    }
}

/// The header loadgrade's preflight probe carries: a probe is not load, so the testbed does not count it.
pub const PREFLIGHT_HEADER: &str = "x-loadgrade-preflight";

/// Whether a request counts as load: not a control or observation endpoint, not a preflight probe.
fn is_counted<B>(req: &Request<B>) -> bool {
    !is_control(req.uri().path()) && !req.headers().contains_key(PREFLIGHT_HEADER)
}

/// Handles one request on a connection. The request body is never read.
pub(crate) async fn handle_on<B>(req: Request<B>, state: &AppState, conn: &ConnState) -> Handled {
    if req.headers().contains_key(PREFLIGHT_HEADER) {
        state.stats.probe();
    }
    if is_counted(&req) {
        conn.source
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
    if req.uri().path() == "/hangup" {
        // Counted at reception: the target read it, whether or not it answers.
        let _in_flight = is_counted(&req).then(|| state.stats.begin());
        let every = num_param(req.uri().query(), "every", 2).unwrap_or(2).max(1);
        let seen = conn
            .hangup_seen
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            + 1;
        return if seen.is_multiple_of(every) {
            Handled::HangUp
        } else {
            Handled::Respond(text(StatusCode::OK, "ok"))
        };
    }
    Handled::Respond(handle(req, state).await)
}

/// Handles one request. The request body is never read.
pub(crate) async fn handle<B>(req: Request<B>, state: &AppState) -> Response<Full<Bytes>> {
    let path = req.uri().path();
    // Counted at reception, before any delay, so in-flight requests show up.
    let _in_flight = is_counted(&req).then(|| state.stats.begin());

    let Some(allowed) = allowed_method(path) else {
        return text(StatusCode::NOT_FOUND, "not found");
    };
    if req.method() != allowed {
        let mut resp = text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed");
        resp.headers_mut()
            .insert(ALLOW, HeaderValue::from_static(allow_header(&allowed)));
        return resp;
    }

    let query = req.uri().query();
    let reply = match path {
        "/api/items" => items(query),
        "/api/complete" => complete(query, state).await,
        "/health" => Ok(text(StatusCode::OK, "ok")),
        "/delay" => delay(query).await,
        "/slow" => slow(query, state).await,
        "/work" => work(query, state).await,
        "/_testbed/allocate" => allocate(query, state),
        "/_testbed/free" => {
            state
                .ballast
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clear();
            Ok(text(StatusCode::OK, "freed"))
        }
        "/stall" => stall(query, state.started).await,
        "/_testbed/stats" => Ok(body(
            StatusCode::OK,
            JSON,
            format!("{{\"requests\":{}}}", state.stats.requests()),
        )),
        "/_testbed/reset" => {
            state.stats.reset();
            // Regression (issue 21): reset did not clear the counts by source. Entries stay (live connections keep
            // counting into them); their counts start again from 0.
            for counter in state
                .by_source
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .values()
            {
                counter.store(0, std::sync::atomic::Ordering::Relaxed);
            }
            Ok(body(StatusCode::NO_CONTENT, TEXT, Bytes::new()))
        }
        "/_testbed/pid" => Ok(text(StatusCode::OK, std::process::id().to_string())),
        "/_testbed/sources" => Ok(body(StatusCode::OK, JSON, state.sources_json())),
        "/metrics" => Ok(metrics(
            &state.stats,
            state.caches.counters(),
            state.synthetic,
        )),
        _ => match path.strip_prefix("/status/") {
            Some(code) => status(code),
            None => Ok(text(StatusCode::NOT_FOUND, "not found")),
        },
    };
    reply.unwrap_or_else(|e| text(StatusCode::BAD_REQUEST, e.to_string()))
}

/// `GET /api/complete?key=K&ms=M&capacity=C&size=S`: the answer for K from a cache of C entries (default 1000) in
/// front of an origin that takes M ms (default 200, at most 60 s); S bytes (default 256). `X-Cache: HIT|MISS`.
async fn complete(query: Option<&str>, state: &AppState) -> Reply {
    use crate::cache::{CAPACITY_DEFAULT, SIZE_DEFAULT};
    let key = param(query, "key").ok_or_else(|| BadRequest("key is required".to_owned()))?;
    let origin_ms = num_param(query, "ms", 200)?.min(MAX_HOLD_MS);
    let capacity = num_param(query, "capacity", CAPACITY_DEFAULT)?;
    let size = num_param(query, "size", SIZE_DEFAULT)?;
    let (answer, hit) = state.caches.complete(key, capacity, size, origin_ms).await;
    let mut response = body(StatusCode::OK, JSON, answer);
    response.headers_mut().insert(
        "x-cache",
        HeaderValue::from_static(if hit { "HIT" } else { "MISS" }),
    );
    Ok(response)
}

/// `GET /api/items?limit=N`: a deterministic JSON array of N items.
fn items(query: Option<&str>) -> Reply {
    let limit = num_param(query, "limit", ITEMS_DEFAULT)?.min(ITEMS_MAX);
    let mut json = String::with_capacity(64 * limit as usize + 2);
    json.push('[');
    for id in 1..=limit {
        if id > 1 {
            json.push(',');
        }
        let price_cents = 99 + (id * 7919) % 99_900;
        json.push_str(&format!(
            "{{\"id\":{id},\"name\":\"item-{id}\",\"price_cents\":{price_cents}}}"
        ));
    }
    json.push(']');
    Ok(body(StatusCode::OK, JSON, json))
}

/// `GET /delay?ms=N`: sleeps N ms (default 0, clamped to 60 s), then 200.
async fn delay(query: Option<&str>) -> Reply {
    let ms = num_param(query, "ms", 0)?.min(MAX_HOLD_MS);
    tokio::time::sleep(Duration::from_millis(ms)).await;
    Ok(text(StatusCode::OK, "ok"))
}

/// `GET /slow?every=N&ms=M`: every Nth request (across connections; default 100) sleeps M ms (default 2000, at most
/// 60 s), the others answer at once: a fixed fraction of slow requests.
async fn slow(query: Option<&str>, state: &AppState) -> Reply {
    let every = num_param(query, "every", 100)?.max(1);
    let ms = num_param(query, "ms", 2000)?.min(MAX_HOLD_MS);
    let seen = state
        .slow_seen
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        + 1;
    if seen.is_multiple_of(every) {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    Ok(text(StatusCode::OK, "ok"))
}

/// `GET /work?ms=N&slots=K`: a service with a known capacity. Each request needs one of K slots for N ms; beyond
/// K concurrent requests they queue (first come, first served), so throughput tops out at K x 1000 / N per second
/// and latency grows with the queue: at C concurrent clients, about N x max(1, C / K) ms.
async fn work(query: Option<&str>, state: &AppState) -> Reply {
    let ms = num_param(query, "ms", 10)?.min(MAX_HOLD_MS);
    let slots = num_param(query, "slots", 8)?;
    if slots == 0 || slots > MAX_SLOTS {
        return Err(BadRequest(format!("slots must be 1..={MAX_SLOTS}")));
    }
    let pool = state.slots(slots);
    let _slot = pool
        .acquire()
        .await
        .map_err(|_| BadRequest("slots closed".into()))?;
    tokio::time::sleep(Duration::from_millis(ms)).await;
    Ok(text(StatusCode::OK, "ok"))
}

/// `POST /_testbed/allocate?mb=N`: hold N more MiB (touched, so RSS grows); `POST /_testbed/free` drops them all.
fn allocate(query: Option<&str>, state: &AppState) -> Reply {
    let mb = num_param(query, "mb", 0)?;
    let mut ballast = state
        .ballast
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let held: u64 = ballast.iter().map(|b| b.len() as u64 >> 20).sum();
    if held + mb > MAX_BALLAST_MIB {
        return Err(BadRequest(format!(
            "at most {MAX_BALLAST_MIB} MiB may be held"
        )));
    }
    // Non-zero bytes: zeroed pages may be mapped lazily and would not show in RSS.
    ballast.push(vec![1u8; (mb as usize) << 20]);
    Ok(text(StatusCode::OK, format!("holding {} MiB", held + mb)))
}

/// `GET /stall?period_ms=P&pause_ms=S`: every P ms since start, all responses
/// freeze for the first S ms; a request arriving in that window is held until
/// the window ends.
async fn stall(query: Option<&str>, started: Instant) -> Reply {
    let period = num_param(query, "period_ms", STALL_PERIOD_DEFAULT_MS)?;
    let pause = num_param(query, "pause_ms", STALL_PAUSE_DEFAULT_MS)?;
    if period == 0 {
        return Err(BadRequest("period_ms must be > 0".into()));
    }
    if pause >= period {
        return Err(BadRequest(format!(
            "pause_ms ({pause}) must be less than period_ms ({period})"
        )));
    }
    if pause > MAX_HOLD_MS {
        return Err(BadRequest(format!("pause_ms must be <= {MAX_HOLD_MS}")));
    }
    if let Some(hold) = stall_hold(started.elapsed(), period, pause) {
        tokio::time::sleep(hold).await;
    }
    Ok(text(StatusCode::OK, "ok"))
}

/// How long a request arriving `elapsed` after start must wait for the pause
/// window to end, or `None` when it arrives while responses flow.
fn stall_hold(elapsed: Duration, period_ms: u64, pause_ms: u64) -> Option<Duration> {
    const NANOS_PER_MS: u128 = 1_000_000;
    let phase = elapsed.as_nanos() % (u128::from(period_ms) * NANOS_PER_MS);
    let pause = u128::from(pause_ms) * NANOS_PER_MS;
    // `pause - phase` < pause_ms (at most 60 s), so it fits in u64 nanos.
    (phase < pause).then(|| Duration::from_nanos(u64::try_from(pause - phase).unwrap_or(u64::MAX)))
}

/// `GET /status/CODE`: answers with that status.
fn status(code: &str) -> Reply {
    let invalid = || BadRequest(format!("invalid status code {code:?}: expected 100..=599"));
    let n: u16 = code.parse().map_err(|_| invalid())?;
    if !(100..=599).contains(&n) {
        return Err(invalid());
    }
    if n < 200 {
        // A 1xx cannot be the final response of a request (hyper answers 500).
        return Err(BadRequest(format!(
            "status {n} is informational and cannot be sent as a final response"
        )));
    }
    let status = StatusCode::from_u16(n).map_err(|_| invalid())?;
    // These statuses must not carry content.
    let content = match n {
        204 | 205 | 304 => String::new(),
        _ => format!("{} {}", n, status.canonical_reason().unwrap_or(""))
            .trim_end()
            .to_owned(),
    };
    Ok(text(status, content))
}

/// Series /metrics always has: requests, in flight, and the four cache figures.
const BASE_SERIES: u64 = 6;

/// `GET /metrics`: Prometheus text exposition.
fn metrics(
    stats: &Stats,
    cache: crate::cache::Counters,
    synthetic: crate::synthetic::Synthetic,
) -> Response<Full<Bytes>> {
    let mut out = format!(
        "# HELP loadgrade_testbed_requests_total Requests received, excluding /_testbed/ and /metrics.\n\
         # TYPE loadgrade_testbed_requests_total counter\n\
         loadgrade_testbed_requests_total {}\n\
         # HELP loadgrade_testbed_in_flight Counted requests currently being handled.\n\
         # TYPE loadgrade_testbed_in_flight gauge\n\
         loadgrade_testbed_in_flight {}\n\
         # HELP loadgrade_testbed_cache_hits_total /api/complete answers from the cache.\n\
         # TYPE loadgrade_testbed_cache_hits_total counter\n\
         loadgrade_testbed_cache_hits_total {}\n\
         # HELP loadgrade_testbed_cache_misses_total /api/complete answers from the origin.\n\
         # TYPE loadgrade_testbed_cache_misses_total counter\n\
         loadgrade_testbed_cache_misses_total {}\n\
         # HELP loadgrade_testbed_cache_evictions_total Entries pushed out of a full cache.\n\
         # TYPE loadgrade_testbed_cache_evictions_total counter\n\
         loadgrade_testbed_cache_evictions_total {}\n\
         # HELP loadgrade_testbed_cache_bytes Answer bytes held by the caches.\n\
         # TYPE loadgrade_testbed_cache_bytes gauge\n\
         loadgrade_testbed_cache_bytes {}\n",
        stats.requests(),
        stats.in_flight(),
        cache.hits,
        cache.misses,
        cache.evictions,
        cache.bytes,
    );
    synthetic.render(&mut out, stats.requests());
    // The six series above, this one, and the synthetic ones.
    let _ = write!(
        out,
        "# HELP loadgrade_testbed_exposed_series Series on this page, this one included.\n\
         # TYPE loadgrade_testbed_exposed_series gauge\n\
         loadgrade_testbed_exposed_series {}\n",
        BASE_SERIES + 1 + synthetic.series()
    );
    body(StatusCode::OK, PROMETHEUS, out)
}

/// Value of `key` in a raw query string (first occurrence; no percent-decoding).
fn param<'q>(query: Option<&'q str>, key: &str) -> Option<&'q str> {
    query?
        .split('&')
        .map(|pair| pair.split_once('=').unwrap_or((pair, "")))
        .find_map(|(k, v)| (k == key).then_some(v))
}

/// A non-negative integer query parameter, `default` when absent.
fn num_param(query: Option<&str>, key: &str, default: u64) -> Result<u64, BadRequest> {
    match param(query, key) {
        None => Ok(default),
        Some(v) => v.parse().map_err(|_| {
            BadRequest(format!(
                "invalid value for {key}: expected a non-negative integer, got {v:?}"
            ))
        }),
    }
}

fn text(status: StatusCode, content: impl Into<Bytes>) -> Response<Full<Bytes>> {
    body(status, TEXT, content)
}

/// A response with a fixed body; hyper derives `content-length` from it.
fn body(
    status: StatusCode,
    content_type: &'static str,
    content: impl Into<Bytes>,
) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(content.into()));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_parse_by_hand() {
        let q = Some("a=1&limit=5&flag&limit=9");
        assert_eq!(param(q, "limit"), Some("5"));
        assert_eq!(param(q, "flag"), Some(""));
        assert_eq!(param(q, "missing"), None);
        assert_eq!(param(None, "limit"), None);
        assert!(num_param(Some("limit=x"), "limit", 1).is_err());
        assert!(num_param(Some("limit=-1"), "limit", 1).is_err());
        assert!(num_param(Some("limit="), "limit", 1).is_err());
        assert_eq!(num_param(Some("other=3"), "limit", 7).ok(), Some(7));
    }

    #[test]
    fn stall_schedule() {
        let ms = Duration::from_millis;
        assert_eq!(stall_hold(ms(0), 400, 200), Some(ms(200)));
        assert_eq!(stall_hold(ms(450), 400, 200), Some(ms(150)));
        assert_eq!(stall_hold(ms(199), 400, 200), Some(ms(1)));
        assert_eq!(stall_hold(ms(200), 400, 200), None);
        assert_eq!(stall_hold(ms(399), 400, 200), None);
        assert_eq!(stall_hold(ms(123), 400, 0), None);
    }

    #[test]
    fn status_validation() {
        assert!(status("503").is_ok());
        assert!(status("600").is_err());
        assert!(status("99").is_err());
        assert!(status("abc").is_err());
        assert!(status("101").is_err());
    }
}
