//! The coordinator's own Prometheus metrics (`loadgrade serve --metrics-listen ADDR`, path `/metrics`, OpenMetrics
//! text from the official `prometheus-client`): agents connected, runs by state, the current run's last-second
//! requests/s and p95, intervals received and stored, and how long the store takes to write one.

use crate::Coordinator;
use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use loadgrade_common::run::RunState;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Weak};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabel {
    state: &'static str,
}

/// The coordinator's metrics. Counters are updated where things happen; gauges of state are read when scraped.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    agents_connected: Gauge,
    runs: Family<StateLabel, Gauge>,
    /// Runs that reached each final state since this coordinator started.
    ended: Family<StateLabel, Counter>,
    run_rate: Gauge<f64, AtomicU64>,
    run_p95: Gauge<f64, AtomicU64>,
    pub intervals_received: Counter,
    pub intervals_stored: Counter,
    pub store_write: Histogram,
    /// The listener's connections: open now, closed at once (a cap reached), closed without a call in time.
    pub connections: crate::server::connections::ConnectionCounters,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        let agents_connected = Gauge::default();
        let runs = Family::<StateLabel, Gauge>::default();
        let run_rate = Gauge::<f64, AtomicU64>::default();
        let run_p95 = Gauge::<f64, AtomicU64>::default();
        let intervals_received = Counter::default();
        let intervals_stored = Counter::default();
        // 0.1 ms to ~3.3 s.
        let store_write = Histogram::new(exponential_buckets(0.0001, 2.0, 16));
        registry.register(
            "loadgrade_agents_connected",
            "Agents with a session to this coordinator (probe agents included)",
            agents_connected.clone(),
        );
        registry.register(
            "loadgrade_runs",
            "Runs by state: queued, waiting and running now; finished, cancelled, error and interrupted since this \
             coordinator started",
            runs.clone(),
        );
        registry.register(
            "loadgrade_run_requests_per_second",
            "The current run's completed requests in its last complete second (0 when no run is loading)",
            run_rate.clone(),
        );
        registry.register(
            "loadgrade_run_latency_p95_seconds",
            "The current run's p95 latency in its last complete second, merged over its agents",
            run_p95.clone(),
        );
        registry.register(
            "loadgrade_intervals_received",
            "Interval reports received from agents for runs in progress",
            intervals_received.clone(),
        );
        registry.register(
            "loadgrade_intervals_stored",
            "Interval reports stored (and acknowledged)",
            intervals_stored.clone(),
        );
        registry.register(
            "loadgrade_store_write_seconds",
            "Time to store one interval report",
            store_write.clone(),
        );
        let connections = crate::server::connections::ConnectionCounters::default();
        registry.register(
            "loadgrade_connections_open",
            "Connections to the gRPC listener open now",
            connections.open.clone(),
        );
        registry.register(
            "loadgrade_connections_refused",
            "Connections closed at accept: --max-connections or --max-connections-per-source reached",
            connections.refused.clone(),
        );
        registry.register(
            "loadgrade_connections_timed_out",
            "Connections closed because no gRPC call started within the first-call deadline",
            connections.timed_out.clone(),
        );
        Metrics {
            registry,
            connections,
            agents_connected,
            runs,
            ended: Family::default(),
            run_rate,
            run_p95,
            intervals_received,
            intervals_stored,
            store_write,
        }
    }
}

impl Metrics {
    /// A run reached a final state.
    pub fn run_ended(&self, state: RunState) {
        self.ended
            .get_or_create(&StateLabel {
                state: state.as_str(),
            })
            .inc();
        self.run_rate.set(0.0);
        self.run_p95.set(0.0);
    }

    /// The current run's last complete second: requests/s and p95 (ms), when it has one.
    pub fn live(&self, rate: f64, p95_ms: Option<f64>) {
        self.run_rate.set(rate);
        self.run_p95.set(p95_ms.map_or(0.0, |ms| ms / 1e3));
    }

    /// The text exposition, with the state gauges read from `coordinator` now.
    pub fn render(&self, coordinator: &Coordinator) -> String {
        self.agents_connected
            .set(i64::try_from(coordinator.registry.count()).unwrap_or(i64::MAX));
        let in_progress = coordinator.states_in_progress();
        for state in RunState::ALL {
            let value = if state.is_final() {
                self.ended
                    .get_or_create(&StateLabel {
                        state: state.as_str(),
                    })
                    .get()
            } else {
                in_progress.iter().filter(|s| **s == state).count() as u64
            };
            self.runs
                .get_or_create(&StateLabel {
                    state: state.as_str(),
                })
                .set(i64::try_from(value).unwrap_or(i64::MAX));
        }
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

/// Connections served at once; more are closed as they arrive.
const MAX_CONNECTIONS: usize = 32;

/// Serves `/metrics` on `listener` until `shutdown` fires. Holds the coordinator weakly: the server never keeps
/// it alive.
pub async fn serve(
    coordinator: Weak<Coordinator>,
    listener: TcpListener,
    shutdown: CancellationToken,
) {
    // A scraper needs one connection; a bounded number keeps idle or slow clients from holding descriptors and
    // memory the coordinator needs for its agents.
    let connections = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        let accepted = tokio::select! {
            () = shutdown.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let Ok((stream, _)) = accepted else {
            // Out of descriptors and the like: pause instead of spinning.
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let Ok(permit) = connections.clone().try_acquire_owned() else {
            // Over the bound: closed at once.
            drop(stream);
            continue;
        };
        let coordinator = coordinator.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let service = service_fn(move |request: Request<hyper::body::Incoming>| {
                let coordinator = coordinator.clone();
                async move { Ok::<_, std::convert::Infallible>(answer(&request, &coordinator)) }
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service);
            // A client that never finishes its request is dropped.
            let _ = tokio::time::timeout(Duration::from_secs(10), connection).await;
        });
    }
}

fn answer<B>(request: &Request<B>, coordinator: &Weak<Coordinator>) -> Response<Full<Bytes>> {
    let reply = |status: StatusCode, content_type: &'static str, body: String| {
        let mut response = Response::new(Full::new(Bytes::from(body)));
        *response.status_mut() = status;
        response.headers_mut().insert(
            hyper::header::CONTENT_TYPE,
            hyper::header::HeaderValue::from_static(content_type),
        );
        response
    };
    if request.uri().path() != "/metrics" {
        return reply(
            StatusCode::NOT_FOUND,
            "text/plain",
            "only /metrics here\n".into(),
        );
    }
    if request.method() != hyper::Method::GET {
        return reply(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain",
            "GET only\n".into(),
        );
    }
    match coordinator.upgrade() {
        Some(c) => reply(
            StatusCode::OK,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            c.metrics.render(&c),
        ),
        None => reply(
            StatusCode::SERVICE_UNAVAILABLE,
            "text/plain",
            "shutting down\n".into(),
        ),
    }
}

/// Binds `addr` and serves `/metrics` in the background; returns the bound address.
pub async fn spawn(
    coordinator: &Arc<Coordinator>,
    addr: SocketAddr,
    shutdown: CancellationToken,
) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    tokio::spawn(serve(Arc::downgrade(coordinator), listener, shutdown));
    Ok(bound)
}
